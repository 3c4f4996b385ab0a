"""Ctrl-C and SIGTERM: stop cleanly, never half-way through a step that must be whole.

SIGTERM (a CI job being cancelled) is turned into KeyboardInterrupt so both take one path. A
`critical()` section (tagging the release, pushing the GitOps commit) defers the interrupt to
its end: a release is either fully tagged or not at all. On exit, children we started (docker,
git) are terminated so nothing keeps running behind the user's back.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130  # errors.EXIT_INTERRUPTED (not imported: this module loads first, see __main__)
# Children get this long to end on SIGTERM before SIGKILL: the whole exit stays within 2 s.
CHILD_GRACE_SECONDS = 1.5
_pending: list[int] = []
_depth = 0
# Set once an interrupt is raised: threads other than the main one (registry reads during
# verification) poll it, since only the main thread receives the KeyboardInterrupt.
interrupted = threading.Event()


def _handler(signum: int, frame: object) -> None:
    if _depth > 0:
        _pending.append(signum)  # raised when the critical section ends
        return
    interrupted.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT and SIGTERM through `_handler` (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)
        sys.unraisablehook = _unraisable


_default_unraisablehook = sys.unraisablehook


def _unraisable(info) -> None:  # info: sys.UnraisableHookArgs
    """A KeyboardInterrupt raised where Python cannot propagate it (a weakref callback in the
    import machinery, a __del__) is printed as "Exception ignored" and lost: deliver it again, a
    moment later, where it can be raised (the signal is sent anew; a critical section defers it)."""
    if info.exc_type is not None and issubclass(info.exc_type, KeyboardInterrupt):
        timer = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM))
        timer.daemon = True
        timer.start()
        return
    _default_unraisablehook(info)


def ignore() -> None:
    """Ignore SIGINT and SIGTERM from now on (we are exiting already)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def critical() -> Iterator[None]:
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            _pending.clear()
            interrupted.set()
            raise KeyboardInterrupt


def terminate_children(*, timeout: float = CHILD_GRACE_SECONDS) -> int:
    """Terminate (then kill) every process we started, recursively; return how many there were."""
    import psutil  # here, not at the top: install() must run as early as possible (__main__.py)

    children = psutil.Process().children(recursive=True)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    return len(children)


def exit_interrupted(message: str) -> None:
    """Stop the children, print ``message``, exit 130 — now, within CHILD_GRACE_SECONDS and a bit.

    A further signal meanwhile is ignored (we are already stopping). Threads still blocked on a
    registry that does not answer must not keep the process alive: when any non-daemon thread is
    left, the exit skips joining it (os._exit, after flushing); every `finally` of the main thread
    (temporary folders, the run-scoped Docker config) has run by then.
    """
    ignore()
    interrupted.set()
    stopped = terminate_children()
    sys.stderr.write(message.format(stopped=stopped))
    sys.stdout.flush()
    sys.stderr.flush()
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if others:
        os._exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_INTERRUPTED)

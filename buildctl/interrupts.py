"""Ctrl-C and SIGTERM: stop cleanly, never half-way through a step that must be whole.

SIGTERM (a CI job being cancelled) is turned into KeyboardInterrupt so both take one path. A
`critical()` section (tagging the release, pushing the GitOps commit) defers the interrupt to
its end: a release is either fully tagged or not at all. On exit, children we started (docker,
git) are terminated so nothing keeps running behind the user's back.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

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
            raise KeyboardInterrupt


def terminate_children(*, timeout: float = 10.0) -> int:
    """Terminate (then kill) every process we started, recursively; return how many there were."""
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

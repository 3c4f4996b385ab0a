"""Daemon threads for registry reads, and waits that an interrupt or a deadline can end.

concurrent.futures' workers are joined at interpreter exit (and by ``with ThreadPoolExecutor``),
so a worker blocked on a registry that never answers keeps the process alive after SIGTERM.
Verification runs its reads in daemon threads instead, and every wait polls: the main thread
then receives KeyboardInterrupt at once, and other waiting threads see interrupts.interrupted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

from buildctl import interrupts
from buildctl.registry.bounds import Deadline, LimitError

T = TypeVar("T")
POLL = 0.1
GRACE = 2.0  # how long past its deadline a worker may take to notice it before we stop waiting


def start(fn: Callable[[], T], *, name: str) -> Future[T]:
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits, KeyboardInterrupt included
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def wait(future: Future[T], *, deadline: Deadline | None = None) -> T:
    """``future.result()``, but interruptible, and never much past ``deadline``."""
    while True:
        try:
            return future.result(timeout=POLL)
        except TimeoutError:
            if interrupts.interrupted.is_set():
                raise KeyboardInterrupt from None
            if deadline is not None and deadline.remaining() < -GRACE:
                deadline.check()  # past it: raises the deadline's own LimitError


def map_in_threads(fn: Callable[[T], object], items: Sequence[T], *, name: str,
                   deadline: Deadline | None = None) -> list:
    """``[fn(item) for item in items]``, concurrently in daemon threads; the first error is raised
    once every call ended (or the deadline passed)."""
    futures = [start(lambda item=item: fn(item), name=f"{name}-{i}") for i, item in enumerate(items)]
    results, error = [], None
    for future in futures:
        try:
            results.append(wait(future, deadline=deadline))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others ended
            error = error or exc
            if isinstance(exc, LimitError) and deadline is not None and deadline.expired:
                break  # the others share that deadline: do not wait for each to say so
    if error is not None:
        raise error
    return results

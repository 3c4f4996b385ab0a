"""Pure CPU work over many items on every core the process may use (issue #20: the GitOps plan of
1,000 manifests is libyaml composing each twice, ~0.9 ms a file, on one core of two).

Forked workers start with the parent's modules and caches as they are: no re-import (a spawned
worker would pay buildctl's ~0.2 s start-up), so a fork pays off from ~100 items. Results come back
in item order. In-process instead when forking is not safe or not worth it: one core, few items, a
platform without fork, or another thread alive (a fork copies only the calling thread, and a lock
another thread holds — logging's, an import's — would never be released in the child).

``fn`` must not raise for an item it can report: a worker's exception reaches the parent only if it
pickles, and buildctl's errors carry keyword-only fields. Callers return a marker and redo that item
in-process to raise the real error (gitops/edits.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

MIN_ITEMS = 100  # measured: below this the two forks and the pickling cost more than they save


def cores() -> int:
    """The cores this process may run on (a CI agent's cgroup or taskset may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def map_forked(fn: Callable[[_Item], _Result], items: Sequence[_Item], *, min_items: int = MIN_ITEMS,
               ) -> list[_Result]:
    """``[fn(x) for x in items]``, split over forked workers when that is safe and worth it."""
    workers = min(cores(), len(items) // max(1, min_items // 2))
    if workers < 2 or len(items) < min_items or not _fork_is_safe():
        return [fn(item) for item in items]
    for stream in (sys.stdout, sys.stderr):  # else a worker's exit writes the parent's buffered text again
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    import multiprocessing  # only when forking (~7 ms)
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Several chunks per worker: one slow file does not leave the other core idle for long.
    chunk = max(1, len(items) // (workers * 4))
    # concurrent.futures, not multiprocessing.Pool: a worker that dies (the OOM killer, a crash in a
    # C extension) breaks this pool, where Pool would wait forever for the chunk it held.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals)
    try:
        results = list(pool.map(fn, items, chunksize=chunk))
    except BrokenProcessPool:
        pool.shutdown(wait=True)
        return [fn(item) for item in items]  # what a worker died of, raised here (or done here after all)
    except BaseException:  # Ctrl-C, SIGTERM: the workers ignore SIGINT and end after their chunk
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)  # its threads joined: the next fork is safe again
    return results


def _fork_is_safe() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def _worker_signals() -> None:
    """Ctrl-C reaches the whole process group: the parent stops handing out chunks, and a worker
    neither reports the interrupt itself nor runs buildctl's handlers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

"""Calls that mostly wait (a registry round trip, a child process) made all at once on threads.

One helper for what the release, its claims, its signatures and its reuse look-ups each did with a
ThreadPoolExecutor of their own: results in the items' order, and the first error raised only
once every call has ended (none is left running behind a failure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def each(fn: Callable[[_Item], _Result], items: Sequence[_Item], *, name: str,
         limit: int | None = None) -> list[_Result]:
    """``[fn(x) for x in items]``, every call at once (at most ``limit`` at a time); one item is
    called here, on this thread."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), limit or len(items)), thread_name_prefix=name) as pool:
        futures = [pool.submit(fn, item) for item in items]
    return [future.result() for future in futures]

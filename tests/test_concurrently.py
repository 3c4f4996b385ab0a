"""buildctl.concurrently.each: every call at once, results in order, the first error only once all ended."""

from __future__ import annotations

import threading
import time

import pytest

from buildctl import concurrently


def test_every_call_runs_at_once_and_results_keep_the_items_order() -> None:
    started = threading.Barrier(3, timeout=5)  # all three must be running together to pass it

    def call(item: int) -> int:
        started.wait()
        time.sleep(0.01 * (3 - item))  # the last item ends first
        return item * 10

    assert concurrently.each(call, [1, 2, 3], name="t") == [10, 20, 30]


def test_the_first_error_is_raised_once_every_call_has_ended() -> None:
    ended = []

    def call(item: int) -> int:
        if item == 0:
            raise ValueError("first")
        time.sleep(0.05)
        ended.append(item)
        return item

    with pytest.raises(ValueError, match="first"):
        concurrently.each(call, [0, 1, 2], name="t")
    assert sorted(ended) == [1, 2]  # nothing left running behind the failure


def test_a_limit_bounds_the_calls_at_once_and_one_item_runs_here() -> None:
    running, most, lock = 0, 0, threading.Lock()

    def call(item: int) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return threading.current_thread().name

    concurrently.each(call, list(range(8)), name="t", limit=2)
    assert most == 2
    assert concurrently.each(call, [0], name="t") == [threading.current_thread().name]

"""buildctl.fork_map: forked workers for many items, in-process where forking is unsafe or not worth it."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from buildctl import fork_map


def _pid_of(item: int) -> tuple[int, int]:
    return item * item, os.getpid()


def _slow_pid_of(item: int) -> tuple[int, int]:
    time.sleep(0.001)  # long enough that one worker cannot take every chunk before the other starts
    return _pid_of(item)


@pytest.mark.skipif(fork_map.cores() < 2, reason="needs two cores to fork")
def test_many_items_are_split_over_forked_workers_and_come_back_in_order() -> None:
    out = fork_map.map_forked(_slow_pid_of, list(range(400)))
    assert [square for square, _ in out] == [i * i for i in range(400)]
    workers = {pid for _, pid in out}
    assert os.getpid() not in workers and 2 <= len(workers) <= fork_map.cores()
    assert threading.active_count() == 1  # the pool's threads are gone: the next fork is safe again


def test_few_items_stay_in_process() -> None:
    out = fork_map.map_forked(_pid_of, list(range(fork_map.MIN_ITEMS - 1)))
    assert {pid for _, pid in out} == {os.getpid()}


def test_another_thread_alive_keeps_the_work_in_process() -> None:
    """A fork copies only the calling thread: a lock the other one holds would never be released."""
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        out = fork_map.map_forked(_pid_of, list(range(400)))
    finally:
        release.set()
        other.join()
    assert {pid for _, pid in out} == {os.getpid()}


def test_the_parents_buffered_output_is_not_written_again_by_a_worker(capfd) -> None:
    sys.stdout.write("once\n")  # buffered, not yet flushed
    fork_map.map_forked(_pid_of, list(range(400)))
    sys.stdout.flush()
    assert capfd.readouterr().out.count("once") == 1


_PARENT = os.getpid()


def _dies_in_a_worker(item: int) -> tuple[int, int]:
    if item == 250 and os.getpid() != _PARENT:
        os._exit(1)  # as the OOM killer or a crash in a C extension would end it
    return _pid_of(item)


@pytest.mark.skipif(fork_map.cores() < 2, reason="needs two cores to fork")
def test_a_worker_that_dies_does_not_hang_the_parent_which_does_the_work_itself() -> None:
    started = time.monotonic()
    out = fork_map.map_forked(_dies_in_a_worker, list(range(400)))
    assert [square for square, _ in out] == [i * i for i in range(400)]
    assert {pid for _, pid in out} == {os.getpid()} and time.monotonic() - started < 30
    assert threading.active_count() == 1

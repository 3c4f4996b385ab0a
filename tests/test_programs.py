"""buildctl.programs: one external program, bounded: output captured, a missing program named, and
a program that outlives its timeout stopped with its whole process group (a grandchild holding the
pipes included) — the error never carries the output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import pytest

from buildctl.programs import ProgramError, ProgramStopped, Stop, run_program, start_program, stream_program


def test_output_and_exit_code_are_captured_with_input_on_stdin() -> None:
    result = run_program(["sh", "-c", 'read x; echo "got $x"; echo err >&2; exit 3'], what="t", input="in\n",
                         timeout=10)
    assert (result.returncode, result.stdout, result.stderr) == (3, "got in\n", "err\n")
    assert "got in" not in repr(result) and "err\\n" not in repr(result)  # output may hold a secret: never in a repr


def test_it_runs_in_the_folder_it_is_given(tmp_path: Path) -> None:
    result = run_program(["pwd"], what="t", timeout=10, cwd=tmp_path)
    assert (result.args, result.stdout) == (("pwd",), f"{tmp_path}\n")


def test_a_missing_program_is_named() -> None:
    with pytest.raises(ProgramError) as err:
        run_program(["/nonexistent/helper", "get"], what="asking the helper", timeout=1)
    assert err.value.message == "asking the helper: cannot run /nonexistent/helper (No such file or directory)"


def test_a_program_past_its_timeout_is_stopped_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(ProgramError) as err:
        run_program(["sh", "-c", f'echo SECRET-OUTPUT; sleep 300 & echo "$! $$" > {pids}; sleep 300'], what="w",
                    timeout=0.5)
    assert time.monotonic() - started < 5
    assert err.value.message == "w: sh did not answer within 0.5 s (stopped)"
    assert err.value.output == "SECRET-OUTPUT\n"  # kept for a caller that may show it (buildx), never in the message
    grandchild, child = (int(p) for p in pids.read_text().split())
    for pid in (grandchild, child):  # the whole group is gone, the grandchild holding the pipes too
        assert _gone_or_zombie(pid, within=2.0), pid


def _gone_or_zombie(pid: int, *, within: float) -> bool:
    """A killed process closes its pipes before it turns zombie (the kernel's exit order), so the
    pipes' end can be seen a moment before the state: poll briefly instead of reading it once."""
    deadline = time.monotonic() + within
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_a_streamed_program_hands_over_each_line_as_it_comes() -> None:
    seen: list[tuple[str, float]] = []
    started = time.monotonic()
    result = stream_program(["sh", "-c", "echo one; echo two >&2; sleep 0.3; printf 'três'; exit 4"], what="s",
                            on_line=lambda line: seen.append((line, time.monotonic() - started)))
    assert [line for line, _ in seen] == ["one\n", "two\n", "três"]  # stderr in the one stream, in order
    assert seen[2][1] - seen[1][1] >= 0.25  # each as it came (the sleep between), not all at the exit
    assert (result.returncode, result.stdout, result.stderr) == (4, "one\ntwo\ntrês", "")


def test_a_streamed_program_is_stopped_with_its_group_when_the_consumer_fails(tmp_path: Path) -> None:
    pids = tmp_path / "pids"

    def consume(line: str) -> None:
        raise KeyboardInterrupt  # Ctrl-C while a build streams

    with pytest.raises(KeyboardInterrupt):
        stream_program(["sh", "-c", f'sleep 300 & echo "$! $$" > {pids}; echo started; sleep 300'], what="s",
                       on_line=consume)
    for pid in (int(p) for p in pids.read_text().split()):
        assert _gone_or_zombie(pid, within=2.0), pid


def test_a_missing_streamed_program_is_named() -> None:
    with pytest.raises(ProgramError, match=r"^b: cannot run /nonexistent/docker \(No such file or directory\)$"):
        stream_program(["/nonexistent/docker", "buildx"], what="b", on_line=print)


# --------------------------------------------------------------------------- Stop, start_program

def test_a_pulled_stop_ends_every_streamed_program_with_its_group_and_starts_no_more(tmp_path: Path) -> None:
    stop = Stop(why="the builder changed")
    pids = tmp_path / "pids"
    errors: list[BaseException] = []

    def streamed() -> None:
        try:
            stream_program(["sh", "-c", f'sleep 300 & echo "$! $$" > {pids}; echo started; sleep 300'], what="b",
                           on_line=lambda line: None, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            errors.append(exc)

    worker = threading.Thread(target=streamed)
    worker.start()
    deadline = time.monotonic() + 10
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    stop.pull()
    worker.join(5)
    assert not worker.is_alive() and time.monotonic() - started < 2
    assert [type(e) for e in errors] == [ProgramStopped]
    assert errors[0].message == "b: stopped (the builder changed)" and "started" in errors[0].output
    for pid in (int(p) for p in pids.read_text().split()):
        assert _gone_or_zombie(pid, within=2.0), pid
    ran = tmp_path / "ran"
    with pytest.raises(ProgramStopped, match=r"^c: not started \(the builder changed\)$"):
        stream_program(["sh", "-c", f"touch {ran}"], what="c", on_line=lambda line: None, stop=stop)
    assert not ran.exists()


def test_a_stop_is_settled_once_kept_or_pulled_and_a_kept_one_leaves_programs_alone() -> None:
    kept, pulled = Stop(why="x"), Stop(why="y")
    answers: list[bool] = []
    waiter = threading.Thread(target=lambda: answers.append(kept.settled()))
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive()  # unsettled: it waits
    kept.keep()
    waiter.join(2)
    assert answers == [False]
    result = stream_program(["sh", "-c", "echo fine"], what="k", on_line=lambda line: None, stop=kept)
    assert (result.returncode, result.stdout) == (0, "fine\n")
    pulled.pull()
    assert pulled.settled() is True


def test_a_started_program_is_collected_later_its_timeout_counted_from_the_start() -> None:
    started = start_program(["sh", "-c", "sleep 0.2; echo later"], what="p", timeout=5)
    time.sleep(0.4)  # it ran meanwhile
    before = time.monotonic()
    assert started.result().stdout == "later\n" and time.monotonic() - before < 0.1
    slow = start_program(["sh", "-c", "sleep 300"], what="q", timeout=0.3)
    time.sleep(0.4)
    before = time.monotonic()
    with pytest.raises(ProgramError, match=r"^q: sh did not answer within 0.3 s \(stopped\)$"):
        slow.result()
    assert time.monotonic() - before < 1  # its time was up already: no second wait


def test_a_started_program_that_ended_in_time_is_collected_after_its_deadline() -> None:
    started = start_program(["sh", "-c", "echo answered"], what="p", timeout=0.2)
    time.sleep(0.5)  # the caller did other work past the deadline; the program had long answered
    assert started.result().stdout == "answered\n"


def test_a_started_program_nobody_collects_is_stopped_with_its_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = start_program(["sh", "-c", f'sleep 300 & echo "$! $$" > {pids}; sleep 300'], what="p", timeout=60)
    deadline = time.monotonic() + 10
    while not (pids.exists() and pids.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.02)
    started.stop()
    for pid in (int(p) for p in pids.read_text().split()):
        assert _gone_or_zombie(pid, within=2.0), pid


def _script_held_open_for_writing(path: Path):
    """An executable script whose write descriptor is still open: as a child forked by another
    thread holds it until its own exec, exec of the file fails with ETXTBSY meanwhile."""
    path.write_text("#!/bin/sh\necho ran\n")
    path.chmod(0o755)
    return open(path, "a")  # noqa: SIM115 - held on purpose, closed by the test


def test_a_program_busy_for_writing_runs_once_the_writer_lets_go(tmp_path: Path) -> None:
    script = tmp_path / "probe"
    writer = _script_held_open_for_writing(script)
    threading.Timer(0.05, writer.close).start()
    assert run_program([str(script)], what="probe", timeout=10).stdout == "ran\n"
    writer = _script_held_open_for_writing(script)
    threading.Timer(0.05, writer.close).start()
    lines: list[str] = []
    assert stream_program([str(script)], what="probe", on_line=lines.append).returncode == 0 and lines == ["ran\n"]


def test_a_program_that_stays_busy_for_writing_is_named_with_the_reason(tmp_path: Path) -> None:
    script = tmp_path / "probe"
    with _script_held_open_for_writing(script):
        with pytest.raises(ProgramError, match=r"^probe: cannot run .*/probe \(Text file busy\)$"):
            run_program([str(script)], what="probe", timeout=10)

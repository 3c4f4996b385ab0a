"""buildctl.programs: one external program, bounded: output captured, a missing program named, and
a program that outlives its timeout stopped with its whole process group (a grandchild holding the
pipes included) — the error never carries the output."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from buildctl.programs import ProgramError, run_program, stream_program


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

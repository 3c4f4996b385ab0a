"""Running an external program once: bounded time, its whole process group stopped on timeout,
output captured, nothing of it in an error unless the caller says it may be shown.

The one path for programs that have no wrapper module of their own yet (Docker credential helpers
first). ``subprocess.run(timeout=...)`` kills only the child: a shell-script helper whose ``sleep``
or ``curl`` grandchild keeps the pipes open would still hang the caller, so the child gets its own
session and the whole group is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from buildctl.errors import OperationError


@dataclass(frozen=True)
class ProgramResult:
    returncode: int
    stdout: str = field(repr=False)  # may hold a secret (a credential helper's answer)
    stderr: str = field(repr=False)


class ProgramError(OperationError):
    """The program could not be started or did not finish in time; the message names it, never its output."""


def run_program(argv: Sequence[str], *, what: str, timeout: float, input: str | None = None,
                env: Mapping[str, str] | None = None) -> ProgramResult:
    """Run ``argv`` with ``input`` on stdin (or none), within ``timeout`` seconds."""
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                errors="replace", env=dict(env) if env is not None else None,
                                start_new_session=True)
    except OSError as exc:
        raise ProgramError(f"{what}: cannot run {argv[0]} ({exc.strerror or type(exc).__name__})") from None
    try:
        stdout, stderr = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ProgramError(f"{what}: {argv[0]} did not answer within {timeout:g} s (stopped)") from None
    except BaseException:  # Ctrl-C while waiting: never leave the child behind
        _kill_group(proc)
        raise
    return ProgramResult(proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()  # the group is gone, so its pipes are closed: reap without blocking

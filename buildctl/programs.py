"""Running an external program once: bounded time, its whole process group stopped on timeout,
output captured, nothing of it in an error unless the caller says it may be shown.

The one path for external programs: git, cosign, kustomize, Docker credential helpers and docker
itself (`docker info`, `buildx`, the builds: engine/docker.py; python-on-whales for the rest) are
run here by their wrapper modules, which add their own environment and redaction. ``subprocess.run(timeout=...)`` kills only the child: a shell-script helper whose ``sleep``
or ``curl`` grandchild keeps the pipes open would still hang the caller, so the child gets its own
session and the whole group is killed.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildctl.errors import OperationError


@dataclass(frozen=True)
class ProgramResult:
    args: tuple[str, ...]  # the argv as run (callers redact it before showing it)
    returncode: int
    stdout: str = field(repr=False)  # may hold a secret (a credential helper's answer)
    stderr: str = field(repr=False)


class ProgramError(OperationError):
    """The program could not be started or did not finish in time; the message names it, never its
    output. ``output``: what a stopped program had written (its caller decides whether to show it)."""

    def __init__(self, message: str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def run_program(argv: Sequence[str], *, what: str, timeout: float, input: str | None = None,
                env: Mapping[str, str] | None = None, cwd: Path | None = None) -> ProgramResult:
    """Run ``argv`` in ``cwd`` with ``input`` on stdin (or none), within ``timeout`` seconds.

    The child has its own session, so a terminal's Ctrl-C reaches only buildctl: outside a
    critical section (interrupts.py) the KeyboardInterrupt stops the child's whole group here; in
    one, the signal waits and so does the child's work (a `git push` ends whole or not at all)."""
    return start_program(argv, what=what, timeout=timeout, input=input, env=env, cwd=cwd).result()


class Started:
    """A program `start_program` started; ``result()`` waits for it as `run_program` does."""

    def __init__(self, argv: Sequence[str], proc: subprocess.Popen[str], *, what: str, timeout: float,
                 input: str | None) -> None:
        self._argv, self._proc, self._what, self._input, self._timeout = tuple(argv), proc, what, input, timeout
        self._deadline = time.monotonic() + timeout

    def result(self) -> ProgramResult:
        proc, argv = self._proc, self._argv
        # One that ended in time but is collected after its deadline (the caller did other work
        # meanwhile) answered: its output is read, not thrown away as a timeout.
        left = max(0.0, self._deadline - time.monotonic())
        try:
            stdout, stderr = proc.communicate(self._input, timeout=left if proc.poll() is None else None)
        except subprocess.TimeoutExpired:
            stdout, stderr = _kill_group(proc)
            raise ProgramError(f"{self._what}: {Path(argv[0]).name} did not answer within {self._timeout:g} s "
                               "(stopped)", output=stdout + stderr) from None
        except BaseException:  # Ctrl-C while waiting: never leave the child behind
            _kill_group(proc)
            raise
        return ProgramResult(argv, proc.returncode, stdout, stderr)

    def stop(self) -> None:
        """Nobody will collect it: its whole group stopped, its pipes read and closed."""
        if self._proc.poll() is None:
            _stop_group(self._proc)
        self._proc.communicate()


def start_program(argv: Sequence[str], *, what: str, timeout: float, input: str | None = None,
                  env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Started:
    """`run_program`, its waiting left to ``result()``: a program whose answer is needed later
    (`docker info`, started before the release's imports) runs meanwhile. ``timeout`` counts from now."""
    try:
        proc = _spawn(argv, cwd=cwd, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                      errors="replace", env=dict(env) if env is not None else None, start_new_session=True)
    except OSError as exc:
        raise ProgramError(f"{what}: cannot run {argv[0]} ({exc.strerror or type(exc).__name__})") from None
    return Started(argv, proc, what=what, timeout=timeout, input=input)


def _spawn(argv: Sequence[str], **options: Any) -> subprocess.Popen:
    """Popen, tried again on ETXTBSY. A program written just now (binfmt's probe) is refused while a
    child that another thread forked meanwhile still holds the file's write descriptor, until that
    child's own exec closes it (the race of any threaded program that forks: golang/go#22315);
    that passes within milliseconds, and a refused exec ran nothing, so spawning again is safe."""
    try:
        return subprocess.Popen(list(argv), **options)
    except OSError as exc:
        if exc.errno != errno.ETXTBSY:
            raise
    import tenacity  # only on this rare path: at start-up it would cost ~35 ms (tests/test_lazy_imports.py)

    retrying = tenacity.Retrying(retry=tenacity.retry_if_exception(_text_busy), stop=tenacity.stop_after_attempt(6),
                                 wait=tenacity.wait_exponential(multiplier=0.01, max=0.2), reraise=True)
    return retrying(subprocess.Popen, list(argv), **options)


def _text_busy(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ETXTBSY


def _kill_group(proc: subprocess.Popen[str]) -> tuple[str, str]:
    _stop_group(proc)
    stdout, stderr = proc.communicate()  # the group is gone, so its pipes are closed: reap without blocking
    return stdout or "", stderr or ""


class ProgramStopped(ProgramError):
    """The program was stopped by its caller's `Stop` (not a failure of its own): never retried."""


class Stop:
    """Stops every program streamed under it, now and later (each one's whole group), once pulled:
    the builds started before the builder was checked, when the check is about to change the
    builder. Until pulled or kept it is unsettled; ``settled()`` waits for that."""

    def __init__(self, *, why: str) -> None:
        self.why = why  # said in the error of each program it stopped
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self._settled = threading.Event()
        self.pulled = False

    def pull(self) -> None:
        with self._lock:
            self.pulled = True
            running = list(self._running)
        self._settled.set()
        for proc in running:
            _stop_group(proc)

    def keep(self) -> None:
        """The programs may go on (a later ``pull`` still stops them)."""
        self._settled.set()

    def settled(self) -> bool:
        """Waits until pulled or kept; whether pulled."""
        self._settled.wait()
        return self.pulled

    def _started(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.add(proc)
            pulled = self.pulled
        if pulled:
            _stop_group(proc)

    def _ended(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._running.discard(proc)


def stream_program(argv: Sequence[str], *, what: str, on_line: Callable[[str], None],
                   stop: Stop | None = None) -> ProgramResult:
    """Run ``argv`` with stdout and stderr as one stream, handing each line (newline kept) to
    ``on_line`` as it comes; ``stdout`` of the result holds them all (a failed build's classifier
    reads its tail), ``stderr`` is empty. No time bound: a build takes what it takes (buildx bounds
    its own registry calls), and Ctrl-C or a failure here stops the child's whole group; so does
    ``stop`` when pulled (then ProgramStopped; once pulled, no program starts under it)."""
    if stop is not None and stop.pulled:
        raise ProgramStopped(f"{what}: not started ({stop.why})")
    try:
        proc = _spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      start_new_session=True)
    except OSError as exc:
        raise ProgramError(f"{what}: cannot run {argv[0]} ({exc.strerror or type(exc).__name__})") from None
    if stop is not None:
        stop._started(proc)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        with proc.stdout:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace")
                lines.append(line)
                on_line(line)
        returncode = proc.wait()
    except BaseException:  # the consumer failed, or Ctrl-C (also while waiting): never leave the child behind
        _stop_group(proc)
        proc.wait()
        raise
    finally:
        if stop is not None:
            stop._ended(proc)
    if stop is not None and stop.pulled:
        raise ProgramStopped(f"{what}: stopped ({stop.why})", output="".join(lines))
    return ProgramResult(tuple(argv), returncode, "".join(lines), "")


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

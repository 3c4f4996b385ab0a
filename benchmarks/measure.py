"""Timing primitives: run a command (or a function) and record wall time and machine CPU use;
alternate two contenders; summarise with medians."""

from __future__ import annotations

import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

PROJECT = Path(__file__).resolve().parent.parent
# Bytecode caching on, as for an installed package (a sandbox may set PYTHONDONTWRITEBYTECODE:
# then every run would compile buildctl's modules again, ~0.06 s).
CLI_ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "NO_COLOR": "1", "COLUMNS": "200"}


class BenchError(RuntimeError):
    pass


@dataclass
class Sample:
    seconds: float
    busy_cores: float  # machine-wide CPU seconds / wall seconds (dockerd, BuildKit, QEMU included)
    client_cpu: float = 0.0  # CPU seconds of the command and its children (not the daemons): load-proof
    detail: dict[str, Any] = field(default_factory=dict)


def buildctl_argv(*args: str) -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("buildctl")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "buildctl", *args]


def _cpu_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)


def timed_call(fn: Callable[[], Any]) -> tuple[Sample, Any]:
    cpu, start = _cpu_seconds(), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - start
    return Sample(wall, (_cpu_seconds() - cpu) / wall if wall else 0.0), value


def run(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None,
        timeout: float = 1200) -> Sample:
    """Run ``argv`` to completion (BenchError if it fails); the sample keeps its stdout."""
    def go() -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=cwd, env=dict(env or CLI_ENV), capture_output=True, text=True,
                              timeout=timeout, check=False)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample, proc = timed_call(go)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample.client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BenchError(f"`{shlex.join(argv)}` exited {proc.returncode}:\n{tail}")
    sample.detail["stdout"] = proc.stdout
    sample.detail["stderr"] = proc.stderr
    return sample


def alternate(contenders: Mapping[str, Callable[[int], Sample]], *, reps: int,
              prepare: Callable[[], None] | None = None, log: Callable[[str], None] = print) -> dict[str, list[Sample]]:
    """Run each contender ``reps`` times, alternating the order (A B, B A, ...) so drift in the
    machine's state (page cache, registry, other load) hits both alike; ``prepare`` runs untimed
    before every measured run (e.g. clearing the build cache)."""
    names = list(contenders)
    samples: dict[str, list[Sample]] = {n: [] for n in names}
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            sample = _sample_with_retries(lambda: contenders[name](rep), prepare=prepare, what=f"{name} rep {rep + 1}",
                                          log=log)
            samples[name].append(sample)
            retried = f", retried {sample.detail['retried']}x" if sample.detail.get("retried") else ""
            log(f"    rep {rep + 1}/{reps} {name}: {sample.seconds:.2f} s (machine busy {sample.busy_cores:.2f} "
                f"cores, client CPU {sample.client_cpu:.2f} s{retried})")
    return samples


SAMPLE_RETRIES = 2  # a transient registry error (a 500 once in a while) must not lose a row


def _sample_with_retries(measure: Callable[[], Sample], *, prepare: Callable[[], None] | None, what: str,
                         log: Callable[[str], None]) -> Sample:
    """One sample; a failed run is repeated (``prepare`` again first) up to SAMPLE_RETRIES times and
    the sample says so (``detail["retried"]``, and the table marks the row)."""
    errors: list[str] = []
    for _ in range(SAMPLE_RETRIES + 1):
        if prepare is not None:
            prepare()
        try:
            sample = measure()
        except BenchError as exc:
            errors.append(str(exc).splitlines()[0])
            log(f"    {what} failed ({errors[-1]}); measuring it again")
            continue
        sample.detail["retried"] = len(errors)
        sample.detail["retry_errors"] = errors
        return sample
    raise BenchError(f"{what} failed {len(errors)} times: {errors[-1]}")


def retried(samples: Sequence[Sample]) -> int:
    """How many of ``samples`` needed a second try (shown beside the figure)."""
    return sum(1 for s in samples if s.detail.get("retried"))


def median(samples: Sequence[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def summary(samples: Sequence[Sample]) -> dict[str, Any]:
    seconds = [round(s.seconds, 3) for s in samples]
    return {"median_s": round(statistics.median(seconds), 3), "min_s": min(seconds), "max_s": max(seconds),
            "runs_s": seconds, "busy_cores_median": round(statistics.median(s.busy_cores for s in samples), 2),
            "client_cpu_s_median": round(statistics.median(s.client_cpu for s in samples), 3)}

"""The one helper that drives the real CLI in tests, and the paths and addresses tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/buildctl/base:bookworm-1"


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900,
            input: str | None = None, modules: Path | None = None) -> CliResult:
    """Drive the real CLI (`python -m buildctl`) in a subprocess, as a user would. ``modules``: a
    file the run writes, as it exits, the names of every module it loaded (see ``loaded_modules``)."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    argv = [sys.executable, "-m", "buildctl", *args]
    if modules is not None:
        argv = [sys.executable, "-c", _MODULES_PROBE, str(modules), *args]
    proc = subprocess.run(argv, cwd=cwd or PROJECT, env=full_env, capture_output=True, text=True,
                          timeout=timeout, input=input)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


# `python -m buildctl ARGS`, writing sys.modules to argv[1] at exit (after SystemExit too).
_MODULES_PROBE = ("import atexit, runpy, sys\nout = sys.argv[1]\n"
                  "atexit.register(lambda: open(out, 'w').write(' '.join(sorted(sys.modules))))\n"
                  "sys.argv = ['buildctl', *sys.argv[2:]]\nrunpy.run_module('buildctl', run_name='__main__')\n")


def loaded_modules(path: Path) -> set[str]:
    return set(path.read_text().split())


def named(items, name: str):
    """The service (config or plan) called ``name``."""
    return next(item for item in items if item.name == name)

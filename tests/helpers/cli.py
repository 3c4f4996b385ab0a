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
            input: str | None = None) -> CliResult:
    """Drive the real CLI (`python -m buildctl`) in a subprocess, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "buildctl", *args], cwd=cwd or PROJECT, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def named(items, name: str):
    """The service (config or plan) called ``name``."""
    return next(item for item in items if item.name == name)

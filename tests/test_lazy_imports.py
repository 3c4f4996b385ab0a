"""Start-up pays only for what the command uses: `--help` and a pure `plan` import no registry
client (httpx), no docker wrapper (python-on-whales), no git, no GitOps editing. Checked in a fresh
interpreter, as a user runs them (benchmarks/ measures the time; this pins the cause)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
HEAVY = ("httpx", "python_on_whales", "tenacity", "buildctl.registry.client", "buildctl.engine.docker",
         "buildctl.gitops.publish")


def _loaded_after(argv: list[str]) -> set[str]:
    """The modules loaded once ``buildctl ARGV`` has run in a fresh interpreter."""
    code = ("import sys\nfrom buildctl import cli\nsys.argv = ['buildctl', *sys.argv[1:]]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60)
    return set(proc.stderr.split())


@pytest.mark.parametrize("argv", [["--help"], ["plan", "-c", "services.yaml"]], ids=["help", "plan"])
def test_a_command_imports_no_module_it_does_not_use(argv: list[str]) -> None:
    loaded = _loaded_after(argv)
    assert "buildctl.cli" in loaded  # the probe ran
    assert not [m for m in HEAVY if m in loaded]

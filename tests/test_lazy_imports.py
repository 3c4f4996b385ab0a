"""Start-up pays only for what the command uses: `--help` and a pure `plan` import no registry
client (httpx), no docker wrapper (python-on-whales), no git, no GitOps editing. Checked in a fresh
interpreter, as a user runs them (benchmarks/ measures the time; this pins the cause)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import loaded_modules, run_cli
from tests.helpers.project import make_project

HEAVY = ("httpx", "python_on_whales", "tenacity", "buildctl.registry.client", "buildctl.engine.docker",
         "buildctl.gitops.publish")


@pytest.mark.parametrize("argv", [["--help"], ["plan", "-c", "services.yaml"]], ids=["help", "plan"])
def test_a_command_imports_no_module_it_does_not_use(argv: list[str], tmp_path: Path) -> None:
    run_cli(*argv, modules=tmp_path / "modules")
    loaded = loaded_modules(tmp_path / "modules")
    assert "buildctl.cli" in loaded  # the probe ran
    assert not [m for m in HEAVY if m in loaded]


def test_a_release_loads_httpx_without_its_command_line_client(tmp_path: Path) -> None:
    # httpx imports its CLI (click, rich.progress, pygments: ~30 ms) whenever click is installed,
    # and the test extras install it (flask): the release must still not pay for it.
    pytest.importorskip("click")
    result = run_cli("build", "-c", "nowhere/services.yaml", modules=tmp_path / "modules")
    loaded = loaded_modules(tmp_path / "modules")
    assert result.code == 2 and "httpx" in loaded  # the release's modules loaded, then services.yaml was missing
    assert not [m for m in ("click", "pygments.lexers") if m in loaded]  # httpx._main: None, refused


@pytest.mark.parametrize("progress", ["quiet", "plain"])
def test_a_release_without_a_terminal_loads_no_rich_before_it_builds(progress: str, tmp_path: Path) -> None:
    # The plain progress lines and the error handler escape data without Rich (output/visible.py):
    # its ~40 ms of imports wait for a build's process (output/progress.py) or the final table.
    # Here the release stops at its Dockerfile, after the display began, before any build.
    make_project(tmp_path, {"api": "FROMM scratch\n"})
    result = run_cli("build", "--progress", progress, "-c", str(tmp_path / "services.yaml"),
                     modules=tmp_path / "modules")
    loaded = loaded_modules(tmp_path / "modules")
    assert result.code != 0 and "Dockerfile:1" in result.stderr, result.output
    assert "buildctl.output.progress" in loaded and "httpx" in loaded  # the display and the release began
    assert not [m for m in loaded if m == "rich" or m.startswith("rich.")]

"""doctor notices another `buildctl` on PATH (BuildKit's CLI has the same name) and says which
one `buildctl` runs (issue #15). The fakes are real executables on a real PATH."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from buildctl.commands import doctor
from tests.helpers.cli import run_cli

BUILDKIT_VERSION = "buildctl github.com/moby/buildkit v0.13.1 2ae42e0c0c8cf1a5d0de9ee8f6ca4c2b9e0e0e4b"
VENV_BIN = Path(sys.executable).parent


def _fake(folder: Path, output: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "buildctl"
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)
    return path


def _with_path(monkeypatch, *folders: Path) -> None:
    monkeypatch.setenv("PATH", os.pathsep.join([*map(str, folders), "/usr/bin", "/bin"]))


def test_no_line_without_a_clash(tmp_path: Path, monkeypatch) -> None:
    _with_path(monkeypatch, tmp_path / "empty")
    assert doctor._name_clash_check() is None
    _with_path(monkeypatch, VENV_BIN)  # only this package's own console script
    assert doctor._name_clash_check() is None


def test_buildkit_first_on_path(tmp_path: Path, monkeypatch) -> None:
    fake = _fake(tmp_path / "bk", BUILDKIT_VERSION)
    _with_path(monkeypatch, fake.parent, VENV_BIN)
    check = doctor._name_clash_check()
    assert check.name == "buildctl on PATH" and check.ok
    assert check.detail.startswith(f"warning: `buildctl` runs BuildKit's buildctl ({fake}), not this one; ")
    assert f"call this one as {VENV_BIN / 'buildctl'} or {sys.executable} -m buildctl" in check.detail


def test_this_one_first_on_path(tmp_path: Path, monkeypatch) -> None:
    fake = _fake(tmp_path / "bk", BUILDKIT_VERSION)
    other = _fake(tmp_path / "other", "buildctl 9.9")
    _with_path(monkeypatch, VENV_BIN, fake.parent, other.parent)
    check = doctor._name_clash_check()
    assert check.ok
    assert check.detail.startswith(f"`buildctl` runs this one ({VENV_BIN / 'buildctl'}); also on PATH: "
                                   f"BuildKit's buildctl at {fake}; another buildctl at {other}. ")


@pytest.mark.engine
def test_doctor_reports_it(tmp_path: Path) -> None:
    fake = _fake(tmp_path / "bk", BUILDKIT_VERSION)
    result = run_cli("doctor", "--json", env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"})
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["buildctl on PATH"]["ok"] is True
    assert f"runs BuildKit's buildctl ({fake}), not this one" in checks["buildctl on PATH"]["detail"]

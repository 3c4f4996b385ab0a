"""binfmt: handler state, idempotent registration, and a real program run under emulation."""

from __future__ import annotations

import struct

import pytest

from buildctl import platforms
from buildctl.engine import binfmt
from buildctl.model import BinfmtConfig
from tests.helpers.cli import run_cli


@pytest.mark.parametrize(("arch", "machine"), [("amd64", 62), ("arm64", 183)])
def test_probe_program_is_a_valid_elf_of_that_machine(arch: str, machine: int) -> None:
    data = binfmt.probe_program(arch)
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    assert struct.unpack_from("<H", data, 18)[0] == machine


def test_foreign_platforms() -> None:
    assert platforms.foreign(("linux/amd64", "linux/arm64/v8"), "linux/amd64") == ("linux/arm64/v8",)


@pytest.mark.engine
def test_ensure_twice_changes_nothing_the_second_time() -> None:
    platforms = ("linux/amd64", "linux/arm64")
    first = binfmt.ensure(platforms, native="linux/amd64", config=BinfmtConfig())
    before = (binfmt.BINFMT_DIR / "qemu-aarch64").read_text()
    second = binfmt.ensure(platforms, native="linux/amd64", config=BinfmtConfig())
    assert (binfmt.BINFMT_DIR / "qemu-aarch64").read_text() == before
    assert [r.action for r in second] == ["native", "unchanged"]
    arm = second[1]
    assert arm.state.ok and "F" in arm.state.flags
    assert arm.qemu_version.startswith("qemu-aarch64 version")
    assert "exit 42" in arm.probe
    assert first[1].state == arm.state


@pytest.mark.engine
def test_probe_runs_foreign_code_and_rejects_unknown() -> None:
    assert "exit 42" in binfmt.probe("linux/arm64")
    assert binfmt.probe("linux/s390x").startswith("not probed")


@pytest.mark.engine
def test_cli_binfmt_json() -> None:
    import json

    result = run_cli("binfmt", "--json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    arm = next(r for r in data if r["platform"] == "linux/arm64")
    assert arm["action"] == "unchanged" and arm["state"]["flags"].find("F") >= 0

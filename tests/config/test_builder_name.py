"""config/builder_name.py: the builder a services.yaml names, read before the release's imports
(the CLI's early `buildx inspect`) — the loader's name or none, never an option for buildx."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildctl import workdir
from buildctl.config import builder_name
from buildctl.config.loader import load_config
from tests.helpers.project import GOOD, make_project


@pytest.mark.parametrize(("builder", "expected"), [
    ("", "default"),  # no builder: the engine's own
    ("builder: {driver: docker}\n", "default"),
    ("builder: {driver: docker-container}\n", "buildctl"),
    ("builder: {name: ci-builder, driver: docker-container}\n", "ci-builder"),
    ("builder:\n  driver: remote\n  name: farm.1\n  nodes: [{endpoint: 'tcp://127.0.0.1:1234'}]\n", "farm.1"),
])
def test_the_name_read_early_is_the_one_the_loader_gives(tmp_path: Path, builder: str, expected: str) -> None:
    project = make_project(tmp_path, {"api": GOOD})
    path = project / "services.yaml"
    path.write_text(builder + path.read_text())
    assert builder_name.named_in(path) == expected
    assert load_config(path).builder.name == expected


@pytest.mark.parametrize("text", [
    "builder: {name: --help}\n",  # would read as an option of `buildx inspect`
    "builder: {name: '-x'}\n",
    "builder: {name: 'a b'}\n",
    "builder: {name: 12}\n",
    "builder: [a, b]\n",
    "builder: {driver: [docker]}\n",
    "builder: {name: [x\n",  # not YAML
    "- a list\n",
    "",
])
def test_what_does_not_read_plainly_names_no_builder(tmp_path: Path, text: str) -> None:
    path = tmp_path / "services.yaml"
    path.write_text(text)
    assert builder_name.named_in(path) is None


def test_no_file_a_fifo_or_a_huge_file_names_no_builder(tmp_path: Path) -> None:
    assert builder_name.named_in(tmp_path / "missing.yaml") is None
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert builder_name.named_in(fifo) is None  # and it did not wait for a writer
    huge = tmp_path / "huge.yaml"
    huge.write_text("builder: {name: big}\n" + "# pad\n" * 300_000)
    assert builder_name.named_in(huge) is None


def test_the_command_lines_builder_wins_and_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "services.yaml"
    path.write_text("builder: {name: from-file}\n")
    assert builder_name.named_in(path, override="from-cli") == "from-cli"
    assert builder_name.named_in(path, override="--bootstrap") is None


def test_only_an_agent_that_remembers_no_builder_check_inspects_early(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "services.yaml"
    path.write_text("builder: {name: ci}\n")
    assert builder_name.to_inspect_early(path, override=None, recreate=False) == "ci"  # no cache folder at all
    (workdir.cache_root() / workdir.USABLE_BUILDERS).mkdir(parents=True)
    assert builder_name.to_inspect_early(path, override=None, recreate=False) == "ci"  # an empty one
    assert builder_name.to_inspect_early(path, override=None, recreate=True) is None  # inspected once recreated
    workdir.set_mark(workdir.USABLE_BUILDERS, "0" * 64, content=b"{}")
    assert builder_name.to_inspect_early(path, override=None, recreate=False) is None

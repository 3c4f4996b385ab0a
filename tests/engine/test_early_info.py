"""engine/early_info.py: `docker info` started before the release's imports is the answer
engine_info gives — once, and only to a release asking the same Docker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from buildctl.engine import docker as engine
from buildctl.engine import early_info
from buildctl.errors import CommandError


def fake_docker(folder: Path, version: str) -> Path:
    """A `docker` on PATH that answers `docker info` with ``version``-N, N counting its runs (the
    file it returns holds one line per run)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = folder / "runs"
    info = json.dumps({"ServerVersion": f"{version}-RUN", "Architecture": "x86_64", "OSType": "linux",
                       "ClientInfo": {"Version": "28"}, "Driver": "overlayfs",
                       "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]]})
    script = folder / "docker"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\nn=$(wc -l < {runs})\n"
                      f"echo '{info}' | sed \"s/-RUN/-$n/\"\n")
    script.chmod(0o755)
    return runs


def test_the_early_answer_is_taken_once_and_forgotten_after_the_block(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake_docker(tmp_path / "bin", "early")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with early_info.started():
        assert engine.engine_info().server_version == "early-1"  # the one started at the block's start
        assert engine.engine_info().server_version == "early-2"  # taken once: the second asks again
    with early_info.started():
        time.sleep(0.3)  # it ran; nobody took it
    assert engine.engine_info().server_version == "early-4"  # a fresh one, not the forgotten third


def test_one_started_for_another_docker_is_never_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_docker(tmp_path / "bin", "early")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    with early_info.started():
        fake_docker(tmp_path / "other", "other")
        monkeypatch.setenv("PATH", f"{tmp_path / 'other'}:/usr/bin:/bin")
        assert engine.engine_info().server_version == "other-1"


@pytest.mark.engine
def test_under_another_docker_host_the_release_asks_that_one(monkeypatch: pytest.MonkeyPatch) -> None:
    with early_info.started():
        real = engine.engine_info()
    assert real.server_version != "?" and real.multi_platform_store
    with early_info.started():  # started for the engine on this machine
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        with pytest.raises(CommandError, match="the Docker daemon is not reachable"):
            engine.engine_info()


@pytest.mark.engine
def test_the_early_inspect_is_the_first_read_of_that_builder_and_only_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from buildctl.engine import builders
    from buildctl.model import BuilderConfig, Driver

    default = BuilderConfig(name="default", driver=Driver.DOCKER)
    now = builders.describe(default)
    assert now is not None and now.nodes
    with early_info.started():
        early_info.start_inspect("default")
        assert builders.describe(default) == now  # not a first read: asks buildx itself, leaves the early one
        assert builders.describe(default, early=True) == now  # the early one, as buildx answered it
        assert early_info.take_inspect("default") is None  # taken once
    with early_info.started():
        early_info.start_inspect("default")
        assert early_info.take_inspect("another") is None  # another builder's first read never takes it
        monkeypatch.setenv("BUILDX_CONFIG", "/nonexistent/buildx")
        assert early_info.take_inspect("default") is None  # nor one of another buildx store
        monkeypatch.delenv("BUILDX_CONFIG")
        assert early_info.take_inspect("default") is not None
    with early_info.started():
        early_info.start_inspect(None)  # nothing to inspect early: nothing started
        assert early_info.take_inspect("default") is None

"""builder: reuse the engine's default builder, refuse what cannot work, with the reason."""

from __future__ import annotations

import pytest

from buildctl import platforms
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.errors import CommandError, OperationError
from buildctl.model import BuilderConfig


def test_missing_platforms_normalises_arm64_v8() -> None:
    supported = ("linux/amd64", "linux/arm64")
    assert platforms.missing(("linux/arm64/v8", "linux/amd64"), supported) == ()
    assert platforms.missing(("linux/arm/v7",), supported) == ("linux/arm/v7",)


def test_docker_driver_without_containerd_store_is_refused() -> None:
    info = engine.EngineInfo("28", "26", "overlay2", "linux/amd64")
    assert not info.multi_platform_store


@pytest.mark.engine
def test_default_builder_is_reused_and_covers_both_platforms() -> None:
    info = engine.engine_info()
    assert info.multi_platform_store
    report = builder.ensure_builder(BuilderConfig(), platforms=("linux/amd64", "linux/arm64"), info=info)
    assert (report.name, report.driver, report.action) == ("default", "docker", "reused")
    assert {"linux/amd64", "linux/arm64"} <= set(report.platforms)


@pytest.mark.engine
def test_default_builder_on_a_single_platform_store_says_how_to_fix() -> None:
    info = engine.engine_info()
    overlay = engine.EngineInfo(info.client_version, info.server_version, "overlay2", info.native_platform)
    with pytest.raises(OperationError) as exc:
        builder.ensure_builder(BuilderConfig(), platforms=("linux/amd64", "linux/arm64"), info=overlay)
    assert "cannot build multi-platform images" in exc.value.message
    assert "containerd-snapshotter" in exc.value.hint


@pytest.mark.engine
def test_builder_missing_a_platform_names_it_and_binfmt() -> None:
    with pytest.raises(OperationError) as exc:
        builder.ensure_builder(BuilderConfig(), platforms=("linux/amd64", "linux/arm/v7"), info=engine.engine_info())
    assert "does not support linux/arm/v7" in exc.value.message
    assert "buildctl binfmt" in exc.value.hint


@pytest.mark.engine
def test_unknown_docker_driver_builder() -> None:
    with pytest.raises(OperationError, match="buildx builder 'nosuch' not found"):
        builder.ensure_builder(BuilderConfig(name="nosuch"), platforms=("linux/amd64",), info=engine.engine_info())


@pytest.mark.engine
def test_docker_container_driver_runs_the_exact_commands_and_reports_the_pull_failure() -> None:
    # Its BuildKit image is on Docker Hub, unreachable here: the create must fail clearly, name the
    # command and the image, and leave no broken builder behind.
    cfg = BuilderConfig(name="buildctl-test-container", driver="docker-container",
                        driver_opts={"network": "host"})
    with pytest.raises(CommandError) as exc:
        builder.ensure_builder(cfg, platforms=("linux/amd64",), info=engine.engine_info())
    failure = exc.value.failure
    assert failure.command[1:] == ("buildx", "create", "--bootstrap", "--driver", "docker-container",
                                   "--driver-opt", "network=host", "--name", "buildctl-test-container")
    assert "moby/buildkit" in failure.output
    assert "driver_opts.image" in exc.value.hint
    assert engine.inspect_builder("buildctl-test-container") is None

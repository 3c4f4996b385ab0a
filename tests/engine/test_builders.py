"""builder: reuse the engine's default builder, refuse what cannot work, with the reason."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from buildctl import platforms
from buildctl.engine import binfmt
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtAction, BuilderAction
from buildctl.errors import OperationError
from buildctl.model import BuilderConfig, BuilderNode, Driver, frozen_map
from tests.helpers.buildx import new_container_builder


def test_missing_platforms_normalises_arm64_v8() -> None:
    supported = ("linux/amd64", "linux/arm64")
    assert platforms.missing(("linux/arm64/v8", "linux/amd64"), supported) == ()
    assert platforms.missing(("linux/arm/v7",), supported) == ("linux/arm/v7",)


@pytest.mark.parametrize(("store", "multi"), [("overlay2", False), ("", False), ("io.containerd.snapshotter.v1", True)])
def test_only_the_containerd_image_store_holds_multi_platform_images(store: str, multi: bool) -> None:
    # The refusal itself (ensure_builder on such an engine) is the engine test below.
    assert engine.EngineInfo("28", "26", store, "linux/amd64").multi_platform_store is multi


@pytest.mark.engine
def test_default_builder_is_reused_and_covers_both_platforms() -> None:
    info = engine.engine_info()
    assert info.multi_platform_store
    report = builder.ensure_builder(BuilderConfig(), platforms=("linux/amd64", "linux/arm64"), info=info)
    assert (report.name, report.driver, report.action) == ("default", "docker", "reused")
    assert {"linux/amd64", "linux/arm64"} <= set(report.platforms)


@pytest.mark.engine
def test_an_earlier_inspect_stands_for_the_first_and_a_failed_one_is_inspected_again() -> None:
    """The release starts `buildx inspect` as soon as one service is known to build (pipeline/release.py):
    its answer is the report's (a missing builder too), and one that failed leaves the inspect (and
    its error) to ensure_builder."""
    info, both = engine.engine_info(), ("linux/amd64", "linux/arm64")
    plain = builder.ensure_builder(BuilderConfig(), platforms=both, info=info)
    with ThreadPoolExecutor(1) as pool:
        early = pool.submit(builder.describe, BuilderConfig())
        missing = pool.submit(builder.describe, BuilderConfig(name="nosuch"))
        broken = pool.submit(lambda: (_ for _ in ()).throw(OperationError("docker vanished")))
        assert builder.ensure_builder(BuilderConfig(), platforms=both, info=info, read=early) == plain
        assert builder.ensure_builder(BuilderConfig(), platforms=both, info=info, read=broken) == plain
    assert missing.result() is None
    with pytest.raises(OperationError, match="buildx builder 'nosuch' not found"):
        builder.ensure_builder(BuilderConfig(name="nosuch"), platforms=both, info=info, read=missing)


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
def test_docker_container_builder_whose_image_cannot_start_is_reported_and_removed() -> None:
    name = f"buildctl-test-{uuid.uuid4().hex[:6]}"
    cfg = BuilderConfig(name=name, driver=Driver.DOCKER_CONTAINER,
                        driver_opts=frozen_map({"network": "host", "image": "127.0.0.1:5000/nosuch/buildkit:none"}))
    with pytest.raises(OperationError) as exc:
        builder.ensure_builder(cfg, platforms=("linux/amd64",), info=engine.engine_info())
    assert exc.value.message.startswith(f"buildx builder {name!r} did not start: node {name}0")
    assert "driver_opts.image" in exc.value.hint
    assert builder.describe(cfg) is None  # no broken builder left behind


@pytest.fixture
def container_builder() -> Iterator[BuilderConfig]:
    with new_container_builder("buildctl-test") as cfg:
        yield cfg


@pytest.mark.engine
def test_docker_container_builder_is_created_reused_refused_when_it_differs_and_recreated(
        container_builder: BuilderConfig) -> None:
    info = engine.engine_info()
    both = ("linux/amd64", "linux/arm64")
    created = builder.ensure_builder(container_builder, platforms=both, info=info)
    assert created.action is BuilderAction.CREATED and created.local
    (node,) = created.nodes
    assert node.status == "running" and node.version.startswith("v0.13")
    assert dict(node.driver_opts)["image"] == container_builder.driver_opts["image"]
    assert builder.ensure_builder(container_builder, platforms=both, info=info).action is BuilderAction.REUSED
    changed = replace(container_builder, driver_opts=frozen_map({**container_builder.driver_opts, "network": "bridge"}))
    with pytest.raises(OperationError) as exc:
        builder.ensure_builder(changed, platforms=both, info=info)
    assert exc.value.message == (f"buildx builder {changed.name!r} differs from services.yaml: node {changed.name}0 "
                                 "has driver option network=host, services.yaml says bridge")
    assert "--recreate-builder" in exc.value.hint
    again = builder.ensure_builder(changed, platforms=both, info=info, recreate=True)
    assert again.action is BuilderAction.RECREATED
    assert dict(again.nodes[0].driver_opts)["network"] == "bridge"
    # emulation proved through the builder, not on the host: arm64 runs in its BuildKit container
    (amd, arm) = binfmt.probe_builder(both, builder=again)
    assert amd.action is BinfmtAction.NATIVE
    assert arm.action is BinfmtAction.EMULATED and arm.probe.startswith("ran a linux/arm64 program on builder")


@pytest.mark.engine
def test_remote_node_that_is_down_is_named_within_seconds() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = f"buildctl-test-{uuid.uuid4().hex[:6]}"
    cfg = BuilderConfig(name=name, driver=Driver.REMOTE, nodes=(BuilderNode(f"tcp://127.0.0.1:{port}"),))
    started = time.monotonic()
    try:
        with pytest.raises(OperationError) as exc:
            builder.ensure_builder(cfg, platforms=("linux/amd64",), info=engine.engine_info())
    finally:
        subprocess.run(["docker", "buildx", "rm", name], capture_output=True, check=False)
    assert time.monotonic() - started < 20
    assert exc.value.message == f"builder node {name}0 (tcp://127.0.0.1:{port}) is down: connection refused"

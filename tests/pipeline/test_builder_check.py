"""pipeline/builder_check.py: the builds start beside the builder check; they stand when the check
found the builder as it was, and are stopped (then built again) when the check changes it or fails."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from buildctl.engine import binfmt
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtAction, BuilderAction
from buildctl.errors import OperationError
from buildctl.model import BinfmtConfig, BuilderConfig, Driver, frozen_map
from buildctl.pipeline.builder_check import BuilderCheck, remembered
from buildctl.programs import ProgramStopped, Stop, stream_program
from tests.helpers.buildx import new_container_builder

pytestmark = pytest.mark.engine
BOTH = ("linux/amd64", "linux/arm64")


def check_of(cfg: BuilderConfig) -> BuilderCheck:
    info = engine.engine_info()
    host = binfmt.register_host(BOTH, native=info.native_platform, config=BinfmtConfig())
    return BuilderCheck(cfg, platforms=BOTH, info=info, host=host, read=None)


def begun_under(stop: Stop | None) -> tuple[threading.Thread, list[BaseException]]:
    """A long program streamed under ``stop``, as a build begun before the check answered."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            stream_program(["sleep", "300"], what="build", on_line=lambda line: None, stop=stop)
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, errors


@pytest.fixture
def missing_container_builder() -> Iterator[BuilderConfig]:
    with new_container_builder("buildctl-check") as cfg:
        yield cfg


def test_on_the_builder_services_yaml_names_the_builds_begun_beside_the_check_stand() -> None:
    check = check_of(BuilderConfig(name="default", driver=Driver.DOCKER))
    worker, errors = begun_under(check.stop)
    selected = check.selected()
    assert selected.action is BuilderAction.REUSED and not check.stopped
    assert check.stop.settled() is False  # kept
    arm = next(h for h in check.handlers() if h.platform == "linux/arm64")
    assert arm.action is not BinfmtAction.NATIVE and arm.probe.startswith("ran a linux/arm64 program")
    time.sleep(0.3)
    assert worker.is_alive() and not errors  # the "build" goes on
    check.stop.pull()
    worker.join(5)


def test_a_check_that_creates_the_builder_stops_what_began_before_it(
        missing_container_builder: BuilderConfig) -> None:
    check = check_of(missing_container_builder)
    worker, errors = begun_under(check.stop)
    selected = check.selected()
    worker.join(5)
    assert selected.action is BuilderAction.CREATED and check.stopped
    assert not worker.is_alive() and [type(e) for e in errors] == [ProgramStopped]
    assert selected.nodes[0].status == "running"


def test_a_check_that_fails_stops_the_builds_and_its_error_is_the_one_raised() -> None:
    check = check_of(BuilderConfig(name=f"no-such-context-{uuid.uuid4().hex[:6]}", driver=Driver.DOCKER))
    worker, errors = begun_under(check.stop)
    with pytest.raises(OperationError, match=r"^buildx builder 'no-such-context-\w+' not found$"):
        check.selected()
    worker.join(5)
    assert check.stopped and [type(e) for e in errors] == [ProgramStopped]


def test_only_a_builder_that_passed_its_check_before_is_built_on_ahead(
        missing_container_builder: BuilderConfig) -> None:
    cfg = missing_container_builder
    assert remembered(cfg, BOTH) is None  # new: the release waits for its check
    selected = check_of(cfg).selected()
    known = remembered(cfg, BOTH)
    assert known is not None and (known.name, known.driver, known.nodes) == (selected.name, selected.driver,
                                                                            selected.nodes)
    assert remembered(cfg, ("linux/amd64",)) is None  # other platforms: another mark
    # The builder of that name replaced by one that differs from cfg: cfg's next check fails and
    # takes its mark back, so the release after it waits for the check again.
    subprocess.run(["docker", "buildx", "rm", cfg.name], capture_output=True, check=True, timeout=120)
    other = replace(cfg, driver_opts=frozen_map({**cfg.driver_opts, "network": "bridge"}))
    check_of(other).selected()
    with pytest.raises(OperationError, match="differs from services.yaml"):
        check_of(cfg).selected()
    assert remembered(cfg, BOTH) is None and remembered(other, BOTH) is not None


def test_a_check_of_the_remembered_builder_asks_buildx_nothing_and_again_looks_at_it_now(
        missing_container_builder: BuilderConfig) -> None:
    """The remembered builder is checked without `buildx inspect` (a builder removed since still
    passes: its builds then fail and say so); again() checks it as it is, and creates it."""
    cfg = missing_container_builder
    check_of(cfg).selected()
    known = remembered(cfg, BOTH)
    subprocess.run(["docker", "buildx", "rm", cfg.name], capture_output=True, check=True, timeout=120)
    info = engine.engine_info()
    host = binfmt.register_host(BOTH, native=info.native_platform, config=BinfmtConfig())
    check = BuilderCheck(cfg, platforms=BOTH, info=info, host=host, read=None, remembered=known)
    assert check.selected().action is BuilderAction.REUSED and check.remembered and not check.stopped
    assert subprocess.run(["docker", "buildx", "inspect", cfg.name], capture_output=True).returncode != 0
    now = check.again()
    worker, errors = begun_under(now.stop)
    assert now.selected().action is BuilderAction.CREATED and now.stopped and not now.remembered
    worker.join(5)
    assert [type(e) for e in errors] == [ProgramStopped]


@pytest.mark.parametrize("content", [b"", b"{}", b"[1]", b'{"name": "x", "driver": "d", "nodes": [{"name": 1}]}',
                                     b"\xff\xfe", b'{"name": "other", "driver": "docker", "nodes": []}'])
def test_a_mark_that_holds_no_builder_of_that_name_is_none(content: bytes, tmp_path, monkeypatch) -> None:
    from buildctl import workdir
    from buildctl.pipeline import builder_check

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cfg = BuilderConfig(name="x", driver=Driver.DOCKER_CONTAINER)
    workdir.set_mark(builder_check.FOLDER, builder_check._mark(cfg, BOTH), content=content)
    assert remembered(cfg, BOTH) is None


def test_a_builder_is_remembered_per_builder_store_and_a_runs_scoped_config_keeps_it(tmp_path, monkeypatch) -> None:
    """buildx keeps its builders in DOCKER_CONFIG/buildx (or BUILDX_CONFIG): another store has other
    builders of the same name, so it has other marks; the run-scoped config links to the user's."""
    from buildctl.engine import docker_config
    from buildctl.pipeline import builder_check

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BUILDX_CONFIG", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "user"))
    cfg = BuilderConfig(name="x", driver=Driver.DOCKER_CONTAINER)
    user = builder_check._mark(cfg, BOTH)
    with docker_config.run_scoped("127.0.0.1:5000"):
        assert builder_check._mark(cfg, BOTH) == user
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "other"))
    assert builder_check._mark(cfg, BOTH) != user
    monkeypatch.setenv("BUILDX_CONFIG", str(tmp_path / "user" / "buildx"))
    assert builder_check._mark(cfg, BOTH) == user


def test_passed_waits_for_the_remembered_check_that_starts_the_builder(
        missing_container_builder: BuilderConfig) -> None:
    """A remembered node not running is started by the check (the builds' Stop pulled): passed()
    returns only once that check has ended, so again() never runs beside it."""
    cfg = missing_container_builder
    check_of(cfg).selected()
    known = remembered(cfg, BOTH)
    assert known is not None
    subprocess.run(["docker", "buildx", "stop", cfg.name], capture_output=True, check=True, timeout=120)
    stale = replace(known, nodes=tuple(replace(n, status="inactive") for n in known.nodes))
    info = engine.engine_info()
    host = binfmt.register_host(BOTH, native=info.native_platform, config=BinfmtConfig())
    check = BuilderCheck(cfg, platforms=BOTH, info=info, host=host, read=None, remembered=stale)
    assert check.passed() is False  # it started the builder: what began before it was stopped
    assert check._selected.done() and check._handlers.done() and check.stopped
    assert check.selected().nodes[0].status == "running"

"""Registry faults injected between the engine and the registry (tests/fault_proxy.py): transient
ones are retried and the release still comes out the same; a registry that stays down fails the
release with one clear message after a bound, and Git does not change (issue #5)."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.reliability import (
    gitops_remote,
    record,
    resolve,
    scratch_project,
    scratch_service,
    tip,
    unique_tag,
    write_services,
)

pytestmark = pytest.mark.engine

IMAGE = "buildctl-faults/app"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_project(tmp_path_factory.mktemp("faults"), IMAGE)


def new_tag() -> str:
    return unique_tag("faults")


def test_transient_faults_in_push_verify_and_tag_are_retried(project: Path, tmp_path: Path) -> None:
    clean_tag, tag = new_tag(), new_tag()
    with FaultProxy() as proxy:
        clean = run_cli("build", "--rebuild", "--registry", proxy.address, "--tag", clean_tag, "--record", str(tmp_path / "clean.json"),
                        cwd=project)
        assert clean.code == 0, clean.output
        # BuildKit retries a failing request 4 times within one build; the 5th and 6th 503 fall on
        # buildctl's second attempt, a rebuild from the cache. (buildx then pushes the same image
        # again through dockerd, as "docker/..."; those requests pass.)
        proxy.fail(503, times=6, method="PUT", path=r"/manifests/sha256:", agent="^buildkit/")
        proxy.fail(429, times=2, method="GET", path=r"/manifests/", agent="^python-httpx/", retry_after="1")
        # the release tag's PUT (buildctl's registry client, engine.tag_index) is retried by buildctl
        proxy.fail(503, times=2, method="PUT", path=rf"/manifests/{tag}$", agent="^python-httpx/")
        started = time.monotonic()
        faulted = run_cli("build", "--rebuild", "--registry", proxy.address, "--tag", tag, "--record", str(tmp_path / "rec.json"),
                          cwd=project)
        elapsed = time.monotonic() - started
        injected = {kind: proxy.count(kind) for kind in ("injected 503", "injected 429")}
        address = proxy.address
    print(f"faulted release: {elapsed:.1f} s, {injected}")
    assert faulted.code == 0, faulted.output
    assert injected == {"injected 503": 8, "injected 429": 2}

    # The same image manifests as without faults (the index differs only by its provenance
    # attestation's timestamps), and the tag names exactly the verified index.
    before, after = record(tmp_path / "clean.json")["services"][0], record(tmp_path / "rec.json")["services"][0]
    assert after["platforms"] == before["platforms"]
    assert after["verified"] and after["tagged"]
    assert resolve(REGISTRY, IMAGE, tag) == after["index_digest"]

    # Each retry is logged at WARNING on stderr: what, why, attempt n of m.
    reg = re.escape(address)
    push = re.findall(rf"buildctl: WARNING: push of app: registry {reg} answered 503 Service Unavailable; "
                      r"attempt 1 of 3 failed, retrying in [\d.]+ s", faulted.stderr)
    tagging = re.findall(rf"buildctl: WARNING: manifest {reg}/{IMAGE}:{tag}: HTTP 503[^;\n]*; retrying in [\d.]+s "
                         r"\(attempt (\d) of 5 failed\)", faulted.stderr)
    verifying = re.findall(r"buildctl: WARNING: manifest .*: HTTP 429, Retry-After 1s; retrying in 1\.0s "
                           r"\(attempt (\d) of 5 failed\)", faulted.stderr)
    assert (len(push), tagging, verifying) == (1, ["1", "2"], ["1", "2"]), faulted.stderr
    # The second attempt rebuilt from the cache: nothing was built again.
    log = Path(after["build_log"]).read_text()
    second = log.split("buildctl: attempt 2: building again from the cache and pushing")[1]
    assert re.search(r"COPY --chmod=755 \w+/app /app\n#\d+ CACHED", second)


def test_connections_cut_mid_blob_are_recovered(project: Path, tmp_path: Path) -> None:
    scratch_service(tmp_path, "app", nonce=uuid.uuid4().hex)  # a new layer: its blob must be uploaded
    write_services(tmp_path, {"app": IMAGE})
    tag = new_tag()
    with FaultProxy() as proxy:
        proxy.drop(times=3, method="PUT", path=r"/blobs/uploads/", agent="^buildkit/")  # cut uploads half-way
        proxy.drop(times=2, method="GET", path=r"/blobs/sha256:", agent="^python-httpx/")  # and verification's reads
        result = run_cli("build", "--rebuild", "--registry", proxy.address, "--tag", tag, "--record", "rec.json", cwd=tmp_path)
        dropped = proxy.count("dropped request"), proxy.count("dropped response")
    assert result.code == 0, result.output
    assert dropped == (3, 2)
    service = record(tmp_path / "rec.json")["services"][0]
    assert service["verified"] and resolve(REGISTRY, IMAGE, tag) == service["index_digest"]
    assert len(re.findall(r"WARNING: blob sha256:\w+ of .*: ReadError", result.stderr)) == 2, result.stderr


def test_a_registry_that_stays_down_fails_the_release_after_the_bound(tmp_path: Path) -> None:
    with FaultProxy() as proxy:
        scratch_service(tmp_path, "app")
        remote = gitops_remote(tmp_path / "gitops", {"app": f"{proxy.address}/{IMAGE}"})
        write_services(tmp_path, {"app": IMAGE}, gitops_repo=str(remote))
        before = tip(remote)
        # /v2/ still answers (the pre-flight check passes), every repository request gets 503: a
        # registry whose storage backend is down.
        proxy.fail(503, times=10**6, path=r"^/v2/.+")
        started = time.monotonic()
        result = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", new_tag(), cwd=tmp_path)
        elapsed = time.monotonic() - started
    print(f"registry down: failed after {elapsed:.1f} s")
    assert result.code == 1, result.output
    assert tip(remote) == before  # nothing committed, nothing pushed
    reg = re.escape(proxy.address)
    assert re.search(rf"push of app: registry {reg} answered 503 Service Unavailable; gave up after 3 attempt\(s\) in "
                     r"\d+ s", result.stdout), result.stdout
    assert "release gate FAILED: no tag created, nothing changed in Git" in result.stdout
    warnings = re.findall(r"WARNING: push of app: registry \S+ answered 503 Service Unavailable; attempt (\d) of 3 "
                          r"failed", result.stderr)
    assert warnings == ["1", "2"]
    assert "Traceback" not in result.output
    assert elapsed < 120


def test_an_unreachable_registry_fails_before_anything_is_built(tmp_path: Path) -> None:
    with FaultProxy() as proxy:
        scratch_service(tmp_path, "app")
        remote = gitops_remote(tmp_path / "gitops", {"app": f"{proxy.address}/{IMAGE}"})
        write_services(tmp_path, {"app": IMAGE}, gitops_repo=str(remote))
        before = tip(remote)
        proxy.refuse()
        result = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", new_tag(), cwd=tmp_path)
    assert result.code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("buildctl: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"buildctl: error: registry {proxy.address} unreachable")
    assert tip(remote) == before
    assert not list(tmp_path.glob(".buildctl/runs/*/*.build.log"))  # nothing was built

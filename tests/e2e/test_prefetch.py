"""The base images' layers are read while the builds run (inspect/prefetch.py), on the real stack:
on a fresh agent (empty layer cache) the prefetch, not the verification, reads them; a prefetch
that fails or hangs neither fails the release nor holds its verification past the prefetch's bounds."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from buildctl.inspect import prefetch
from buildctl.inspect.cache import FORMAT_VERSION
from buildctl.inspect.layers import LayerCache, ScanLimits
from buildctl.registry.client import RegistryClient
from buildctl.registry.credentials import PASSWORD_ENV, USERNAME_ENV, CredentialLookup
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.project import GOOD, record_of
from tests.helpers.reliability import start_cli, wait_for

pytestmark = pytest.mark.engine

BOTH = ("linux/amd64", "linux/arm64")
ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def _manifest(repository: str, reference: str) -> dict:
    response = httpx.get(f"http://{REGISTRY}/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
    response.raise_for_status()
    return response.json()


def layers_per_platform(repository: str, reference: str) -> dict[str, list[tuple[str, int]]]:
    """platform -> [(digest, size)] of an index in the local registry, bottom layer first."""
    found = {}
    for entry in _manifest(repository, reference)["manifests"]:
        platform = entry.get("platform", {})
        if platform.get("architecture") in ("amd64", "arm64"):
            image = _manifest(repository, entry["digest"])
            found[f"linux/{platform['architecture']}"] = [(la["digest"], la["size"]) for la in image["layers"]]
    return found


def project(root: Path, base: str) -> Path:
    """Two services built FROM ``base`` (one image shared by both, on both platforms), in
    repositories of their own: no table an earlier test shared through them (shared_tables.py)."""
    own = uuid.uuid4().hex[:8]
    for name in ("one", "two"):
        (root / name).mkdir(parents=True)
        (root / name / "Dockerfile").write_text(GOOD)
        (root / name / "app.py").write_text(f"print('{name} {uuid.uuid4().hex}')\n")
    services = "".join(f"  {name}:\n    context: {name}\n    image: buildctl-e2e/prefetch-{own}-{name}\n"
                       f"    build_args: {{BASE_IMAGE: '{base}'}}\n" for name in ("one", "two"))
    (root / "services.yaml").write_text(f"platforms: [{', '.join(BOTH)}]\nservices:\n{services}")
    return root


def release(root: Path, cache: Path, *extra: str) -> tuple[int, dict, str]:
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "--record", "rec.json", *extra, cwd=root,
                     env={"XDG_CACHE_HOME": str(cache), "BUILDCTL_PREFETCH": "1"})
    return result.code, record_of(root / "rec.json"), result.output


def test_on_a_fresh_agent_the_prefetch_reads_the_base_layers_once_for_every_service(tmp_path: Path) -> None:
    root, cache = project(tmp_path / "p", BASE_IMAGE), tmp_path / "cache"
    repository, tag = BASE_IMAGE.split("/", 1)[1].split(":")
    base = layers_per_platform(repository, tag)
    code, record, output = release(root, cache)
    assert code == 0, output
    report = record["prefetch"]
    assert sorted(report["images"]) == [f"{BASE_IMAGE} {p}" for p in BOTH]
    distinct = {layer for layers in base.values() for layer in layers}
    # Read by the prefetch itself: the cache loads a layer once per run, so verification did not.
    assert (report["layers"], report["read"], report["errors"]) == (len(distinct), len(distinct), [])
    tables = cache / "buildctl" / "layers" / f"v{FORMAT_VERSION}" / "tables"
    for digest, size in distinct:
        assert (tables / f"{digest.replace(':', '-')}-{size}.json").is_file()
    for svc in record["services"]:
        assert svc["verified"], svc["checks"]
        pushed = layers_per_platform(svc["repository"].split("/", 1)[1], svc["index_digest"])
        for platform in BOTH:  # the premise: the pushed image's bottom layers are the base's blobs
            assert pushed[platform][: len(base[platform])] == base[platform]
    assert report["loaded"] == 0  # none was on disk
    # A second run finds them in the cache: nothing to read again; building, it loads them from disk
    # while the builds run. A third that builds nothing (every service reused) loads none.
    code, again, output = release(root, cache, "--rebuild")
    assert code == 0, output
    assert (again["prefetch"]["layers"], again["prefetch"]["read"], again["prefetch"]["loaded"]) == (
        len(distinct), 0, len(distinct))
    code, reused, output = release(root, cache)
    assert code == 0, output
    assert {s["outcome"].split()[0] for s in reused["services"]} == {"reused"}
    assert (reused["prefetch"]["read"], reused["prefetch"]["loaded"]) == (0, 0)
    # Another fresh agent takes the tables the first run shared through the release's repositories.
    code, fresh, output = release(root, tmp_path / "another-agent")
    assert code == 0, output
    assert (fresh["prefetch"]["layers"], fresh["prefetch"]["read"], fresh["prefetch"]["errors"]) == (
        len(distinct), 0, [])
    assert fresh["prefetch"]["shared"] == 2 * len(distinct)  # each layer's table in both services' repositories
    assert all(s["verified"] for s in fresh["services"])
    # Tables from the registry vouch for their own repository only: never kept as if read here.
    assert not any((tmp_path / "another-agent" / tables.relative_to(cache) / f"{d.replace(':', '-')}-{n}.json").exists()
                   for d, n in distinct)


def test_a_prefetch_the_registry_refuses_leaves_the_layers_to_verification(tmp_path: Path) -> None:
    with FaultProxy() as proxy:  # the base on "another registry" that fails buildctl's blob reads only
        proxy.fail(500, times=1000, method="GET", path="/blobs/", agent="python-httpx")
        root = project(tmp_path / "p", f"{proxy.address}/buildctl/base:bookworm-1")
        code, record, output = release(root, tmp_path / "cache")
    assert code == 0, output
    report = record["prefetch"]
    assert report["read"] == 0 and report["layers"] == 2
    assert len(report["errors"]) == 2 and all("500" in e for e in report["errors"]), report["errors"]
    assert all(s["verified"] for s in record["services"])
    assert proxy.count("injected 500") == 2  # no retries: the prefetch gives up at once


def test_a_hanging_base_registry_holds_verification_no_longer_than_the_prefetch_bounds(tmp_path: Path) -> None:
    stall = 90.0
    with FaultProxy(idle_timeout=stall + 30) as proxy:
        proxy.stall(stall, times=1000, method="GET", path="/blobs/", agent="python-httpx")
        root = project(tmp_path / "p", f"{proxy.address}/buildctl/base:bookworm-1")
        code, record, output = release(root, tmp_path / "cache")
        stalled = proxy.count("stalled response")
    assert code == 0, output
    assert stalled == 2
    report = record["prefetch"]
    assert report["read"] == 0 and len(report["errors"]) == 2, report
    # Each hung read ends after the prefetch's read timeout, not the stall: verification, waiting
    # for those layers, then reads them from the release registry itself.
    bound = 20.0  # READ_TIMEOUT + GRACE_SECONDS, written out: a test of the bound must not move with it
    assert prefetch.READ_TIMEOUT + prefetch.GRACE_SECONDS <= bound
    assert record["timings"]["verify"] < bound, record["timings"]
    assert report["seconds"] < record["timings"]["build"] + bound + 5, (report, record["timings"])
    assert all(s["verified"] for s in record["services"])
    json.dumps(record)  # the record stays writable JSON with the errors in it


def test_sigterm_while_the_prefetch_hangs_exits_at_once(tmp_path: Path) -> None:
    with FaultProxy(idle_timeout=150) as proxy:
        proxy.stall(120.0, times=1000, method="GET", path="/blobs/", agent="python-httpx")
        root = project(tmp_path / "p", f"{proxy.address}/buildctl/base:bookworm-1")
        run = start_cli("build", "--tag", f"e2e-{uuid.uuid4().hex[:8]}", cwd=root, logs=tmp_path / "logs",
                        env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "BUILDCTL_PREFETCH": "1"})
        try:
            wait_for(lambda: proxy.count("stalled response"), timeout=120, what="the prefetch to hang")
            sent = time.monotonic()
            run.signal(signal.SIGTERM)
            code = run.wait(timeout=60)
            took = time.monotonic() - sent
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
    assert code == 130, run.stdout + run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert took < 5.0, f"exit took {took:.1f} s with the prefetch hanging"  # its daemon threads hold nothing up


def test_the_release_registrys_credentials_never_go_to_a_base_image_registry(tmp_path: Path) -> None:
    """Issue 24's rule, for the prefetch: a base registry that asks for credentials gets its own
    (from the Docker config; none here), never BUILDCTL_REGISTRY_* of the release registry."""
    environ = {USERNAME_ENV: "release-user", PASSWORD_ENV: "release-password", "DOCKER_CONFIG": str(tmp_path)}
    with FaultProxy() as proxy, RegistryClient(credentials=CredentialLookup(release_registry=REGISTRY,
                                                                            environ=environ)) as client:
        proxy.fail(401, times=10, path="/manifests/", agent="python-httpx")
        target = prefetch.BaseTarget(f"{proxy.address}/buildctl/base:bookworm-1", BOTH)
        warming = prefetch.Prefetch([target], client=client, cache=LayerCache(None), limits=ScanLimits()).start()
        assert warming.wait(30)
        report = warming.stop()
        asked = proxy.count("injected 401")
    assert asked == 1, "the challenge was answered with credentials"  # none to send: it gave up at once
    assert report.read == 0 and len(report.errors) == 1 and "release-password" not in report.errors[0]
    assert "BUILDCTL_REGISTRY_USERNAME/BUILDCTL_REGISTRY_PASSWORD (set, but sent only to the release registry" in \
        report.errors[0], report.errors


def test_no_layer_is_read_before_the_builds_began_and_all_are_after() -> None:
    """The reads (and a shared table's parse) hold the GIL: they wait until the builds' processes run,
    or they delay their spawn. The base's manifests are resolved at once (a few small GETs). What
    verification derives from each table (its ELF files, its hard links) is made then too."""
    cache = LayerCache(None)
    with RegistryClient() as client:
        target = prefetch.BaseTarget(BASE_IMAGE, BOTH, homes=("buildctl-e2e/prefetch-wait",))
        warming = prefetch.Prefetch([target], client=client, cache=cache, limits=ScanLimits()).start()
        assert not warming.wait(1.5)  # resolved, and waiting for the builds
        early = warming._read  # noqa: SLF001 - what its report would say so far (stop() would end it)
        warming.builds_began(["buildctl-e2e/prefetch-wait"])
        assert warming.wait(60)
        report = warming.stop()
    assert early == 0 and report.errors == () and report.layers > 0 and report.read == report.layers, report
    tables = list(cache._memory.values())  # noqa: SLF001 - the tables as verification will find them
    assert len(tables) == report.layers and all({"elf_entries", "hard_links"} <= vars(t).keys() for t in tables)
    assert any(t.elf_entries for t in tables)  # a Debian base has ELF files: the lists were really made


def test_a_prefetch_stopped_before_any_build_began_ends_having_read_nothing() -> None:
    """A release that fails before its builds, or reuses every service, stops the prefetch: it ends
    (its thread and client with it) without a read, and no error of a read cut short."""
    with RegistryClient() as client:
        target = prefetch.BaseTarget(BASE_IMAGE, BOTH, homes=("buildctl-e2e/prefetch-wait",))
        warming = prefetch.Prefetch([target], client=client, cache=LayerCache(None), limits=ScanLimits()).start()
        assert not warming.wait(1.0)
        report = warming.stop()
        assert warming.wait(10)
        assert warming._read == 0  # noqa: SLF001 - nothing was read after the stop either
    assert report.read == 0 and report.errors == () and report.layers > 0, report

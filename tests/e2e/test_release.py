"""End to end on the real stack: build, push, verify the bytes, gate, tag (issue #3 a-e)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import PROJECT, REGISTRY, run_cli
from tests.helpers.manifest_lookup import INDEX_ACCEPT
from tests.helpers.project import (
    BROKEN_ON_ARM,
    GOOD,
    PINNED,
    index_digest,
    make_project,
    record_of,
)

pytestmark = pytest.mark.engine

def test_sample_services_release_three_verified_indexes(tmp_path: Path) -> None:
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    record_path = tmp_path / "release.json"
    for service in ("vote", "result", "worker"):
        assert index_digest(f"voting-app/{service}", tag) is None
    result = run_cli("build", "--tag", tag, "--record", str(record_path), cwd=PROJECT)
    assert result.code == 0, result.output
    record = record_of(record_path)
    assert record["gate"] == "passed"
    for svc in record["services"]:
        assert set(svc["platforms"]) == {"linux/amd64", "linux/arm64"}
        assert svc["verified"] and svc["tagged"]
        assert {(c["platform"], c["name"], c["status"]) for c in svc["checks"]} >= {
            ("linux/arm64", "elf", "pass"), ("linux/amd64", "elf", "pass"), ("", "platforms", "pass")}
        # The tag points at exactly the verified index, read from buildx's metadata file.
        assert index_digest(f"voting-app/{svc['name']}", tag) == svc["index_digest"]
        # (d) provenance attestations are in the index and did not fail anything.
        index = httpx.get(f"http://{REGISTRY}/v2/voting-app/{svc['name']}/manifests/{svc['index_digest']}",
                          headers={"Accept": INDEX_ACCEPT}).json()
        kinds = [m.get("annotations", {}).get("vnd.docker.reference.type") for m in index["manifests"]]
        assert kinds.count("attestation-manifest") == 2
    assert "release gate passed" in result.stdout


def test_amd64_pinned_base_fails_the_gate_and_no_service_is_tagged(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"good": GOOD, "pinned": PINNED})
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "--record", "rec.json", "--json", cwd=project)
    assert result.code == 1, result.output
    record = json.loads(result.stdout)
    assert record == record_of(project / "rec.json")
    pinned = next(s for s in record["services"] if s["name"] == "pinned")
    elf = next(c for c in pinned["checks"] if c["platform"] == "linux/arm64" and c["name"] == "elf")
    assert elf["status"] == "fail"
    assert elf["detail"] == "/usr/bin/python3.11 is x86-64 (EM_X86_64), expected aarch64"
    config = next(c for c in pinned["checks"] if c["platform"] == "linux/arm64" and c["name"] == "config")
    assert config["status"] == "pass"  # what index and config checks alone would have let through
    assert record["gate"] == "failed"
    for name in ("good", "pinned"):
        assert index_digest(f"buildctl-e2e/{name}", tag) is None, f"{name} must not be tagged"
    good = next(s for s in record["services"] if s["name"] == "good")
    assert good["verified"] and not good["tagged"]


# A native library built on the build machine (FROM --platform=$BUILDPLATFORM) and copied into every
# image, far from the entrypoint (python3 runs fine until something imports it).
OFF_PATH_SO = "/usr/local/lib/python3.11/site-packages/fast/_speedups.so"
OFF_PATH = GOOD.replace("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n", (
    "ARG BASE_IMAGE\nFROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS native\n"
    "RUN mkdir /out && cp \"$(ls /usr/lib/python3.11/lib-dynload/*.so | head -1)\" /out/_speedups.so\n"
    f"FROM ${{BASE_IMAGE}}\nCOPY --from=native /out/_speedups.so {OFF_PATH_SO}\n"))


def test_a_wrong_architecture_file_off_the_entrypoint_path_fails_the_build_gate(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"good": GOOD, "offpath": OFF_PATH})
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "--record", "rec.json", cwd=project)
    assert result.code == 1, result.output
    record = record_of(project / "rec.json")
    assert record["gate"] == "failed"
    offpath = next(s for s in record["services"] if s["name"] == "offpath")
    checks = {(c["platform"], c["name"]): c for c in offpath["checks"]}
    assert checks["linux/arm64", "elf"]["status"] == "pass"  # the entrypoint itself is right
    assert checks["linux/amd64", "elf-files"]["status"] == "pass"  # so is the build machine's platform
    assert checks["linux/arm64", "elf-files"]["status"] == "fail"
    # exactly one offender, named (how many ELF files the base holds depends on Debian's packages)
    assert re.fullmatch(rf"1 of \d+ ELF files are x86-64 \(EM_X86_64\), e\.g\. {re.escape(OFF_PATH_SO)} \(expected aarch64\)",
                        checks["linux/arm64", "elf-files"]["detail"])
    assert OFF_PATH_SO in result.output
    for name in ("good", "offpath"):
        assert index_digest(f"buildctl-e2e/{name}", tag) is None, f"{name} must not be tagged"


def test_broken_arm64_step_fails_that_service_and_shows_its_log(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"fine": GOOD, "armbreak": BROKEN_ON_ARM})
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "--record", "rec.json", cwd=project)
    assert result.code == 1, result.output
    assert "compiler crashed on arm64" in result.stdout  # the tail of its build log
    record = record_of(project / "rec.json")
    broken = next(s for s in record["services"] if s["name"] == "armbreak")
    fine = next(s for s in record["services"] if s["name"] == "fine")
    assert not broken["built"] and "build of armbreak failed" in broken["error"]
    assert Path(broken["build_log"]).is_file()
    assert fine["built"] and fine["verified"] and not fine["tagged"]  # not hidden, but not released
    assert index_digest("buildctl-e2e/fine", tag) is None


def test_verify_cli_reports_a_missing_platform(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"amdonly": GOOD})
    (project / "services.yaml").write_text((project / "services.yaml").read_text() + "    platforms: [linux/amd64]\n")
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    built = run_cli("build", "--tag", tag, cwd=project)
    assert built.code == 0, built.output
    ref = f"{REGISTRY}/buildctl-e2e/amdonly:{tag}"
    result = run_cli("verify", ref, "--platform", "linux/amd64", "--platform", "linux/arm64", "--json", cwd=project)
    assert result.code == 1, result.output
    (verification,) = json.loads(result.stdout)
    platforms = next(c for c in verification["checks"] if c["name"] == "platforms")
    assert platforms["status"] == "fail" and "missing linux/arm64" in platforms["detail"]
    ok = run_cli("verify", ref, "--platform", "linux/amd64", cwd=project)
    assert ok.code == 0, ok.output


def test_smoke_command_runs_per_platform_and_gates_the_release(tmp_path: Path) -> None:
    project = make_project(tmp_path, {"smoky": GOOD, "fails": GOOD})
    text = (project / "services.yaml").read_text()
    text = text.replace("image: buildctl-e2e/smoky\n", "image: buildctl-e2e/smoky\n"
                        "    smoke: [python3, -c, 'import platform; print(platform.machine())']\n")
    text = text.replace("image: buildctl-e2e/fails\n", "image: buildctl-e2e/fails\n"
                        "    smoke: [python3, -c, 'import no_such_module']\n")
    (project / "services.yaml").write_text(text)
    tag = f"e2e-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "--record", "rec.json", cwd=project)
    assert result.code == 1, result.output
    record = record_of(project / "rec.json")
    smoky = next(s for s in record["services"] if s["name"] == "smoky")
    smoke = {c["platform"]: c for c in smoky["checks"] if c["name"] == "smoke"}
    assert smoke["linux/amd64"]["status"] == "pass" and smoke["linux/amd64"]["detail"].endswith(": x86_64")
    assert smoke["linux/arm64"]["status"] == "pass" and smoke["linux/arm64"]["detail"].endswith(": aarch64")
    fails = next(s for s in record["services"] if s["name"] == "fails")
    failed = [c for c in fails["checks"] if c["name"] == "smoke"]
    assert [c["status"] for c in failed] == ["fail", "fail"]
    assert failed[0]["detail"].startswith("`python3 -c 'import no_such_module'` exited 1")
    assert index_digest("buildctl-e2e/smoky", tag) is None  # one failed smoke test: no tag for anyone

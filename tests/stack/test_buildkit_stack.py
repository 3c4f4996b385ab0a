"""scripts/stack.sh up --buildkit / nodes: real BuildKit binaries, image and two remote nodes.

Needs the binaries from `scripts/stack.sh up --buildkit` (skipped without them on a laptop, a
failure under CI). The tests start the nodes themselves through `scripts/stack.sh nodes`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.cli import BASE_IMAGE, PROJECT, REGISTRY

pytestmark = pytest.mark.engine

STATE_DIR = Path(os.environ.get("BUILDCTL_STACK_DIR", "/var/lib/buildctl-stack"))
BK_DIR = STATE_DIR / "buildkit"
NETNS = "buildctl-node-arm64"
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])


def stack(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(PROJECT / "scripts" / "stack.sh"), *args], capture_output=True, text=True,
                          timeout=timeout)


def bk(addr: str, *args: str, timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bk-buildctl", "--addr", addr, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def _buildkit_problem() -> str | None:
    for name in ("buildkitd", "bk-buildctl"):
        if shutil.which(name) is None:
            return f"{name} not on PATH (run scripts/stack.sh up --buildkit)"
    if not (BK_DIR / "image").is_file():
        return f"{BK_DIR / 'image'} missing (run scripts/stack.sh up --buildkit)"
    return None


@pytest.fixture(scope="module")
def buildkit() -> None:
    """The BuildKit part of the stack is there; skip on a laptop, fail under CI."""
    problem = _buildkit_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the BuildKit stack tests, but: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="module")
def nodes(buildkit: None) -> dict[str, str]:
    """platform -> endpoint, from `stack.sh nodes` (starts them if needed)."""
    result = stack("nodes")
    assert result.returncode == 0, result.stderr
    pairs = [line.split() for line in result.stdout.splitlines()]
    assert all(len(p) == 2 for p in pairs), result.stdout
    return {platform: endpoint for endpoint, platform in pairs}


def registry_manifest(repo: str, tag: str) -> tuple[str, dict]:
    request = urllib.request.Request(f"http://{REGISTRY}/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.headers["Docker-Content-Digest"], json.loads(response.read())


def node_pid(arch: str) -> int:
    return int((STATE_DIR / "pids" / f"node-{arch}.pid").read_text().split()[0])  # "PID START-TIME"


def test_bk_buildctl_is_buildkit_and_does_not_shadow_our_buildctl(buildkit: None) -> None:
    version = subprocess.run(["bk-buildctl", "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and "github.com/moby/buildkit v0.13.2" in version.stdout, version.stdout
    daemon = subprocess.run(["buildkitd", "--version"], capture_output=True, text=True, timeout=30)
    assert daemon.returncode == 0 and "v0.13.2" in daemon.stdout, daemon.stdout
    ours = shutil.which("buildctl")
    if ours is not None:  # ours (the Python tool's entry point), never BuildKit's CLI
        assert b"github.com/moby/buildkit" not in Path(ours).read_bytes(), ours


def test_registry_has_the_buildkit_image_under_both_tags(buildkit: None) -> None:
    ref = (BK_DIR / "image").read_text().strip()
    repo_tag = ref.removeprefix(f"{REGISTRY}/")
    assert repo_tag != ref and repo_tag.startswith("moby/buildkit:v0.13.2-debian"), ref
    repo, tag = repo_tag.rsplit(":", 1)
    digest, manifest = registry_manifest(repo, tag)
    stable_digest, _ = registry_manifest(repo, "buildx-stable-1")
    assert stable_digest == digest
    if "manifests" in manifest:  # an index: take the native image
        manifest = registry_manifest(repo, manifest["manifests"][0]["digest"])[1]
    with urllib.request.urlopen(f"http://{REGISTRY}/v2/{repo}/blobs/{manifest['config']['digest']}",
                                timeout=20) as response:
        config = json.loads(response.read())["config"]
    assert config["Entrypoint"] == ["buildkitd"]
    assert "/var/lib/buildkit" in config["Volumes"]


def test_nodes_is_idempotent_and_each_endpoint_answers(nodes: dict[str, str]) -> None:
    assert set(nodes) == {"linux/amd64", "linux/arm64"}
    pids = {arch: node_pid(arch) for arch in ("amd64", "arm64")}
    started = time.monotonic()
    again = stack("nodes")
    elapsed = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert {platform: endpoint for endpoint, platform in (line.split() for line in again.stdout.splitlines())} == nodes
    assert "starting" not in again.stderr
    assert {arch: node_pid(arch) for arch in ("amd64", "arm64")} == pids
    assert elapsed < 15, f"second `nodes` took {elapsed:.1f}s"
    for platform, endpoint in nodes.items():
        workers = bk(endpoint, "debug", "workers", timeout=30)
        assert workers.returncode == 0, workers.stderr
        assert platform in workers.stdout, workers.stdout


def test_nodes_adopts_running_nodes_whose_pid_files_were_lost_or_old(nodes: dict[str, str]) -> None:
    pids = {arch: node_pid(arch) for arch in ("amd64", "arm64")}
    (STATE_DIR / "pids" / "node-amd64.pid").write_text(f"{pids['amd64']}\n")  # an older stack.sh: the pid alone
    (STATE_DIR / "pids" / "node-arm64.pid").unlink()
    again = stack("nodes")
    assert again.returncode == 0, again.stderr
    assert "starting BuildKit node" not in again.stderr and "forgetting" not in again.stderr
    assert "adopting BuildKit node amd64" not in again.stderr  # the old format is upgraded in place
    assert (STATE_DIR / "pids" / "node-amd64.pid").read_text().split()[1:] != []  # now with its start time
    assert f"adopting BuildKit node arm64 (pid {pids['arm64']})" in again.stderr  # the lost one is taken back
    assert {arch: node_pid(arch) for arch in ("amd64", "arm64")} == pids
    assert stack("nodes").stderr.count("adopting") == 0  # the rewritten pid files are valid


def test_arm64_node_runs_in_its_own_network_namespace(nodes: dict[str, str]) -> None:
    ours = os.readlink("/proc/self/ns/net")
    assert os.readlink(f"/proc/{node_pid('amd64')}/ns/net") == ours
    arm64_ns = os.readlink(f"/proc/{node_pid('arm64')}/ns/net")
    assert arm64_ns != ours
    assert os.stat(f"/run/netns/{NETNS}").st_ino == os.stat(f"/proc/{node_pid('arm64')}/ns/net").st_ino


@pytest.mark.slow
@pytest.mark.parametrize("platform,machine", [("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")])
def test_a_build_on_each_node_runs_there(nodes: dict[str, str], platform: str, machine: str, tmp_path: Path) -> None:
    # The base image comes from the registry as 127.0.0.1:5000 on both nodes (socat inside the namespace).
    (tmp_path / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE} AS probe\n"
        "RUN uname -m > /arch && cat /proc/net/dev > /netdev\n"
        "FROM scratch\n"
        "COPY --from=probe /arch /netdev /\n")
    out = tmp_path / "out"
    endpoint = nodes[platform]
    result = bk(endpoint, "build", "--frontend", "dockerfile.v0", "--local", f"context={tmp_path}",
                "--local", f"dockerfile={tmp_path}", "--opt", f"platform={platform}",
                "--output", f"type=local,dest={out}", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "arch").read_text().strip() == machine
    interfaces = {line.split(":")[0].strip() for line in (out / "netdev").read_text().splitlines()[2:]}
    if platform == "linux/arm64":
        assert interfaces == {"lo", "bcn-arm64-n"}, interfaces
    else:
        assert "bcn-arm64-n" not in interfaces and len(interfaces) > 1, interfaces
    histories = bk(endpoint, "debug", "histories", timeout=30)
    assert histories.returncode == 0 and histories.stdout.strip(), histories.stderr


def test_status_reports_buildkit_and_nodes(nodes: dict[str, str]) -> None:
    result = stack("status")
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()}
    for name in ("buildkit", "bk-image", "node-amd64", "node-arm64"):
        assert rows.get(name) == "ok", result.stdout


def test_nodes_killed_outright_come_back_and_status_stays_green(nodes: dict[str, str]) -> None:
    # What a restarted CI machine or container leaves: pid files naming processes that are gone.
    for arch in ("amd64", "arm64"):
        pid = node_pid(arch)
        os.kill(pid, 9)
        deadline = time.monotonic() + 20
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.1)
    status = stack("status")
    rows = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines()}
    assert rows["node-amd64"] == rows["node-arm64"] == "off", status.stdout
    assert status.returncode == 0, status.stdout + status.stderr  # stopped is not broken
    up = stack("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "forgetting stale pid file node-amd64.pid" in up.stderr
    again = stack("nodes")
    assert again.returncode == 0, again.stderr
    assert "starting BuildKit node amd64" in again.stderr and "starting BuildKit node arm64" in again.stderr
    for platform, endpoint in nodes.items():
        workers = bk(endpoint, "debug", "workers", timeout=30)
        assert workers.returncode == 0 and platform in workers.stdout, workers.stderr
    assert stack("status").returncode == 0

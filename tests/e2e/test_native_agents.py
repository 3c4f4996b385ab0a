"""Native agents on the real stack (issue #21): two "agents" — two buildctl processes in separate
git clones, each on its own builder (a remote builder on the stack's amd64 BuildKit node, one on
its arm64 node) — each `build --platform P --by-digest FILE`; a third process in a third clone
`run --from FILE --from FILE` merges, verifies, tags and commits to GitOps.

Refused before anything is tagged: a platform missing, agents on different commits, a file of
another registry (the same registry under another name: localhost:5000), a checkout with
uncommitted changes. A merge run twice makes
no second commit and moves no tag. Last, the wall time of split + merge against one multi-node `run`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_builders import gitops_for, nodes, remove_builder  # noqa: F401 (nodes: the session fixture)
from tests.helpers.cli import BASE_IMAGE, REGISTRY, CliResult, run_cli
from tests.helpers.gitops import git, log
from tests.helpers.manifest_lookup import INDEX_ACCEPT
from tests.helpers.project import GOOD, index_digest, record_of

pytestmark = pytest.mark.engine

NONCE = uuid.uuid4().hex[:8]
SERVICES = ("alpha", "beta")
PLATFORMS = ("linux/amd64", "linux/arm64")
SMOKE = "    smoke: [python3, -c, 'import platform; print(platform.machine())']\n"


def services_yaml(images: dict[str, str], gitops: Path) -> str:
    # Each agent names its builder and node in the environment: one services.yaml, one commit, two builders.
    text = ("registry: 127.0.0.1:5000\nplatforms: [linux/amd64, linux/arm64]\n"
            "builder:\n  name: ${AGENT_BUILDER:-e2e-agent-none}\n  driver: remote\n"
            "  nodes:\n    - endpoint: ${AGENT_NODE:-tcp://127.0.0.1:1}\n"
            f"gitops: {{repo: '{gitops}', branch: main}}\nservices:\n")
    for name, image in images.items():
        text += (f"  {name}:\n    context: {name}\n    image: {image}\n"
                 f"    build_args: {{BASE_IMAGE: '{BASE_IMAGE}', E2E_NONCE: '${{E2E_NONCE:-0}}'}}\n{SMOKE}"
                 f"    manifests:\n      - path: apps/{name}.yaml\n")
    return text


@dataclass(frozen=True)
class World:
    root: Path
    clones: dict[str, Path]  # amd, arm, other (one commit ahead), merge
    bare: Path  # the GitOps remote
    images: dict[str, str]  # service -> repository path
    nodes: dict[str, str]

    def agent(self, clone: str, platform: str, file: str, tag: str, *, registry: str | None = None,
              env: dict[str, str] | None = None) -> CliResult:
        arch = platform.split("/")[1]
        args = ["build", "--platform", platform, "--by-digest", str(self.root / file), "--tag", tag,
                "--progress", "plain", *(["--registry", registry] if registry else [])]
        return run_cli(*args, cwd=self.clones[clone], env={"AGENT_BUILDER": f"e2e-agent-{arch}-{NONCE}",
                                                           "AGENT_NODE": self.nodes[platform], **(env or {})})

    def merge(self, *files: str, tag: str, record: str = "merge.json", env: dict[str, str] | None = None,
              verb: str = "run") -> CliResult:
        args = [verb, *(a for f in files for a in ("--from", str(self.root / f))), "--tag", tag,
                "--record", str(self.root / record), "--progress", "plain"]
        return run_cli(*args, cwd=self.clones["merge"], env=env)

    def file(self, name: str) -> dict:
        return json.loads((self.root / name).read_text())

    def tags(self, service: str) -> list[str]:
        return httpx.get(f"http://{REGISTRY}/v2/{self.images[service]}/tags/list", timeout=30).json().get("tags") or []


TAG = f"native-{NONCE}"


def parallel(*calls) -> list[CliResult]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, nodes: dict[str, str]) -> Iterator[World]:  # noqa: F811
    root = tmp_path_factory.mktemp("native")
    images = {name: f"buildctl-e2e-native/{name}-{NONCE}" for name in SERVICES}
    bare = gitops_for(root, images)  # apps/<service>.yaml at :old, as the builder tests seed it
    source = root / "source"
    for name in SERVICES:
        (source / name).mkdir(parents=True)
        (source / name / "Dockerfile").write_text(GOOD + "ARG E2E_NONCE\nRUN echo \"$E2E_NONCE\" > /nonce\n")
        (source / name / "app.py").write_text(f"print('{name}')\n")
    (source / "services.yaml").write_text(services_yaml(images, bare))
    git("init", "-q", "-b", "main", str(source))
    git("add", "-A", cwd=source)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "release", cwd=source)
    clones = {}
    for name in ("amd", "arm", "other", "dirty", "merge"):
        git("clone", "-q", str(source), str(root / name))
        clones[name] = root / name
    (clones["other"] / "NOTES").write_text("a later commit\n")
    git("add", "-A", cwd=clones["other"])
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "later", cwd=clones["other"])
    with (clones["dirty"] / "services.yaml").open("a") as edited:  # same commit, same entries: but edited
        edited.write("# a local edit\n")
    yield World(root, clones, bare, images, nodes)
    for platform in PLATFORMS:
        remove_builder(f"e2e-agent-{platform.split('/')[1]}-{NONCE}")


@pytest.fixture(scope="module")
def agents(world: World) -> dict[str, float]:
    """The two agents at once (as two CI jobs would run), then the refused ones' files."""
    started = time.monotonic()
    amd, arm = parallel(lambda: world.agent("amd", "linux/amd64", "amd64.json", TAG),
                        lambda: world.agent("arm", "linux/arm64", "arm64.json", TAG))
    split = time.monotonic() - started
    assert amd.code == 0, amd.output
    assert arm.code == 0, arm.output
    other, elsewhere, dirty = parallel(lambda: world.agent("other", "linux/arm64", "other-commit.json", TAG),
                                       lambda: world.agent("amd", "linux/amd64", "localhost.json", TAG,
                                                           registry="localhost:5000"),
                                       lambda: world.agent("dirty", "linux/arm64", "dirty.json", TAG))
    for result in (other, elsewhere, dirty):
        assert result.code == 0, result.output
    return {"split": split}


def test_each_agent_pushes_its_platform_by_digest_only_and_verifies_it(world: World, agents: dict) -> None:
    for file, platform in (("amd64.json", "linux/amd64"), ("arm64.json", "linux/arm64")):
        doc = world.file(file)
        assert (doc["platform"], doc["registry"], doc["tag"]) == (platform, REGISTRY, TAG)
        assert doc["commit"] == git("rev-parse", "HEAD", cwd=world.clones["merge"]).strip() and not doc["dirty"]
        for svc in doc["services"]:
            assert svc["verdict"] == "passed", svc
            checks = {(c["platform"], c["name"]): c["status"] for c in svc["checks"]}
            assert checks[platform, "elf-files"] == checks[platform, "interp"] == checks[platform, "smoke"] == "pass"
            index = httpx.get(f"http://{REGISTRY}/v2/{world.images[svc['service']]}/manifests/{svc['digest']}",
                              headers={"Accept": INDEX_ACCEPT}, timeout=30).json()
            found = [(m.get("platform", {}).get("architecture"), m.get("annotations", {}).get(
                "vnd.docker.reference.type")) for m in index["manifests"]]
            assert sorted(found, key=str) == sorted([(platform.split("/")[1], None), ("unknown", "attestation-manifest")],
                                                    key=str)
    for service in SERVICES:
        assert world.tags(service) == []  # by digest only: not a single tag in the registry


def test_a_missing_platform_is_refused_and_nothing_is_tagged(world: World, agents: dict) -> None:
    commits = len(log(world.bare))
    result = world.merge("amd64.json", tag=TAG)
    assert result.code == 2, result.output
    assert result.stderr.splitlines()[0] == (f"buildctl: error: alpha: no agent file has linux/arm64 (given: "
                                             f"{world.root / 'amd64.json'}); every configured platform must be "
                                             "built exactly once")
    assert all(world.tags(s) == [] for s in SERVICES) and len(log(world.bare)) == commits


def test_agents_on_different_commits_are_refused_naming_the_file(world: World, agents: dict) -> None:
    result = world.merge("amd64.json", "other-commit.json", tag=TAG)
    assert result.code == 2, result.output
    other = git("rev-parse", "HEAD", cwd=world.clones["other"]).strip()
    here = git("rev-parse", "HEAD", cwd=world.clones["merge"]).strip()
    assert result.stderr.splitlines()[0] == (f"buildctl: error: {world.root / 'other-commit.json'}: built from commit "
                                             f"{other[:12]}, this checkout is at {here[:12]}")
    assert all(world.tags(s) == [] for s in SERVICES)


def test_an_agent_with_uncommitted_changes_is_refused(world: World, agents: dict) -> None:
    result = world.merge("amd64.json", "dirty.json", tag=TAG)
    assert result.code == 2, result.output
    assert result.stderr.splitlines()[0].startswith(f"buildctl: error: {world.root / 'dirty.json'}: built from a "
                                                    "checkout with uncommitted changes to tracked files")
    assert all(world.tags(s) == [] for s in SERVICES)


def test_a_file_from_another_registry_is_refused(world: World, agents: dict) -> None:
    result = world.merge("localhost.json", "arm64.json", tag=TAG)
    assert result.code == 2, result.output
    assert result.stderr.splitlines()[0] == (f"buildctl: error: {world.root / 'localhost.json'}: built for registry "
                                             f"localhost:5000, this release pushes to {REGISTRY}")
    assert all(world.tags(s) == [] for s in SERVICES)


def test_the_merge_releases_once_and_a_second_merge_changes_nothing(world: World, agents: dict) -> None:
    commits = len(log(world.bare))
    built = world.merge("amd64.json", "arm64.json", tag=TAG, verb="build", record="build.json")  # no Git
    assert built.code == 0, built.output
    assert [s["release"] for s in record_of(world.root / "build.json")["services"]] == ["tagged"] * len(SERVICES)
    assert all(TAG in world.tags(s) for s in SERVICES) and len(log(world.bare)) == commits
    result = world.merge("amd64.json", "arm64.json", tag=TAG)
    assert result.code == 0, result.output
    rec = record_of(world.root / "merge.json")
    assert rec["gate"] == "passed"
    files = {p: world.file(f) for p, f in (("linux/amd64", "amd64.json"), ("linux/arm64", "arm64.json"))}
    for svc in rec["services"]:
        # `build --from` tagged it: the same merge finds the tag identical and goes on to Git.
        assert svc["tagged"] and svc["release"] == "already released, identical"
        # The index under the tag holds exactly the images the agents verified, and both attestations.
        assert svc["platforms"] == {p: next(i["image_digest"] for i in f["services"] if i["service"] == svc["name"])
                                    for p, f in files.items()}
        assert index_digest(world.images[svc["name"]], TAG) == svc["index_digest"]
        index = httpx.get(f"http://{REGISTRY}/v2/{world.images[svc['name']]}/manifests/{TAG}",
                          headers={"Accept": INDEX_ACCEPT}, timeout=30).json()
        kinds = [m.get("annotations", {}).get("vnd.docker.reference.type") for m in index["manifests"]]
        assert kinds.count("attestation-manifest") == 2 and len(kinds) == 4
        assert svc["nodes"] == {p: str(world.root / f) for p, f in (("linux/amd64", "amd64.json"),
                                                                     ("linux/arm64", "arm64.json"))}
    assert len(log(world.bare)) == commits + 1
    for name, image in world.images.items():
        assert f"{REGISTRY}/{image}:{TAG}" in git("show", f"main:apps/{name}.yaml", cwd=world.bare)
    tagged = {s: index_digest(world.images[s], TAG) for s in SERVICES}
    assert tagged == {s["name"]: s["built_index_digest"] for s in record_of(world.root / "build.json")["services"]}
    again = world.merge("amd64.json", "arm64.json", tag=TAG, record="again.json")
    assert again.code == 0, again.output
    assert [s["release"] for s in record_of(world.root / "again.json")["services"]] == [
        "already released, identical"] * len(SERVICES)
    assert {s: index_digest(world.images[s], TAG) for s in SERVICES} == tagged  # tags unmoved
    assert len(log(world.bare)) == commits + 1  # no second commit


def test_wall_time_of_split_and_merge_against_one_multinode_run(world: World, agents: dict) -> None:
    """Cold builds both ways (a new E2E_NONCE re-runs the last RUN step on every platform)."""
    nonce = uuid.uuid4().hex[:8]
    tag, env = f"timed-{nonce}", {"E2E_NONCE": nonce}
    started = time.monotonic()
    amd, arm = parallel(lambda: world.agent("amd", "linux/amd64", "t-amd.json", tag, env=env),
                        lambda: world.agent("arm", "linux/arm64", "t-arm.json", tag, env=env))
    split = time.monotonic() - started
    assert amd.code == 0 and arm.code == 0, amd.output + arm.output
    merged = world.merge("t-amd.json", "t-arm.json", tag=tag, record="t-merge.json", env=env)
    merge = time.monotonic() - started - split
    assert merged.code == 0, merged.output
    multinode = world.root / "merge" / "multinode.services.yaml"
    builder = (f"builder:\n  name: e2e-agents-multi-{NONCE}\n  driver: remote\n  nodes:\n"
               f"    - {{endpoint: '{world.nodes['linux/amd64']}', platforms: [linux/amd64]}}\n"
               f"    - {{endpoint: '{world.nodes['linux/arm64']}', platforms: [linux/arm64]}}\n")
    text = (world.clones["merge"] / "services.yaml").read_text()
    multinode.write_text(text.replace(text[text.index("builder:"):text.index("gitops:")], builder))
    other_nonce = {"E2E_NONCE": nonce + "m"}
    started = time.monotonic()
    one = run_cli("run", "-c", str(multinode), "--tag", f"{tag}-m", "--progress", "plain", "--record",
                  str(world.root / "t-multi.json"), cwd=world.clones["merge"], env=other_nonce)
    single = time.monotonic() - started
    remove_builder(f"e2e-agents-multi-{NONCE}")
    assert one.code == 0, one.output
    print(f"\nnative agents, cold: split {split:.1f} s (two agents at once) + merge {merge:.1f} s = "
          f"{split + merge:.1f} s; one multi-node run {single:.1f} s "
          f"(first split, warm base layers: {agents['split']:.1f} s)")
    print("agents' steps: " + "; ".join(line for result in (amd, arm) for line in result.stdout.splitlines()
                                        if line.startswith("took: ")))
    print(f"merge steps {record_of(world.root / 't-merge.json')['timings']}; "
          f"multi-node steps {record_of(world.root / 't-multi.json')['timings']}")

"""What the benchmark builds on: a copy of the sample project, the equivalent bake file, ten tiny
multi-arch images, generated GitOps repositories, and the cross-compiling Dockerfile variant.

Everything lives in a temporary directory and under the ``buildctl-bench/`` repositories of the
local registry, so the benchmark never touches the project's own tags or GitOps repository.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from buildctl.config.loader import load_config
from buildctl.engine.binfmt import probe_program
from buildctl.inspect.dockerfile import parse
from buildctl.pipeline.plan import make_plan

PROJECT = Path(__file__).resolve().parent.parent
REGISTRY = "127.0.0.1:5000"
BASE_IMAGE = f"{REGISTRY}/buildctl/base:bookworm-1"
BENCH_REPO = "buildctl-bench"
SERVICES = ("vote", "result", "worker")
BOTH = ("linux/amd64", "linux/arm64")
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost", "GIT_CONFIG_NOSYSTEM": "1"}
FAKE_DIGEST = "sha256:" + "ab" * 32


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


# The builder kinds of README "Builders", as the benchmark names them, and their buildx builder.
BUILDER_KINDS = ("docker", "docker-container", "remote", "multinode")
BUILDER_NAMES = {"docker": "default", "docker-container": "bench-container", "remote": "bench-remote",
                 "multinode": "bench-multinode", "cache": "bench-cache", "fresh": "bench-fresh"}


def nodes() -> list[tuple[str, str]]:
    """(endpoint, platform) of the two remote BuildKit daemons `scripts/stack.sh nodes` starts."""
    out = subprocess.run(["bash", str(PROJECT / "scripts" / "stack.sh"), "nodes"], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return [tuple(line.split()[:2]) for line in out.splitlines() if line.strip()]


def builder_section(kind: str, root: Path) -> str:
    """services.yaml's `builder:` for ``kind`` ("cache", "fresh": docker-container builders of their own)."""
    if kind == "docker":
        return ""
    if kind in ("docker-container", "cache", "fresh"):
        shutil.copy(PROJECT / "examples" / "buildkitd.toml", root / "buildkitd.toml")
        return (f"builder: {{name: {BUILDER_NAMES[kind]}, driver: docker-container, driver_opts: {{network: host}}, "
                "config: buildkitd.toml}\n")
    found = nodes()
    if kind == "remote":
        return f"builder: {{name: bench-remote, driver: remote, nodes: [{{endpoint: '{found[0][0]}'}}]}}\n"
    listed = ", ".join(f"{{endpoint: '{endpoint}', platforms: [{platform}]}}" for endpoint, platform in found)
    return f"builder: {{name: bench-multinode, driver: remote, nodes: [{listed}]}}\n"


def sample_project(root: Path, *, builder: str = "docker", build: str = "{provenance: true, sbom: false}") -> Path:
    """The three sample services, pushed to buildctl-bench/* instead of voting-app/*, on ``builder``."""
    root.mkdir(parents=True)
    for name in SERVICES:
        shutil.copytree(PROJECT / name, root / name)
    services = "".join(
        f"  {name}:\n    context: {name}\n    image: {BENCH_REPO}/{name}\n"
        f"    build_args: {{BASE_IMAGE: {BASE_IMAGE}}}\n" for name in SERVICES)
    (root / "services.yaml").write_text(
        f"registry: {REGISTRY}\ntag: bench\nplatforms: [{', '.join(BOTH)}]\n{builder_section(builder, root)}"
        f"build: {build}\nservices:\n{services}")
    return root / "services.yaml"


def bake_file(config_path: Path, out: Path, *, tag: str) -> Path:
    """A bake file doing what `buildctl build` does: same contexts, Dockerfiles, platforms, build
    args, labels and attestations, pushed to the same repositories (with one plain tag each)."""
    plan = make_plan(load_config(config_path, environ={}), run_id="bake")
    targets = {}
    for svc in plan.services:
        spec, opts = svc.build, svc.build.options
        attest = (["type=provenance,mode=min"] if opts.provenance else []) + (["type=sbom"] if opts.sbom else [])
        target = {"context": str(spec.context), "dockerfile": str(spec.dockerfile), "platforms": list(spec.platforms),
                  "args": dict(spec.build_args), "labels": dict(opts.labels), "tags": [f"{svc.repository}:{tag}"],
                  "attest": attest, "output": ["type=registry"], "pull": opts.pull, "no-cache": opts.no_cache}
        if opts.cache_from:  # the same registry cache buildctl reads (cache_to only seeds it, untimed)
            target["cache-from"] = list(opts.cache_from)
        if spec.target:
            target["target"] = spec.target
        targets[svc.name] = target
    out.write_text(json.dumps({"group": {"default": {"targets": list(targets)}}, "target": targets}, indent=1))
    return out


def tiny_images(root: Path, *, count: int) -> list[str]:
    """``count`` distinct two-platform images (FROM scratch, a static ELF entrypoint per
    architecture and a file of their own), pushed with one bake; their references."""
    targets = {}
    for i in range(count):
        ctx = root / f"tiny-{i}"
        for arch in ("amd64", "arm64"):
            (ctx / arch).mkdir(parents=True)
            (ctx / arch / "app").write_bytes(probe_program(arch))
        (ctx / "id.txt").write_text(f"tiny image {i}\n")
        (ctx / "Dockerfile").write_text("FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /bin/app\n"
                                        'COPY id.txt /\nENV PATH=/bin\nENTRYPOINT ["app"]\n')
        targets[f"tiny-{i}"] = {"context": str(ctx), "platforms": list(BOTH), "output": ["type=registry"],
                                "tags": [f"{REGISTRY}/{BENCH_REPO}/verify-{i}:1"]}
    bake = root / "tiny.bake.json"
    bake.write_text(json.dumps({"group": {"default": {"targets": list(targets)}}, "target": targets}))
    for attempt in range(3):  # the registry answers 500 now and then under concurrent pushes
        proc = subprocess.run(["docker", "buildx", "bake", "-f", str(bake), "--progress", "plain"],
                              capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode == 0:
            break
        if attempt == 2:
            raise RuntimeError(f"pushing the tiny images failed 3 times:\n{proc.stderr[-1500:]}")
    return [t["tags"][0] for t in targets.values()]


def deployment(template: str, *, name: str, image: str) -> str:
    """vote-deployment.yaml turned into the Deployment of ``name`` running ``image``."""
    return (template.replace("127.0.0.1:5000/voting-app/vote:initial", f"{image}:initial")
            .replace("name: vote", f"name: {name}").replace("app: vote", f"app: {name}"))


def bare_remote(root: Path, files: dict[str, str]) -> Path:
    seed, bare = root / "seed", root / "remote.git"
    git("init", "--quiet", "--initial-branch", "main", str(seed))
    for path, text in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_text(text)
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "seed", cwd=seed)
    git("clone", "--quiet", "--bare", str(seed), str(bare))
    shutil.rmtree(seed)
    return bare


def gitops_project(root: Path, *, services: int, files_per_service: int) -> tuple[Path, Path]:
    """services.yaml with ``services`` services, each owning ``files_per_service`` Deployments in
    a generated GitOps repository; returns (services.yaml, the bare remote)."""
    template = (PROJECT / "k8s-specifications" / "vote-deployment.yaml").read_text()
    files, entries = {}, []
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    for s in range(services):
        name = f"svc-{s:02d}"
        paths = [f"apps/{name}/env-{e:03d}/deployment.yaml" for e in range(files_per_service)]
        for path in paths:
            files[path] = deployment(template, name=name, image=f"{REGISTRY}/bench-apps/{name}")
        manifests = "".join(f"      - {{path: {p}, containers: [{name}]}}\n" for p in paths)
        entries.append(f"  {name}:\n    context: app\n    image: bench-apps/{name}\n    manifests:\n{manifests}")
    bare = bare_remote(root / "gitops", files)
    config = root / "services.yaml"
    config.write_text(f"registry: {REGISTRY}\ngitops: {{repo: {bare}, branch: main, pin_digest: true}}\n"
                      f"services:\n{''.join(entries)}")
    return config, bare


def release_record(path: Path, *, services: list[str], repository_of, tag: str) -> Path:
    """A release record as `buildctl build --record` writes it: verified, tagged services."""
    path.write_text(json.dumps({"services": [
        {"name": s, "repository": repository_of(s), "tag": tag, "index_digest": FAKE_DIGEST,
         "verified": True, "tagged": True} for s in services]}))
    return path


def sample_gitops_project(root: Path) -> tuple[Path, Path]:
    """The sample project's services.yaml pointed at a fresh bare copy of k8s-specifications."""
    files = {f"k8s-specifications/{p.name}": p.read_text() for p in (PROJECT / "k8s-specifications").iterdir()}
    bare = bare_remote(root / "gitops", files)
    for name in SERVICES:
        shutil.copytree(PROJECT / name, root / name)
    text = (PROJECT / "services.yaml").read_text().replace("${BUILDCTL_GITOPS_REPO:-.buildctl/gitops.git}", str(bare))
    (root / "services.yaml").write_text(text)
    return root / "services.yaml", bare


def cross_variant(dockerfile: Path) -> str:
    """``dockerfile`` (one stage, one RUN) restructured as the lint suggests: the RUN step, unchanged,
    runs in a `FROM --platform=$BUILDPLATFORM` stage whose /app is copied into the target stage.

    The trade-off: the step now proves the *build* platform's Python imports the dependencies,
    no longer the target's; buildctl's ELF verification still checks the target's bytes. (With
    the local base the pip branch is skipped; a real cross install would need
    ``pip install --target /app/deps --platform manylinux2014_aarch64 --only-binary=:all:``.)
    """
    lines = dockerfile.read_text().splitlines()
    stage = parse("\n".join(lines), path=str(dockerfile))[0]
    run_start = stage.runs[0] - 1
    run_end = run_start
    while lines[run_end].rstrip().endswith("\\"):
        run_end += 1
    run = "\n".join(lines[run_start:run_end + 1])
    head = [line for line in lines[stage.line:run_start] if not line.startswith(("#", "COPY"))]
    tail = lines[run_end + 1:]
    return "\n".join([
        "ARG BASE_IMAGE=python:3.12-slim",
        "FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS prepare",
        "WORKDIR /app", "COPY requirements.txt .", run, *[line for line in tail if line.startswith("COPY")],
        "", "FROM ${BASE_IMAGE}", *head, "COPY --from=prepare /app /app",
        *[line for line in tail if not line.startswith("COPY")], ""])

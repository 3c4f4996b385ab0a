"""Shared by test_faults, test_tls_registry, test_secrets and test_interrupts: tiny projects, a
GitOps remote whose manifests reference them, and a CLI run that can be signalled and watched.

The scratch project builds in about a second from the BuildKit cache and still passes every
verification check: each platform's entrypoint is an ELF header of that architecture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.helpers.cli import BASE_IMAGE, PROJECT
from tests.helpers.elf import elf_for
from tests.helpers.gitops import git, make_remote
from tests.helpers.manifest_lookup import manifest_digest

SCRATCH = 'FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /app\nCOPY nonce /nonce\nENTRYPOINT ["/app"]\n'


def slow_service(root: Path, name: str, *, nonce: str) -> None:
    """From the stack's base image, with a RUN step long enough to be interrupted; ``nonce`` in
    its command line gives each test module its own cache key and a process name to look for."""
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "app.py").write_text(f"print('{name}')\n")
    (root / name / "Dockerfile").write_text(
        f"FROM {BASE_IMAGE}\nRUN echo {nonce} > /nonce && sleep 6\nCOPY app.py /app/app.py\n"
        'ENTRYPOINT ["python3", "/app/app.py"]\n')


def scratch_service(root: Path, name: str, *, nonce: str = "1") -> None:
    for arch in ("amd64", "arm64"):
        (root / name / arch).mkdir(parents=True, exist_ok=True)
        (root / name / arch / "app").write_bytes(elf_for(arch))
    (root / name / "nonce").write_text(nonce)
    (root / name / "Dockerfile").write_text(SCRATCH)


def write_services(root: Path, images: Mapping[str, str], *, gitops_repo: str | None = None,
                   build_args: Mapping[str, str] | None = None) -> Path:
    """services.yaml for ``images`` (service -> image path); with a gitops: section if asked."""
    lines = ["services:"]
    for name, image in images.items():
        lines += [f"  {name}:", f"    context: {name}", f"    image: {image}"]
        if build_args:
            lines.append(f"    build_args: {json.dumps(dict(build_args))}")
        if gitops_repo:
            lines += ["    manifests:", f"      - path: apps/{name}.yaml"]
    if gitops_repo:
        lines += ["gitops:", f"  repo: {gitops_repo}", "  branch: main"]
    (root / "services.yaml").write_text("\n".join(lines) + "\n")
    return root


def deployment(name: str, repository: str) -> str:
    """A Deployment running ``repository:old``, with a sidecar that must never change."""
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  template:\n"
            f"    spec:\n      containers:\n        - name: {name}\n          image: {repository}:old\n"
            f"        - name: sidecar\n          image: {repository}-sidecar:old\n")


def scratch_project(root: Path, image: str) -> Path:
    """A one-service project ("app", a FROM scratch image, no QEMU needed) pushing to ``image``."""
    scratch_service(root, "app")
    return write_services(root, {"app": image})


def unique_tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def gitops_remote(where: Path, repositories: Mapping[str, str]) -> Path:
    """A bare GitOps repository with apps/<service>.yaml for each (service -> repository)."""
    return make_remote(where, {f"apps/{name}.yaml": deployment(name, repo) for name, repo in repositories.items()})


def tip(bare: Path) -> str:
    return git("rev-parse", "main", cwd=bare).strip()


def resolve(registry: str, repository: str, reference: str) -> str | None:
    """The digest a tag has in a plain-HTTP registry; None only on 404 manifest unknown."""
    return manifest_digest(f"http://{registry}/v2/{repository}/manifests/{reference}")


def record(path: Path) -> dict:
    return json.loads(path.read_text())


@dataclass
class Running:
    """`python -m buildctl ...` in its own session (process group), output in files."""

    proc: subprocess.Popen
    out: Path
    err: Path

    @property
    def pgid(self) -> int:
        return self.proc.pid  # start_new_session: the process leads its own group

    def signal(self, signum: int, *, group: bool = False) -> None:
        """``group``: as Ctrl-C in a terminal does (the whole foreground group); else the process
        alone, as a CI agent cancelling a job does."""
        if group:
            os.killpg(self.pgid, signum)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout=timeout)

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


def start_cli(*args: str, cwd: Path, logs: Path, env: Mapping[str, str] | None = None) -> Running:
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / "stdout", logs / "stderr"
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(PROJECT), **(env or {})}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "buildctl", *args], cwd=cwd, env=full_env, stdout=stdout,
                                stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True)
    return Running(proc, out, err)


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def leftovers(pgid: int, *markers: str) -> list[str]:
    """Processes still in the run's process group, or whose command line names one of ``markers``
    (docker, buildx, git, BuildKit's RUN containers): none may outlive an interrupted run."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            in_group = os.getpgid(proc.info["pid"]) == pgid
        except (psutil.Error, ProcessLookupError):
            continue
        if proc.info["pid"] != me and (in_group or any(m in cmdline for m in markers)):
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def no_leftovers(pgid: int, *markers: str, timeout: float = 15) -> None:
    """Wait (BuildKit stops a cancelled RUN container within seconds) until none are left."""
    try:
        wait_for(lambda: not leftovers(pgid, *markers), timeout=timeout, what="processes to exit", interval=0.2)
    except AssertionError:
        raise AssertionError(f"stray processes: {leftovers(pgid, *markers)}") from None


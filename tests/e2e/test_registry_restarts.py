"""The registry killed (SIGKILL) in the middle of the push, of verification and of tagging, then
restarted on the same address and storage (issue #14).

The outage (3 s, plus the restart) is shorter than every retry window (the client waits at least
0.5 + 1 + 2 + 4 s over its five attempts; the push, longer), so the first run rides it out: exit 0, every
service tagged, one GitOps commit. Each case first proves the kill landed in its step (one of that
step's own requests met the dead registry), so it cannot pass on a kill that came too late. A
rerun is then a no-op release: still exactly one release commit. The registry is this module's own
`docker-registry` (never the shared 127.0.0.1:5000), behind a FaultProxy that shows which step
the run is in (and holds a step with one 503/429 so the kill lands inside it).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.gitops import git, show
from tests.helpers.reliability import (
    gitops_remote,
    resolve,
    scratch_service,
    tip,
    wait_for,
    write_services,
)
from tests.helpers.tls_registry import free_port

pytestmark = pytest.mark.engine

SERVICES = {"one": "buildctl-restarts/one", "two": "buildctl-restarts/two"}


class Registry:
    """A plain-HTTP Distribution registry on a fixed loopback port, killable and restartable."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.address = f"127.0.0.1:{free_port('127.0.0.1')}"
        self.config = directory / "config.yml"
        self.config.write_text(json.dumps({
            "version": 0.1, "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
            "http": {"addr": self.address, "secret": secrets.token_hex(16)},
        }))
        self.log = directory / "registry.log"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(self.config)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            try:
                return httpx.get(f"http://{self.address}/v2/", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=20, what="the registry to start", interval=0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextmanager
def registry(directory: Path) -> Iterator[Registry]:
    reg = Registry(directory)
    try:
        yield reg
    finally:
        reg.kill()


def tagged(address: str, tag: str) -> list[str]:
    return sorted(name for name, image in SERVICES.items() if resolve(address, image, tag))


# step -> (what to hold with one injected answer, or None; when the run is in that step; which of
# the step's own requests must then meet the dead registry, the proof that the kill landed there)
STEPS = {
    "push": (None, lambda s: s.method in ("PATCH", "PUT") and "/blobs/uploads/" in s.path,
             lambda s: "/blobs/" in s.path and not s.agent.startswith("python-httpx/")),
    "verification": ({"status": 429, "times": 1, "method": "GET", "path": r"/manifests/sha256:",
                      "agent": "^python-httpx/", "retry_after": "2"},
                     lambda s: s.outcome == "injected 429",
                     lambda s: s.agent.startswith("python-httpx/") and s.method == "GET"),
    "tagging": ({"status": 503, "times": 1, "method": "PUT", "path": r"/manifests/{tag}$", "agent": "^python-httpx/"},
                lambda s: s.outcome == "injected 503",
                lambda s: "/manifests/" in s.path and s.agent.startswith("python-httpx/")),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_registry_killed_and_restarted(tmp_path: Path, step: str) -> None:
    project = tmp_path / "project"
    for name in SERVICES:
        scratch_service(project, name, nonce=uuid.uuid4().hex)
    tag = f"restart-{uuid.uuid4().hex[:8]}"
    with registry(tmp_path / "registry") as reg, FaultProxy(reg.address) as proxy:
        remote = gitops_remote(tmp_path / "git", {n: f"{proxy.address}/{i}" for n, i in SERVICES.items()})
        write_services(project, SERVICES, gitops_repo=str(remote))
        before = tip(remote)
        hold, in_step, of_step = STEPS[step]
        if hold:
            proxy.fail(**{**hold, "path": hold["path"].format(tag=tag)})
        killed = threading.Event()

        def killer() -> None:
            wait_for(lambda: any(in_step(s) for s in list(proxy.seen)), timeout=240, what=f"the {step}")
            reg.kill()
            killed.set()
            time.sleep(3)  # down for 3 s: longer than one retry wait, shorter than the bounds
            reg.start()

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        first = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", tag, "-q", cwd=project, timeout=600)
        thread.join(timeout=30)
        assert killed.is_set(), first.output
        # The kill landed in that step: after the step began, one of its own requests met the dead
        # registry (tagging: buildctl's GET/PUT of manifests; verification: buildctl's GETs).
        seen = list(proxy.seen)
        began = next(i for i, s in enumerate(seen) if in_step(s))
        refused = [s for s in seen[began:] if s.outcome == "upstream unreachable" and of_step(s)]
        assert refused, [s for s in seen if s.outcome == "upstream unreachable"]
        assert "Traceback" not in first.output
        # A 3 s outage is shorter than every retry bound (the push's, verification's, tagging's):
        # the run rides it out and releases everything, with one GitOps commit.
        assert first.code == 0, first.output
        assert tagged(proxy.address, tag) == sorted(SERVICES), first.output
        assert len(git("rev-list", f"{before}..main", cwd=remote).split()) == 1

        rerun = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", tag, "-q", cwd=project, timeout=600)
        assert rerun.code == 0, rerun.output
        assert tagged(proxy.address, tag) == sorted(SERVICES)
        assert len(git("rev-list", f"{before}..main", cwd=remote).split()) == 1
        for name, image in SERVICES.items():
            assert f"image: {proxy.address}/{image}:{tag}\n".encode() in show(remote, "main", f"apps/{name}.yaml")

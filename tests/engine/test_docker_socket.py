"""engine/docker_socket.py: whether a container runs, asked over the engine's unix socket."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from buildctl.engine.docker_socket import container_running


def test_an_engine_it_cannot_ask_over_a_unix_socket_is_unknown(tmp_path) -> None:
    assert container_running("tcp://127.0.0.1:2375", "x") is None
    assert container_running("ssh://host", "x") is None
    assert container_running(f"unix://{tmp_path}/no-such.sock", "x") is None


@pytest.mark.engine
def test_a_running_container_runs_and_a_missing_one_does_not() -> None:
    name = f"buildctl-socket-{uuid.uuid4().hex[:6]}"
    assert container_running("unix:///var/run/docker.sock", name) is False
    assert container_running("unix:///var/run/docker.sock", f"../{name}/x?y") is not True  # one quoted segment
    running = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True, text=True,
                             check=True, timeout=60).stdout.split()
    assert running, "the stack's containers (scripts/stack.sh up)"
    assert container_running("unix:///var/run/docker.sock", running[0]) is True

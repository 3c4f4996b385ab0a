"""signing/attestation.attach on the real registry, through a fault proxy: cosign does not retry,
so a registry fault it reports is retried as a tag write is (engine/retry.py)."""

from __future__ import annotations

import logging
import subprocess
import threading
import uuid

import pytest

from buildctl.errors import CommandError
from buildctl.registry.client import RegistryClient
from buildctl.signing import attestation
from tests.helpers.cli import BASE_IMAGE
from tests.helpers.fault_proxy import FaultProxy

pytestmark = pytest.mark.engine


def _image_through(proxy: FaultProxy) -> tuple[str, str]:
    """A copy of the base index in a repository of its own, named through the proxy: (repository, digest)."""
    repository = f"{proxy.address}/buildctl-test/attach-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", f"{repository}:1", BASE_IMAGE],
                   check=True, capture_output=True, timeout=120)
    with RegistryClient() as client:
        return repository, client.get_manifest(f"{repository}:1").digest


def test_a_registry_down_for_a_while_is_ridden_out(caplog: pytest.LogCaptureFixture) -> None:
    """cosign's own client retries a 503 or a dropped request within one run (go-containerregistry);
    a registry that refuses connections for ~2 s fails that run, and the next attempt stores it."""
    with FaultProxy() as proxy, caplog.at_level(logging.WARNING):
        repository, digest = _image_through(proxy)
        proxy.refuse()
        back = threading.Timer(2.0, proxy._listen)  # the same port, listening again
        back.start()
        try:
            attestation.attach(repository, digest, {"passed": True}, key=None, password="", insecure=True)
        finally:
            back.join()
        assert "refused the connection; attempt 1 of 5 failed, retrying in" in caplog.text
        with RegistryClient() as client:
            assert client.head_manifest(f"{repository}:{digest.replace(':', '-')}.att") is not None


def test_a_refusal_that_is_no_registry_fault_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with FaultProxy() as proxy, caplog.at_level(logging.WARNING):
        repository, digest = _image_through(proxy)
        proxy.fail(403, times=20, method="PUT", path=r"/manifests/sha256-[0-9a-f]{64}\.att$")
        with pytest.raises(CommandError, match="cosign failed attaching the attestation"):
            attestation.attach(repository, digest, {"passed": True}, key=None, password="", insecure=True)
        assert proxy.count("injected 403") >= 1 and "retrying in" not in caplog.text

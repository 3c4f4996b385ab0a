"""Which docker/buildx failures are registry faults worth retrying: the last lines buildx printed
in the runs of tests/test_faults.py and tests/test_tls_registry.py, verbatim."""

from __future__ import annotations

import pytest

from buildctl.engine.retry import classify

R = "127.0.0.1:40439"


@pytest.mark.parametrize(("output", "expected"), [
    ((f'ERROR: failed to solve: failed to push {R}/a/app:s: failed commit on ref "manifest-sha256:10cd": unexpected '
     f"status from PUT request to http://{R}/v2/a/app/manifests/sha256:10cd: 503 Service Unavailable"),
     ("transient", "answered 503 Service Unavailable")),
    ((f"ERROR: failed commit on ref \"index-sha256:12d8\": unexpected status from PUT request to http://{R}/v2/a/app/"
     "manifests/t1: 429 Too Many Requests"), ("transient", "answered 429 Too Many Requests")),
    ("#10 DONE 0.2s\nERROR: Error response from daemon: unavailable: injected by the test fault proxy",
     ("transient", "answered 503 (UNAVAILABLE)")),
    ((f'ERROR: failed to solve: failed to push {R}/a/app:s: failed to do request: Head "https://{R}/v2/a/app/blobs/'
     f'sha256:f368": dial tcp {R}: connect: connection refused'), ("transient", "refused the connection")),
    ((f'ERROR: failed to do request: Head "http://{R}/v2/a/app/manifests/sha256:9db4": read tcp 127.0.0.1:47622->{R}: '
     "read: connection reset by peer"), ("transient", "broke the connection")),
    ((f"ERROR: failed commit on ref \"index-sha256:9db4\": unexpected status from PUT request to https://{R}/v2/a/app/"
     "manifests/t1: 401 Unauthorized"), ("auth", "answered 401 Unauthorized")),
    # cosign attach attestation against a registry that is down (its last line)
    ((f'Using payload from: /tmp/a.jsonError: attaching payload from /tmp/a.json: Get "http://{R}/v2/": dial tcp '
      f'{R}: connect: connection refused\nerror during command execution: attaching payload from /tmp/a.json: Get '
      f'"http://{R}/v2/": dial tcp {R}: connect: connection refused'), ("transient", "refused the connection")),
])
def test_registry_faults_are_recognised(output: str, expected: tuple[str, str]) -> None:
    assert classify(output) == expected


@pytest.mark.parametrize("output", [
    # A RUN step failed; what it printed (even "connection refused") is not a registry fault.
    ("#5 0.31 curl: (7) Failed to connect to example.com port 80: Connection refused\n#5 ERROR: process \"/bin/sh -c "
    "curl example.com\" did not complete successfully: exit code: 7\nERROR: failed to solve: process \"/bin/sh -c curl"
    " example.com\" did not complete successfully: exit code: 7"),
    'ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file or directory',
    "#7 0.186 error: failed commit on ref: 503 Service Unavailable\n#7 0.186 retrying in 1s\n#7 DONE 3.3s\n",
])
def test_other_failures_are_not_retried(output: str) -> None:
    assert classify(output) is None

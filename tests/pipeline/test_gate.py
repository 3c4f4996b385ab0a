"""pipeline/gate.py on the real registry: a Ctrl-C while the release tags are written waits for
the tag step to end, staging tags included (they are removed or parked beside the input pointers,
inside the critical section). Real signals, in a subprocess of this Python (tests/test_interrupts.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers.cli import PROJECT, REGISTRY
from tests.helpers.reliability import unique_tag

pytestmark = pytest.mark.engine

SCRIPT = """
import json, os, signal, sys
from buildctl import interrupts
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.model import Phase
from buildctl.pipeline.gate import gate_and_tag
from buildctl.pipeline.results import BuildResult, ServiceOutcome
from buildctl.registry.client import RegistryClient

INDEX = "application/vnd.oci.image.index.v1+json"
repositories, tag, staging = json.loads(sys.argv[1]), sys.argv[2], "buildctl-staging-gateint1"
interrupts.install()
released = []
with RegistryClient() as client:
    outcomes = []
    for repository in repositories:
        body = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [], "annotations": {"r": repository}})
        digest = client.put_manifest(f"{repository}:{staging}", body.encode(), INDEX)
        passed = Verification(f"{repository}@{digest}", digest, (), (Check("", "platforms", CheckStatus.PASS, "ok"),))
        build = BuildResult(repository, repository, staging, ok=True, index_digest=digest)
        outcomes.append(ServiceOutcome(repository, repository, build, passed, f"{repository}:{tag}"))

    def notify(service, platform, state):
        if state.phase is Phase.TAGGED and service == repositories[0]:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, once the first tag is written

    try:
        gate_and_tag(tuple(outcomes), client, notify=notify, retag=False, when_released=released.append)
        print(json.dumps({"interrupted": False}))
    except KeyboardInterrupt:
        heads = {r: [(h.digest if (h := client.head_manifest(f"{r}:{name}")) else None) for name in (staging, tag)]
                 for r in repositories}
        print(json.dumps({"interrupted": True, "heads": heads, "released": len(released)}))
"""


def test_a_ctrl_c_while_the_tags_are_written_still_sees_the_staging_tags_go() -> None:
    from buildctl.registry import claim_docs

    repositories = [f"{REGISTRY}/buildctl-e2e/{unique_tag(f'gate-{n}')}" for n in ("alpha", "beta")]
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), json.dumps(repositories), unique_tag("rel")],
                          check=False, capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["interrupted"] and result["released"] == 1, result  # the pointers' hook ran, once
    for repository, (staging, release) in result["heads"].items():
        assert release is not None, repository  # the release tag was written
        assert staging in (None, claim_docs.ENDED_DIGEST), repository  # deleted, or parked at the ended claim

"""pipeline/release.py with ``claim_ends_with_tags`` (a `buildctl build`, no GitOps step to come):
the release claim is given back as soon as the tags are written, beside what the run still does,
not when the caller's context ends. On the real stack: a build, the local registry, a real claim."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from buildctl import workdir
from buildctl.config.loader import load_config
from buildctl.pipeline.release import build_release
from buildctl.registry import claim_docs, claim_tidy, claims
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import TagDeletion
from tests.helpers.claims import claim_tags, held_claim_tags
from tests.helpers.cli import REGISTRY
from tests.helpers.reliability import scratch_service, unique_tag, write_services

pytestmark = pytest.mark.engine


def test_the_claim_is_given_back_once_the_tags_are_written_while_the_run_goes_on(tmp_path: Path) -> None:
    image = f"buildctl-e2e/{unique_tag('claimend')}"
    repository = f"{REGISTRY}/{image}"
    scratch_service(tmp_path, "app", nonce=unique_tag("claim"))
    config = load_config(write_services(tmp_path, {"app": image}) / "services.yaml", tag=unique_tag("rel"))
    with RegistryClient() as client:
        claim = claims.ReleaseClaim(client, repositories=[repository], tag=config.tag, run_id="ends0001")
        with claim:
            run_dir = workdir.state_dir(config.root) / "runs" / "ends0001"
            outcome = build_release(config, run_dir=run_dir, run_id="ends0001", client=client, claim=claim,
                                    claim_ends_with_tags=True)
            assert outcome.passed and all(s.tagged for s in outcome.services), outcome
            # Still inside the claim's context: only the early give-back can have removed it.
            deadline = time.monotonic() + 30
            while held_claim_tags(client, repository) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert held_claim_tags(client, repository) == [], "the claim was still held after the tags were written"
        assert held_claim_tags(client, repository) == []


def test_a_release_that_builds_tidies_the_ended_claims_beside_its_builds(tmp_path: Path) -> None:
    """Ended claims' tags (each a tag of claim_docs.ENDED) pile up one a release; a run that builds
    removes them, all at once, while its builds run — and its own claim ends as one of them."""
    image = f"buildctl-e2e/{unique_tag('claimtidy')}"
    repository = f"{REGISTRY}/{image}"
    scratch_service(tmp_path, "app", nonce=unique_tag("tidy"))
    config = load_config(write_services(tmp_path, {"app": image}) / "services.yaml", tag=unique_tag("rel"))
    with RegistryClient() as client:
        for n in range(claim_tidy.TIDY_AT):  # earlier runs' ended claims
            client.put_manifest(f"{repository}:{claims.claim_tag(f'old{n}', f'old{n:05d}')}", claim_docs.ENDED,
                                claim_docs.INDEX_TYPE)
        assert len(claim_tags(client, repository)) == claim_tidy.TIDY_AT
        with claims.ReleaseClaim(client, repositories=[repository], tag=config.tag, run_id="tidy0001") as claim:
            outcome = build_release(config, run_dir=workdir.state_dir(config.root) / "runs" / "tidy0001",
                                    run_id="tidy0001", client=client, claim=claim, claim_ends_with_tags=True)
            assert outcome.passed and all(s.tagged for s in outcome.services), outcome
        deadline = time.monotonic() + 30
        while len(claim_tags(client, repository)) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert claim_tags(client, repository) in ([], [claims.claim_tag(config.tag, "tidy0001")])
        assert held_claim_tags(client, repository) == []
        # Distribution 2.x cannot delete the staging tag alone: it is parked at the ended claim, and
        # the next tidy that deletes takes it along with the ended claims' tags.
        (service,) = outcome.services
        assert service.staging is TagDeletion.PARKED, service.staging
        staging = f"{repository}:{service.build.staging_tag}"
        head = client.head_manifest(staging)
        assert head is not None and head.digest == claim_docs.ENDED_DIGEST
        for n in range(claim_tidy.TIDY_AT):
            client.put_manifest(f"{repository}:{claims.claim_tag(f'later{n}', f'l{n:07d}')}", claim_docs.ENDED,
                                claim_docs.INDEX_TYPE)
        assert claim_tidy.tidy(client, repository, None, now=time.time())
        assert client.head_manifest(staging) is None
        assert client.head_manifest(f"{repository}:{config.tag}") is not None  # the release tag stays

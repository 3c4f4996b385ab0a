"""The whole run of `buildctl build` / `buildctl run`: preflight, release (steps 1-5), signing
(optional), the GitOps step, and the release record, written once, always (also when the gate
failed or a tag was refused).
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path

from buildctl import workdir
from buildctl.errors import OperationError, UsageError
from buildctl.gitops.results import GitOpsResult
from buildctl.inspect import base_platforms, base_policy, dockerfile_files
from buildctl.inspect.verify import platform_digests
from buildctl.model import Config, ProgressFn, ReleasedImage
from buildctl.pipeline import record, sign_step, tagging
from buildctl.pipeline.plan import build_options, new_run_id
from buildctl.pipeline.release import build_release
from buildctl.pipeline.reuse import ReuseInputs
from buildctl.pipeline.results import ReleaseOutcome, RunResult, Signature
from buildctl.pipeline.session import registry_session
from buildctl.redaction import redact_url
from buildctl.registry import claims
from buildctl.registry.claims import ReleaseClaim
from buildctl.registry.client import RegistryClient


def nightly_tag(today: date | None = None) -> str:
    return f"nightly-{(today or datetime.now(timezone.utc).date()).strftime('%Y%m%d')}"


def run_release(config: Config, *, with_gitops: bool, jobs: int | None = None, pull: bool = False,
                no_cache: bool = False, record_path: Path | None = None, nightly: bool = False,
                progress: ProgressFn | None = None, retag: bool = False, sources: tuple[Path, ...] = (),
                rebuild: bool = False) -> RunResult:
    """Build, verify, tag, sign (with ``sign:``) and with ``with_gitops`` commit; ``nightly`` skips
    the commit when the rebuilt images are identical to what the GitOps files already pin.
    A service whose inputs equal those of an index released before is reused, unless ``rebuild``
    (pipeline/reuse.py).
    ``sources``: native agents' files (`--from`): merge what they pushed instead of building.

    A release tag that exists with other images is refused (OperationError, after the record is
    written) unless ``retag``."""
    if with_gitops and config.gitops is None:
        raise UsageError("`buildctl run` needs a gitops: section in services.yaml (or use `buildctl build`)")
    dockerfile_files.refuse_before_build(config)  # Dockerfile:LINE, before any login, build or push
    base_policy.refuse_policy_violations(config)  # policy.base_images, as written: no registry needed
    run_id = new_run_id()
    run_dir = workdir.state_dir(config.root) / "runs" / run_id  # made by the build, once it starts
    target = record_path or run_dir / "release.json"
    parts = _merging().belonging(config, sources) if sources else None  # refused before any login or push
    gitops = None
    signatures: tuple[Signature, ...] = ()
    with registry_session(config) as session, _claim(config, session.client, run_id) as claim:
        client, creds = session.client, session.creds
        _preflight(config, client=client, with_gitops=with_gitops)
        attest = sign_step.AttestBesideTags(config, client)  # REPO:sha256-<hex>.att, signed when sign: is on
        try:
            if parts is not None:  # native agents built and checked each platform: merge them
                outcome = _merging().merge_release(config, parts, run_dir=run_dir, run_id=run_id, client=client,
                                                   progress=progress, retag=retag, claim=claim, on_tagging=attest)
            else:
                credentials = {config.registry: creds} if creds else None
                reuse_from = ReuseInputs(base_platforms.refuse_missing_platforms(config, credentials=credentials),
                                         rebuild=rebuild, nightly=nightly)
                outcome = build_release(config, run_dir=run_dir, run_id=run_id, jobs=jobs,
                                        options=build_options(config, pull=pull, no_cache=no_cache), client=client,
                                        progress=progress, retag=retag, claim=claim, reuse_from=reuse_from,
                                        on_tagging=attest, claim_ends_with_tags=not with_gitops,
                                        on_verified=attest.verified)
        except Exception:  # the attestations begun as builds were verified end before the run does (interrupted: stopped)
            attest.settle()
            raise
        if not (with_gitops and _releasable(outcome)):  # no Git step the claim must cover
            claim.release_soon()
        try:
            # After the gate and the tags, before Git: only verified, released images get signed.
            signatures = sign_step.sign_release(config, outcome, client)
            attest.finish(outcome)
            if with_gitops and _releasable(outcome):
                same = nightly and _unchanged_images(config, outcome, client)
                if same:
                    gitops = GitOpsResult(repo=redact_url(config.gitops.repo), branch=config.gitops.branch,
                                          commit=None, pushed=False, attempts=0, message=same)
                else:
                    gitops = _gitops().update(config, outcome.released())
        finally:
            attest.settle()
            data = record.release_record(outcome, gitops=gitops, signatures=signatures)
            record.write_record(target, data)
    if outcome.refusal is not None:
        hint = outcome.refusal_hint or tagging.REFUSAL_HINT
        raise OperationError(outcome.refusal, hint=f"{hint}; release record: {target}")
    if outcome.tag_failure is not None:
        raise OperationError(outcome.tag_failure.message, hint=f"{outcome.tag_failure.hint}; release record: {target}")
    return RunResult(outcome, gitops, str(target), data, signatures)


def _releasable(outcome: ReleaseOutcome) -> bool:
    """Passed and tagged: what the GitOps step may hand on."""
    return outcome.passed and outcome.refusal is None and outcome.tag_failure is None


# Loaded by the runs that use them (~40 ms of imports that `buildctl build` does not need, issue #20).
def _gitops():
    from buildctl.pipeline import gitops_step

    return gitops_step


def _merging():
    from buildctl.pipeline import merge

    return merge


def _claim(config: Config, client: RegistryClient, run_id: str) -> ReleaseClaim:
    """This run's claim on REPO:TAG of every service: taken after the gate, given back when the run
    ends — after the GitOps step, so a second run with the same tag sees this one's tags and commit."""
    return ReleaseClaim(client, repositories=[f"{config.registry}/{s.image}" for s in config.services],
                        tag=config.tag, run_id=run_id, wait_seconds=claims.wait_seconds(os.environ))


def _preflight(config: Config, *, client: RegistryClient, with_gitops: bool) -> None:
    """Fail before building, with nothing pushed or tagged, on what can be known up front: a
    registry that does not answer, and GitOps input (branch, manifest files, containers) that
    would make the Git step fail after the release was tagged."""
    client.ping(config.registry, authenticated=True)  # no credentials for a registry that wants them: stop now
    sign_step.preflight(config)
    if with_gitops and config.gitops is not None:
        placeholders = tuple(ReleasedImage(s.name, f"{config.registry}/{s.image}", config.tag, "")
                             for s in config.services)
        _gitops().preview(config, placeholders)


def _unchanged_images(config: Config, outcome: ReleaseOutcome, client: RegistryClient) -> str | None:
    """A message when every service's rebuilt platform images equal those of the index its
    manifests pin (a nightly rebuild that changed nothing), else None.

    Index digests always differ between builds (provenance records the build time), so the
    per-platform image digests are what say whether anything really changed.
    """
    report = _gitops().drift(config, outcome.released())
    pinned: dict[str, set[str]] = {}
    for item in report.drift:
        if "@sha256:" not in item.found:
            return None
        pinned.setdefault(item.service, set()).add(item.found)
    for service in outcome.services:
        for ref in pinned.get(service.service, ()):
            if platform_digests(client, ref) != service.image_digests:
                return None
    return ("nightly: the rebuilt images are identical, platform by platform, to the ones the manifests "
            "already pin; no commit")

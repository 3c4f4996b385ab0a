"""`buildctl rollback TAG [SERVICE...]`: deploy an older release again, on purpose.

1. each selected service's REPO:TAG is looked up in the registry and its index verified as the
   release gate verifies (inspect.verify; per-platform verdicts are cached by manifest digest, so
   an image this machine released is not read again) — any missing or failing one refuses the
   whole rollback before Git is touched;
2. the manifests' current references are read (gitops_step.drift) to name what gitops.tag_order
   would have kept;
3. the GitOps step of a release (gitops_step.update: one commit, pinned as configured, pushed with
   the same race-safe retries and checked before pushing), with tag_order bypassed
   (rollback_plan.rollback_gitops);
4. the record, as every release writes one (not on --dry-run, which changes nothing).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from buildctl import workdir
from buildctl.errors import OperationError, UsageError
from buildctl.inspect import threads, verify
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.model import Config, ServiceConfig
from buildctl.pipeline import gitops_step, record
from buildctl.pipeline import rollback_plan as plan
from buildctl.pipeline.plan import new_run_id
from buildctl.pipeline.verifying import verify_options  # the gate's, so verdicts are shared
from buildctl.pipeline.rollback_plan import RollbackResult, RollbackTarget
from buildctl.references import TAG_RULE, is_valid_tag
from buildctl.registry import credentials
from buildctl.registry.client import RegistryClient


def check_tag(tag: str) -> None:
    if not is_valid_tag(tag):
        raise UsageError(f"invalid tag {tag!r}: {TAG_RULE}")


def rollback(config: Config, tag: str, *, dry_run: bool = False, record_path: Path | None = None) -> RollbackResult:
    """Point the GitOps manifests of ``config``'s services at their existing, verified REPO:TAG."""
    check_tag(tag)
    if config.gitops is None:
        raise UsageError("`buildctl rollback` needs a gitops: section in services.yaml")
    if not config.gitops_files():  # before the registry: nothing to roll back in Git anyway
        raise UsageError(f"no selected service has `manifests:` to roll back ({', '.join(s.name for s in config.services)})")
    run_id = new_run_id()

    def write(data: dict) -> str | None:
        if dry_run:
            return None
        target = record_path or workdir.state_dir(config.root) / "runs" / run_id / "release.json"
        return str(record.write_record(target, data))

    rule = config.gitops.tag_order
    targets = resolve(config, tag)
    if (refused := plan.refusal(tag, targets)) is not None:
        written = write(plan.rollback_record(run_id=run_id, registry=config.registry, tag=tag, targets=targets,
                                             rule=rule, lines=(), gitops=None, refused=refused))
        raise plan.refusal_error(tag, targets, record_path=written)
    releases = plan.released(targets)
    lines = plan.bypassed(gitops_step.drift(config, releases).drift, tag, rule)
    gitops = None
    try:
        gitops = gitops_step.update(replace(config, gitops=plan.rollback_gitops(config.gitops)), releases,
                                    dry_run=dry_run)
        if gitops.commit is None and not gitops.diff:
            gitops = replace(gitops, message=plan.already_deployed(tag))
    finally:  # also when the push failed: the record says what was verified and attempted
        data = plan.rollback_record(run_id=run_id, registry=config.registry, tag=tag, targets=targets, rule=rule,
                                    lines=lines, gitops=gitops, refused=None)
        written = write(data)
    return RollbackResult(tag, targets, rule, lines, gitops, dry_run, written, data)


def resolve(config: Config, tag: str) -> tuple[RollbackTarget, ...]:
    """Per service, what REPO:TAG resolves to and that index's verification (concurrently)."""
    # The one lookup (README "Registry credentials and ACR"): the variables, then the Docker config.
    with RegistryClient(credentials=credentials.CredentialLookup(release_registry=config.registry)) as client:
        client.ping(config.registry, authenticated=True)  # unreachable, or no login: one clear error, not one per service
        return tuple(threads.map_in_threads(lambda svc: _resolve(config, svc, tag, client), config.services,
                                            name="rollback"))


def _resolve(config: Config, svc: ServiceConfig, tag: str, client: RegistryClient) -> RollbackTarget:
    repository = f"{config.registry}/{svc.image}"
    head = client.head_manifest(f"{repository}:{tag}")
    if head is None:
        return RollbackTarget(svc.name, repository, tag, None)
    pinned = f"{repository}@{head.digest}"  # what is verified is what the manifests will pin
    try:
        verification = verify.verify_image(pinned, platforms=svc.platforms, client=client,
                                           options=verify_options(config, svc.name))
    except OperationError as exc:  # a deadline or a limit hit, a broken index: not verified, one line
        verification = Verification(pinned, head.digest, (), (Check("", "verify", CheckStatus.FAIL, exc.message),))
    return RollbackTarget(svc.name, repository, tag, head.digest, verification)

"""The final agent of a native-agents release (`buildctl run --from FILE --from FILE ...`): the
files are checked to belong together (pipeline/belongs.py), each service's per-platform pushes
are merged into one index by digest, the index is verified, and then the same gate and tag step
as a release built here (gate.gate_and_tag) — so `run` goes on to signing, GitOps and the
record exactly as it does after a build.

The merged index holds each agent's push as it was (buildx imagetools create keeps the platform
images and their attestation manifests, by digest): its platform images are the ones the agents
verified, which is checked again here before anything is tagged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildctl.engine import docker as engine
from buildctl.engine.results import BuilderAction, BuilderReport
from buildctl.errors import BuildctlError
from buildctl.gitops import git
from buildctl.inspect import verify
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.model import Config, Phase, Progress, ProgressFn
from buildctl.pipeline import agent_file, belongs
from buildctl.pipeline import plan as planning
from buildctl.pipeline.verifying import verify_options  # the gate's, so verdicts are shared
from buildctl.pipeline.gate import TaggingHook, gate_and_tag
from buildctl.pipeline.results import BuildResult, ReleaseOutcome, ServiceOutcome
from buildctl.registry.claims import ReleaseClaim
from buildctl.registry.client import RegistryClient


def belonging(config: Config, paths: Sequence[Path]) -> tuple[belongs.ServiceParts, ...]:
    """Read the agent files and check they make one release of ``config`` (at this checkout's
    commit); the first thing a merge does, before any login, push or tag."""
    sources = [belongs.Source(str(path), agent_file.read(Path(path))) for path in paths]
    return belongs.check(config, sources, commit=git.head_commit(config.root))


def merge_release(config: Config, parts: tuple[belongs.ServiceParts, ...], *, run_dir: Path, run_id: str,
                  client: RegistryClient, progress: ProgressFn | None = None, retag: bool = False,
                  claim: ReleaseClaim | None = None, on_tagging: TaggingHook | None = None) -> ReleaseOutcome:
    notify = progress or (lambda service, platform, state: None)
    started = time.monotonic()
    run_dir.mkdir(parents=True, exist_ok=True)
    info = engine.engine_info()
    the_plan = planning.make_plan(config, run_id=run_id)
    by_name = {p.service: p for p in parts}

    def one(svc: planning.ServicePlan) -> ServiceOutcome:
        result, verification = _merge_one(config, svc, by_name[svc.name], client, notify)
        return ServiceOutcome(svc.name, svc.repository, result, verification, svc.release_ref)

    with ThreadPoolExecutor(max_workers=max(1, min(len(the_plan.services), verify.MAX_IMAGE_WORKERS)),
                            thread_name_prefix="merge") as pool:
        outcomes = tuple(pool.map(one, the_plan.services))
    merged = time.monotonic()
    outcomes, refused, tag_failure, refusal_hint = gate_and_tag(outcomes, client, notify=notify, retag=retag,
                                                                claim=claim, on_tagging=on_tagging)
    sources = {p.platform: p.source for s in parts for p in s.parts}
    # Where each platform was built: the agent file that brought it (the record's "nodes").
    agents = BuilderReport("native agents", "", BuilderAction.REUSED, tuple(sources), local=False,
                           platform_nodes=tuple(sources.items()))
    timings = {"merge": round(merged - started, 3), "tag": round(time.monotonic() - merged, 3)}
    return ReleaseOutcome(run_id, config.tag, config.registry, str(run_dir), info, (), agents, outcomes,
                          timings, refusal=refused, tag_failure=tag_failure, refusal_hint=refusal_hint)


def _merge_one(config: Config, svc: planning.ServicePlan, parts: belongs.ServiceParts, client: RegistryClient,
               notify: ProgressFn) -> tuple[BuildResult, Verification | None]:
    staging_tag = svc.build.staging_ref.rsplit(":", 1)[1]
    started = time.monotonic()
    notify(svc.name, "", Progress(Phase.PUSHING))
    try:
        engine.create_index(sources=[f"{svc.repository}@{p.image.digest}" for p in parts.parts],
                            tag_ref=svc.build.staging_ref)
        head = client.head_manifest(svc.build.staging_ref)
        if head is None:
            raise BuildctlError(f"{svc.build.staging_ref} is missing right after the merge pushed it")
    except BuildctlError as exc:
        notify(svc.name, "", Progress(Phase.FAILED))
        return BuildResult(svc.name, svc.repository, staging_tag, ok=False, seconds=time.monotonic() - started,
                           error=exc.message.splitlines()[0]), None
    result = BuildResult(svc.name, svc.repository, staging_tag, ok=True, index_digest=head.digest,
                         seconds=time.monotonic() - started)
    notify(svc.name, "", Progress(Phase.VERIFYING))
    # The registry checks run again on the merged index (the verdict cache makes that one index read
    # where this machine verified the images before); the smoke commands ran natively on the agents.
    verification = verify.verify_image(f"{svc.repository}@{head.digest}", platforms=svc.build.platforms,
                                       client=client, options=verify_options(config, svc.name))
    checks = (*verification.checks, same_images(verification, parts), *reused_smoke(parts))
    verification = Verification(verification.reference, verification.index_digest, verification.platforms, checks)
    for part in parts.parts:
        failed = any(c.status is CheckStatus.FAIL and c.platform in ("", part.platform) for c in checks)
        notify(svc.name, part.platform, Progress(Phase.VERIFICATION_FAILED if failed else Phase.VERIFIED))
    return result, verification


def same_images(verification: Verification, parts: belongs.ServiceParts) -> Check:
    """The merged index holds exactly the platform images the agents verified, platform by platform."""
    found = {p.platform: p.digest for p in verification.platforms}
    for part in parts.parts:
        if found.get(part.platform) != part.image.image_digest:
            return Check(part.platform, "agents", CheckStatus.FAIL,
                         f"the merged index has {found.get(part.platform) or 'no image'} for {part.platform}, "
                         f"{part.source} verified {part.image.image_digest}")
    return Check("", "agents", CheckStatus.PASS,
                 ", ".join(f"{p.platform} from {p.source}" for p in parts.parts) + ": the images the agents verified")


def reused_smoke(parts: belongs.ServiceParts) -> tuple[Check, ...]:
    """Each agent's smoke results, run natively there (here they would run under emulation)."""
    return tuple(Check(c.platform, c.name, c.status, f"{c.detail} (on the agent: {part.source})")
                 for part in parts.parts for c in part.image.checks if c.name == "smoke")

"""`buildctl plan`: resolve everything a release would do. Pure: no daemon, registry or repo.

`plan --diff` / `run --dry-run` also read the GitOps repository (a throwaway clone) to show the
manifest diff the release would commit, with the tag (digests exist only after the build), ask
the registries for the base images' digests per platform (inspect/base_platforms.py), and say
which services would be reused and why the others would be built (pipeline/reuse.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from buildctl.model import Config, ReleasedImage
from buildctl.pipeline.plan import Plan, build_options, make_plan, new_run_id
from buildctl.pipeline.source_dates import commit_times
from buildctl.pipeline.results import PlanWithDiff

if TYPE_CHECKING:
    from buildctl.pipeline.reuse import Decision


def plan(config: Config, *, run_id: str | None = None, pull: bool = False, no_cache: bool = False) -> Plan:
    """``pull``/``no_cache``: as `build --pull --no-cache` would run, so the commands shown are those."""
    options = build_options(config, pull=pull, no_cache=no_cache)
    return make_plan(config, run_id=run_id or new_run_id(), options=options,
                     commit_times=commit_times(config, options))


def plan_with_diff(config: Config, *, pull: bool = False, no_cache: bool = False) -> PlanWithDiff:
    # git, YAML editing and the registry client (httpx: ~0.2 s of imports): only with --diff
    from buildctl.inspect import base_platforms
    from buildctl.pipeline import gitops_step, reuse
    from buildctl.registry.client import RegistryClient
    from buildctl.registry.credentials import CredentialLookup

    the_plan = plan(config, pull=pull, no_cache=no_cache)
    preview = None
    if config.gitops is not None and config.gitops_files():
        releases = tuple(ReleasedImage(s.name, s.repository, the_plan.tag, "") for s in the_plan.services)
        preview = gitops_step.preview(config, releases)  # bad GitOps input is refused before any registry call
    credentials = CredentialLookup(release_registry=config.registry)
    bases = base_platforms.resolved_bases(config, credentials=credentials)
    with RegistryClient(credentials=credentials, timeout=10.0) as client:
        decisions = reuse.decide(the_plan, client=client, bases=bases)
    # The commands shown are those the release runs: with the input digest annotated and --pull.
    return PlanWithDiff(reuse.apply(the_plan, decisions), preview, bases, reuse_preview(the_plan, decisions))


def reuse_preview(the_plan: Plan, decisions: dict[str, Decision]) -> tuple[tuple[str, str], ...]:
    """Per service: would it be reused (from which pointer) or built (and why) — pipeline/reuse.py's
    decision, read from the registry as the release would read it."""
    out = []
    for svc in the_plan.services:
        d = decisions[svc.name]
        out.append((svc.name, f"would be reused (inputs {d.inputs}, from {d.pointer.rsplit(':', 1)[1]})"
                    if d.reused and d.pointer else f"would be built: {d.why}"
                    + "".join(f"; base {m}" for m in d.moved)))
    return tuple(out)

"""`buildctl plan`: resolve everything a release would do. Pure: no daemon, registry or repo.

`plan --diff` / `run --dry-run` also read the GitOps repository (a throwaway clone) to show the
manifest diff the release would commit, with the tag (digests exist only after the build), and
ask the registries for the base images' digests per platform (inspect/base_platforms.py).
"""

from __future__ import annotations

from buildctl.model import Config, ReleasedImage
from buildctl.pipeline.plan import Plan, build_options, make_plan, new_run_id
from buildctl.pipeline.source_dates import commit_times
from buildctl.pipeline.results import PlanWithDiff


def plan(config: Config, *, run_id: str | None = None, pull: bool = False, no_cache: bool = False) -> Plan:
    """``pull``/``no_cache``: as `build --pull --no-cache` would run, so the commands shown are those."""
    options = build_options(config, pull=pull, no_cache=no_cache)
    return make_plan(config, run_id=run_id or new_run_id(), options=options,
                     commit_times=commit_times(config, options))


def plan_with_diff(config: Config, *, pull: bool = False, no_cache: bool = False) -> PlanWithDiff:
    # git, YAML editing and the registry client (httpx: ~0.2 s of imports): only with --diff
    from buildctl.inspect import base_platforms
    from buildctl.pipeline import gitops_step
    from buildctl.registry.credentials import CredentialLookup

    the_plan = plan(config, pull=pull, no_cache=no_cache)
    preview = None
    if config.gitops is not None and config.gitops_files():
        releases = tuple(ReleasedImage(s.name, s.repository, the_plan.tag, "") for s in the_plan.services)
        preview = gitops_step.preview(config, releases)  # bad GitOps input is refused before any registry call
    bases = base_platforms.resolved_bases(config, credentials=CredentialLookup(release_registry=config.registry))
    return PlanWithDiff(the_plan, preview, bases)

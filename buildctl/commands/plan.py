"""`buildctl plan`: resolve everything a release would do. Pure: no daemon, registry or repo.

`plan --diff` / `run --dry-run` also read the GitOps repository (a throwaway clone) to show the
manifest diff the release would commit, with the tag (digests exist only after the build).
"""

from __future__ import annotations

from buildctl.model import Config, ReleasedImage
from buildctl.pipeline.plan import Plan, make_plan, new_run_id
from buildctl.pipeline.results import PlanWithDiff


def plan(config: Config, *, run_id: str | None = None) -> Plan:
    return make_plan(config, run_id=run_id or new_run_id())


def plan_with_diff(config: Config) -> PlanWithDiff:
    from buildctl.commands.update_manifests import update_manifests

    the_plan = plan(config)
    if config.gitops is None or not any(s.manifests for s in config.services):
        return PlanWithDiff(the_plan, None)
    releases = tuple(ReleasedImage(s.name, s.repository, the_plan.tag, "") for s in the_plan.services)
    # Digests exist only after the build: the diff shows the tag; with pin_digest the release
    # appends @sha256:<index digest> to each reference.
    diff = update_manifests(config, releases=releases, pin_digest=False, dry_run=True)
    return PlanWithDiff(the_plan, diff)

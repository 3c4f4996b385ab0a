"""SOURCE_DATE_EPOCH per service: the commit time of its build context's git HEAD.

The one input of a plan that comes from git rather than services.yaml; `plan` and the release
read it the same way, so the buildx command `plan` shows is the one the release runs.
"""

from __future__ import annotations

from buildctl.gitops import git
from buildctl.model import BuildOptions, Config


def commit_times(config: Config, options: BuildOptions | None = None) -> dict[str, str]:
    """service -> HEAD commit time of its context, when build.source_date_epoch is auto."""
    if (options or config.build).source_date_epoch != "auto":
        return {}
    return {svc.name: t for svc in config.services if (t := git.commit_time(svc.context))}

"""Step 6 as a library: point the GitOps files at released images, or say where they drift.

``buildctl run`` calls ``update`` after the gate, ``preview`` before building (preflight, plan --diff)
and ``drift`` for the nightly comparison; ``buildctl update-manifests`` calls the same functions with
releases read from a record. Command-line overrides (repository, branch, pin_digest) are already
applied to the Config (``Config.with_gitops``), so no option travels through here.
"""

from __future__ import annotations

from collections.abc import Sequence

from buildctl.errors import ConfigError, UsageError
from buildctl.gitops import publish
from buildctl.gitops.git import git_token_from_env
from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.model import Config, GitOpsConfig, ReleasedImage
from buildctl.redaction import redact_url


def update(config: Config, releases: Sequence[ReleasedImage], *, dry_run: bool = False,
           in_place: bool = False) -> GitOpsResult:
    """Edit the files for ``releases``, commit once and push (``dry_run``: the diff only)."""
    cfg = _gitops_of(config, releases)
    return publish.publish(cfg, releases=releases, targets=config.gitops_files(), dry_run=dry_run,
                           in_place=in_place, token=git_token_from_env())


def preview(config: Config, releases: Sequence[ReleasedImage]) -> GitOpsResult:
    """The diff a release with these tags would commit, digests left out (they exist only after
    the build); also proves before building that the branch, files and containers exist."""
    without_digests = config.with_gitops(pin_digest=False)
    return update(without_digests, releases, dry_run=True)


def drift(config: Config, releases: Sequence[ReleasedImage], *, in_place: bool = False) -> DriftReport:
    """The GitOps files that do not reference ``releases`` (read-only)."""
    cfg = _gitops_of(config, releases)
    found = publish.find_drift(cfg, releases=releases, targets=config.gitops_files(), in_place=in_place,
                               token=git_token_from_env())
    return DriftReport(redact_url(cfg.repo), cfg.branch, tuple(found))


def _gitops_of(config: Config, releases: Sequence[ReleasedImage]) -> GitOpsConfig:
    if config.gitops is None:
        raise UsageError("no GitOps repository: add a gitops: section to services.yaml or pass --gitops-repo")
    known = {s.name for s in config.services}
    if unknown := [r.service for r in releases if r.service not in known]:
        raise ConfigError(f"the release names service {unknown[0]!r}, which is not in services.yaml",
                          file=str(config.path))
    if not any(r.service in config.gitops_files() for r in releases):
        raise ConfigError("no released service has `manifests:` to update", file=str(config.path))
    return config.gitops

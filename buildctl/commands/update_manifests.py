"""`buildctl update-manifests`: point the GitOps manifests at a verified release, or check them."""

from __future__ import annotations

from pathlib import Path

from buildctl.errors import ConfigError
from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.model import Config
from buildctl.pipeline import gitops_step
from buildctl.pipeline.record import load_releases
from buildctl.references import parse_reference


def update_manifests(config: Config, *, record: Path, dry_run: bool = False, in_place: bool = False) -> GitOpsResult:
    """The released services of ``record`` that ``config`` selects, written into the GitOps files."""
    return gitops_step.update(config, _selected(config, record), dry_run=dry_run, in_place=in_place)


def check_manifests(config: Config, *, record: Path, in_place: bool = False) -> DriftReport:
    """``--check``: the GitOps files that do not reference the release (empty = in sync)."""
    return gitops_step.drift(config, _selected(config, record), in_place=in_place)


def _selected(config: Config, record: Path):
    """The record's releases of the configured services; each must be of the repository
    services.yaml builds that service into, or a record could move any image in the files."""
    built = {s.name: parse_reference(f"{config.registry}/{s.image}").name for s in config.services}
    selected = tuple(r for r in load_releases(record) if r.service in built)
    for release in selected:
        if parse_reference(release.repository).name != built[release.service]:
            raise ConfigError(f"service {release.service} was released as {release.repository}, but services.yaml "
                              f"builds it as {built[release.service]}", file=str(record),
                              hint="use the record of a release of this services.yaml (same registry and image)")
    return selected

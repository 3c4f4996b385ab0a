"""`buildctl update-manifests`: point the GitOps manifests at a verified release."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from buildctl.errors import ConfigError, UsageError
from buildctl.gitops import git as gitops
from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.model import Config, GitOpsConfig, ManifestTarget, ReleasedImage
from buildctl.references import DIGEST_RE, is_valid_tag, parse_reference


def update_manifests(
    config: Config,
    *,
    releases: Sequence[ReleasedImage],
    gitops_repo: str | None = None,
    branch: str | None = None,
    pin_digest: bool | None = None,
    dry_run: bool = False,
    check: bool = False,
    in_place: bool = False,
) -> GitOpsResult | DriftReport:
    cfg = gitops_config(config, gitops_repo=gitops_repo, branch=branch, pin_digest=pin_digest)
    targets = targets_of(config)
    known = {s.name for s in config.services}
    if unknown := [r.service for r in releases if r.service not in known]:
        raise ConfigError(
            f"the release names service {unknown[0]!r}, which is not in services.yaml", file=str(config.path)
        )
    if not any(r.service in targets for r in releases):
        raise ConfigError("no released service has `manifests:` to update", file=str(config.path))
    token = gitops.git_token_from_env()
    if check:
        found = gitops.find_drift(cfg, releases=releases, targets=targets, in_place=in_place, token=token)
        return DriftReport(gitops.redact_url(cfg.repo), cfg.branch, tuple(found))
    return gitops.publish(cfg, releases=releases, targets=targets, dry_run=dry_run, in_place=in_place, token=token)


def gitops_config(
    config: Config, *, gitops_repo: str | None, branch: str | None, pin_digest: bool | None
) -> GitOpsConfig:
    """services.yaml's gitops section with the command-line overrides applied."""
    if config.gitops is None and gitops_repo is None:
        raise UsageError("no GitOps repository: add a gitops: section to services.yaml or pass --gitops-repo")
    cfg = config.gitops or GitOpsConfig(repo=gitops_repo or "")
    overrides: dict[str, Any] = {}
    if gitops_repo is not None:
        overrides["repo"] = gitops_repo
    if branch is not None:
        overrides["branch"] = branch
    if pin_digest is not None:
        overrides["pin_digest"] = pin_digest
    return replace(cfg, **overrides)


def load_releases(path: Path) -> tuple[ReleasedImage, ...]:
    """The verified images of a release record (``buildctl build --record PATH``)."""
    shown = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("release record not found", file=shown) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=shown, line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the release record: {exc}", file=shown) from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list) or not services:
        raise ConfigError("not a release record: expected an object with a non-empty `services` list", file=shown)
    return tuple(_released(entry, i, shown) for i, entry in enumerate(services))


def _released(entry: Any, i: int, file: str) -> ReleasedImage:
    key = f"services[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError("expected an object", file=file, key=key)
    for field in ("name", "repository", "tag", "index_digest"):
        if not isinstance(entry.get(field), str) or not entry[field]:
            raise ConfigError(f"missing or empty `{field}`", file=file, key=key)
    name = entry["name"]
    if entry.get("verified") is not True:
        raise ConfigError(
            f"service {name} is not verified (verified: {json.dumps(entry.get('verified'))}); "
            "refusing to deploy an image that did not pass verification",
            file=file, key=key,
        )  # fmt: skip
    if entry.get("tagged") is False:  # the gate failed: the release tag was never pushed
        raise ConfigError(f"service {name} was not tagged (the release gate failed)", file=file, key=key)
    try:
        ref = parse_reference(entry["repository"])
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, key=f"{key}.repository") from None
    if ref.tag or ref.digest:
        raise ConfigError("`repository` must not carry a tag or digest", file=file, key=f"{key}.repository")
    if not is_valid_tag(entry["tag"]):
        raise ConfigError(f"invalid tag {entry['tag']!r}", file=file, key=f"{key}.tag")
    if not DIGEST_RE.match(entry["index_digest"]):
        raise ConfigError("`index_digest` must be sha256:<64 hex>", file=file, key=f"{key}.index_digest")
    return ReleasedImage(name, entry["repository"], entry["tag"], entry["index_digest"])


def targets_of(config: Config) -> dict[str, tuple[ManifestTarget, ...]]:
    return {s.name: s.manifests for s in config.services if s.manifests}

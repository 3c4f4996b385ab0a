"""`buildctl rollback TAG`, the pure half: what may be rolled back, what the refusal says, which
downgrades gitops.tag_order would have refused, the GitOps settings of a rollback, its record.

A rollback deploys an *older* release again, on purpose. Each selected service's REPO:TAG must
exist and pass verification (pipeline/rollback.py finds and verifies them); then the GitOps step
runs as in a release (gitops_step.update: one commit, race-safe push, render check) with two
differences: the edit writes the tag whatever gitops.tag_order says (tag_order.BYPASS), and every
reference the rule would have kept is named ("rollback: tag_order bypassed: 42 -> 41 (...)") in
the output and the record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from buildctl import __version__
from buildctl.errors import BuildctlError, OperationError, UsageError
from buildctl.gitops.results import Drift, GitOpsResult
from buildctl.gitops.tag_order import BYPASS, downgrade
from buildctl.inspect.results import CheckStatus, Verification
from buildctl.model import GitOpsConfig, ReleasedImage, TagOrder
from buildctl.pipeline.record import to_data
from buildctl.references import parse_reference

# gitops.message is a release's template ("release {tag}: {summary}"): a rollback's subject says
# what it is instead, so `git log --grep 'rollback to'` finds every one. The body is a release's
# (one line per service with its full digest, templates.commit_message).
MESSAGE = "rollback to {tag}"
# With gitops.push_branch (a pull request per release), a rollback gets its own branch: the
# release's own (release/41) holds that release and may have been merged long ago.
PUSH_BRANCH = "rollback/{tag}"


@dataclass(frozen=True)
class RollbackTarget:
    """One selected service: what REPO:TAG resolves to in the registry, and its verification."""

    service: str
    repository: str  # registry/path
    tag: str
    digest: str | None  # the index REPO:TAG resolves to; None: the registry has no such tag
    verification: Verification | None = None  # of repository@digest

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def ok(self) -> bool:
        return self.digest is not None and self.verification is not None and self.verification.ok


@dataclass(frozen=True)
class RollbackResult:
    tag: str
    targets: tuple[RollbackTarget, ...]
    tag_order: TagOrder  # the configured rule, bypassed
    bypassed: tuple[str, ...]  # "rollback: tag_order bypassed: 42 -> 41 (vote: deploy/vote.yaml)"
    gitops: GitOpsResult
    dry_run: bool
    record_path: str | None  # None on a dry run: nothing is written
    record: Mapping[str, Any]

    @property
    def already_deployed(self) -> bool:
        return self.gitops.commit is None and not self.gitops.diff


def refusal_lines(targets: Sequence[RollbackTarget]) -> tuple[str, ...]:
    """One line per service that cannot be rolled back: its tag is missing, or fails verification."""
    lines = []
    for t in targets:
        if t.digest is None:
            lines.append(f"{t.service}: {t.reference} does not exist in the registry")
        elif not t.ok:
            failed = [c for c in (t.verification.checks if t.verification else ()) if c.status is CheckStatus.FAIL]
            first = f"{failed[0].platform or '*'} {failed[0].name}: {failed[0].detail}" if failed else "not verified"
            more = f" (and {len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
            lines.append(f"{t.service}: {t.reference} ({t.digest[:19]}…) fails verification: {first}{more}")
    return tuple(lines)


def refusal(tag: str, targets: Sequence[RollbackTarget]) -> str | None:
    """The refusal's message (a first line, then one indented line per service), or None."""
    lines = refusal_lines(targets)
    if not lines:
        return None
    return f"rollback to {tag} refused; nothing was changed in Git:\n" + "\n".join(f"  {line}" for line in lines)


def refusal_error(tag: str, targets: Sequence[RollbackTarget], *, record_path: str | None) -> BuildctlError:
    """Exit 1 when an image failed verification (an operation found a problem), else exit 2: the
    tag named does not exist (bad input)."""
    message = refusal(tag, targets)
    assert message is not None, "refusal_error without a refusal"
    failed = any(t.digest is not None and not t.ok for t in targets)
    fine = [t.service for t in targets if t.ok]
    hint = "roll back to a tag every selected service was released under"
    if fine:  # the others could be rolled back: say how to do only those
        hint += f", or name the services: buildctl rollback {tag} {' '.join(fine)}"
    if record_path:
        hint += f"; record: {record_path}"
    return (OperationError if failed else UsageError)(message, hint=hint)


def released(targets: Sequence[RollbackTarget]) -> tuple[ReleasedImage, ...]:
    """What the GitOps step writes: each service's REPO:TAG at the digest that was verified."""
    return tuple(ReleasedImage(t.service, t.repository, t.tag, t.digest or "") for t in targets if t.ok)


def bypassed(drift: Sequence[Drift], tag: str, rule: TagOrder) -> tuple[str, ...]:
    """One line per reference the manifests hold that ``rule`` would have kept (newer than ``tag``)."""
    lines = []
    for item in drift:
        if found := downgrade(_tag_of(item.found), tag, rule):
            lines.append(f"rollback: tag_order bypassed: {found} ({item.service}: {item.path})")
    return tuple(dict.fromkeys(lines))


def rollback_gitops(cfg: GitOpsConfig) -> GitOpsConfig:
    """The GitOps settings a rollback publishes with: its own message and branch, tag_order bypassed."""
    return replace(cfg, message=MESSAGE, tag_order=BYPASS, push_branch=PUSH_BRANCH if cfg.push_branch else None)


def already_deployed(tag: str) -> str:
    return f"rollback: {tag} is already deployed (every manifest references it); no commit"


def rollback_record(*, run_id: str, registry: str, tag: str, targets: Sequence[RollbackTarget], rule: TagOrder,
                    lines: Sequence[str], gitops: GitOpsResult | None, refused: str | None) -> dict[str, Any]:
    """The record of a rollback, shaped like a release record: per service name, repository, tag,
    index_digest, verified, tagged — so `update-manifests --record` reads it too."""
    services = [{
        "name": t.service,
        "repository": t.repository,
        "tag": t.tag,
        "index_digest": t.digest,
        "platforms": {p.platform: p.digest for p in t.verification.platforms} if t.verification else {},
        "checks": [to_data(c) for c in t.verification.checks] if t.verification else [],
        "verified": t.ok,
        "tagged": t.digest is not None,  # the tag exists: a rollback never creates or moves one
        "release": "rollback",
    } for t in targets]  # fmt: skip
    return {
        "tool": {"buildctl": __version__},
        "verb": "rollback",
        "run_id": run_id,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "registry": registry,
        "tag": tag,
        "gate": "failed" if refused else "passed",
        "refused": refused,
        "tag_order": {"rule": str(rule), "bypassed": list(lines)},
        "services": services,
        "gitops": to_data(gitops) if gitops else None,
    }


def _tag_of(reference: str) -> str | None:
    try:
        return parse_reference(reference).tag
    except ValueError:
        return None  # not a reference the rule could read: nothing was bypassed for it

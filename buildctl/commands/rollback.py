"""`buildctl rollback TAG [SERVICE...]`: deploy an older, verified release again, on purpose."""

from __future__ import annotations

from pathlib import Path

from buildctl.model import Config
from buildctl.pipeline import rollback as pipeline
from buildctl.pipeline.rollback_plan import RollbackResult

check_tag = pipeline.check_tag


def rollback(config: Config, tag: str, *, dry_run: bool = False, record_path: Path | None = None) -> RollbackResult:
    """``config``'s services (already selected) back to their REPO:TAG: verified, one GitOps
    commit "rollback to TAG", gitops.tag_order bypassed and said so (pipeline/rollback.py)."""
    return pipeline.rollback(config, tag, dry_run=dry_run, record_path=record_path)

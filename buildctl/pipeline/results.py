"""What the pipeline reports: builds, the release outcome and its gate, a run, a plan preview, doctor.

Plain frozen data beside the pipeline code that produces it; the renderer (buildctl.output) and the
release record import these types without loading the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from buildctl.engine.results import BinfmtResult, BuilderReport, EngineInfo
from buildctl.gitops.results import GitOpsResult
from buildctl.inspect.results import PrefetchReport, ResolvedBase, Verification
from buildctl.model import ReleasedImage, frozen_map
from buildctl.pipeline.plan import Plan
from buildctl.registry.results import TagDeletion


@dataclass(frozen=True)
class BuildResult:
    service: str
    repository: str  # registry/path, e.g. 127.0.0.1:5000/voting-app/vote
    staging_tag: str
    ok: bool
    index_digest: str | None = None  # from buildx's metadata file (containerimage.digest)
    seconds: float = 0.0
    log_file: str | None = None
    error: str | None = None
    inputs: str | None = None  # the input digest (inputs/key.py); None: unknowable, see why_built
    reused_from: str | None = None  # REPO:POINTER the index was found under: not built, reused
    why_built: str = ""  # why it was not reused (shown by plan, kept in the record)
    bases_moved: tuple[str, ...] = ()  # "REF (PLATFORM): OLD -> NEW" since the last release

    @property
    def outcome(self) -> str:
        """``built``, or ``reused (inputs sha256:..., from TAG)``."""
        if self.reused_from:
            return f"reused (inputs {self.inputs}, from {self.reused_from.rsplit(':', 1)[1]})"
        return "built" if self.ok else "failed"


class TagAftermath(StrEnum):
    """What a release whose tag step failed for one service left at another's REPO:TAG."""

    REMOVED = "removed again"  # this run created it; the registry deletes tags alone (ACR, OCI 1.1)
    KEPT = "still exists: the registry cannot delete a tag alone"  # Distribution 2.x
    RESTORED = "restored to the index it held before"  # --retag had moved it
    MOVED = "still holds this run's index: restoring the one before failed"  # --retag moved it, no way back
    UNTOUCHED = "untouched"  # identical release, or the write that failed never changed it


class TagStatus(StrEnum):
    """What the release step did with REPO:TAG (tags are immutable unless --retag)."""

    TAGGED = "tagged"  # a new tag
    IDENTICAL = "already released, identical"  # the tag holds the same platform images: kept
    RETAGGED = "re-tagged (--retag)"  # the tag held other images and was moved deliberately
    REFUSED = "refused: the tag holds other images"  # nothing tagged (all-or-nothing)


@dataclass(frozen=True)
class ServiceOutcome:
    service: str
    repository: str
    build: BuildResult
    verification: Verification | None
    release_ref: str
    tagged: bool = False
    staging: TagDeletion | None = None  # what happened to the staging tag after the gate
    tag_status: TagStatus | None = None  # None: the gate failed, no tag was considered
    previous_digest: str | None = None  # the index REPO:TAG held before this release, if any
    tag_error: str | None = None  # writing REPO:TAG failed for good (the message)
    tag_left: TagAftermath | None = None  # after a failed tag step: what this run left at REPO:TAG

    @property
    def ok(self) -> bool:
        return self.build.ok and self.verification is not None and self.verification.ok

    @property
    def image_digests(self) -> set[str]:
        """The per-platform image manifest digests verified for this service (empty if none)."""
        return {p.digest for p in self.verification.platforms} if self.verification else set()

    @property
    def released_digest(self) -> str | None:
        """The index REPO:TAG resolves to after the release: the existing one when identical."""
        return self.previous_digest if self.tag_status is TagStatus.IDENTICAL else self.build.index_digest


@dataclass(frozen=True)
class Signature:
    """A cosign signature of a released index (stored at REPO:sha256-<hex>.sig)."""

    service: str
    signed: str  # REPO@sha256:... (the index digest)
    signature: str  # REPO@sha256:... of the signature manifest
    key: str  # the key's path or URI, as configured (never its content)


@dataclass(frozen=True)
class TagFailure:
    """The first tag write that failed for good, and which release tags exist now."""

    message: str
    hint: str


@dataclass(frozen=True)
class ReleaseOutcome:
    run_id: str
    tag: str
    registry: str
    run_dir: str
    engine: EngineInfo
    binfmt: tuple[BinfmtResult, ...]
    builder: BuilderReport
    services: tuple[ServiceOutcome, ...]
    timings: Mapping[str, float] = field(default_factory=frozen_map)
    refusal: str | None = None  # the gate passed but a tag exists with other images: nothing tagged
    tag_failure: TagFailure | None = None  # the gate passed but a tag write failed for good
    refusal_hint: str | None = None  # how to go on after ``refusal`` when it is not the existing-tag one
    prefetch: PrefetchReport | None = None  # the base images' layers read while the builds ran

    @property
    def passed(self) -> bool:
        return all(s.ok for s in self.services)

    def released(self) -> tuple[ReleasedImage, ...]:
        return tuple(
            ReleasedImage(s.service, s.repository, self.tag, s.released_digest or "")
            for s in self.services if s.tagged
        )


@dataclass(frozen=True)
class RunResult:
    outcome: ReleaseOutcome
    gitops: GitOpsResult | None
    record_path: str
    record: Mapping[str, Any]  # what was written to record_path (renderers and CI lines read this)
    signatures: tuple[Signature, ...] = ()


@dataclass(frozen=True)
class PlanWithDiff:
    plan: Plan
    gitops: GitOpsResult | None  # a dry run: diff only, nothing pushed
    bases: tuple[ResolvedBase, ...] = ()  # the base images' digests per platform, as the registries answered
    reuse: tuple[tuple[str, str], ...] = ()  # (service, "would be reused (...)" / "would be built: why")


@dataclass(frozen=True)
class DoctorCheck:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorResult:
    checks: tuple[DoctorCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

"""Immutable release tags: decide, per service, what the tag step may do with REPO:TAG.

A rebuild of the same sources pushes a new index (provenance records the build time) whose
per-platform images are byte-identical. Re-pointing the tag then makes a CD system, or a
person, see a digest other than the one that was verified and deployed. So: a tag that already
holds the same platform images (attestation manifests ignored) is kept as it is; one that holds
other images is refused — for every service, before any is tagged — unless ``--retag``.
"""

from __future__ import annotations

from dataclasses import replace

from buildctl.inspect.verify import platform_digests
from buildctl.pipeline.results import ServiceOutcome, TagAftermath, TagFailure, TagStatus
from buildctl.registry.results import TagDeletion
from buildctl.registry.client import RegistryClient


def decide(outcome: ServiceOutcome, client: RegistryClient, *, retag: bool) -> ServiceOutcome:
    """``outcome`` with its tag_status (and the digest the tag held before, if it existed)."""
    existing = client.head_manifest(outcome.release_ref)
    if existing is None:
        return replace(outcome, tag_status=TagStatus.TAGGED)
    if existing.digest == outcome.build.index_digest:
        return replace(outcome, tag_status=TagStatus.IDENTICAL, previous_digest=existing.digest)
    # By digest, not by tag: what is compared is what the tag is kept at.
    if platform_digests(client, f"{outcome.repository}@{existing.digest}") == outcome.image_digests:
        return replace(outcome, tag_status=TagStatus.IDENTICAL, previous_digest=existing.digest)
    status = TagStatus.RETAGGED if retag else TagStatus.REFUSED
    return replace(outcome, tag_status=status, previous_digest=existing.digest)


def refusal(outcomes: tuple[ServiceOutcome, ...]) -> str | None:
    """One line naming the tags that hold other images, or None when every tag may proceed."""
    refused = [o for o in outcomes if o.tag_status is TagStatus.REFUSED]
    if not refused:
        return None
    names = ", ".join(f"{o.release_ref} (now {o.previous_digest[:19]}…)" for o in refused if o.previous_digest)
    return (f"{names} already exist{'s' if len(refused) == 1 else ''} with other images; release tags are "
            "immutable, so nothing was tagged")


REFUSAL_HINT = "release under a new tag, or pass --retag to move the tag deliberately (the record says so)"


def aftermath(outcome: ServiceOutcome, deletion: TagDeletion | None, *, restored: bool = True) -> TagAftermath:
    """What is at REPO:TAG after another service's tag write failed, given what undoing did."""
    if outcome.tag_error is not None or outcome.tag_status is TagStatus.IDENTICAL:
        return TagAftermath.UNTOUCHED
    if outcome.tag_status is TagStatus.RETAGGED:
        return TagAftermath.RESTORED if restored else TagAftermath.MOVED
    return TagAftermath.KEPT if deletion is TagDeletion.KEPT else TagAftermath.REMOVED


def failure(outcomes: tuple[ServiceOutcome, ...]) -> TagFailure | None:
    """The failed tag step as one error and a hint listing which release tags exist now."""
    failed = [o for o in outcomes if o.tag_error is not None]
    if not failed:
        return None
    exist = [o.release_ref for o in outcomes if _exists_after(o)]
    kept = [o.release_ref for o in outcomes if o.tag_left is TagAftermath.KEPT]
    hint = (f"nothing was released and nothing committed to Git; release tags that exist now: "
            f"{', '.join(exist) if exist else 'none'}")
    if kept:
        hint += (f" ({', '.join(kept)}: this run's verified index, left because the registry cannot delete "
                 "a tag alone; a rerun keeps it, as the images are the same)")
    others = [o.service for o in failed[1:]]
    if others:
        hint += f"; tagging also failed for {', '.join(others)}"
    return TagFailure(failed[0].tag_error or "", f"{hint}; fix the cause and run again")


def _exists_after(outcome: ServiceOutcome) -> bool:
    if outcome.tag_status is None:
        return False
    if outcome.tag_error is not None:  # the write failed: the tag is what it was before
        return outcome.previous_digest is not None
    return outcome.tag_left is not TagAftermath.REMOVED

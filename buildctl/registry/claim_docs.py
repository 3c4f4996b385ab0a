"""Release claims as the registry holds them (registry/claims.py runs the protocol): the tags,
the documents, and the ended claim every run's tag points at once it is over."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.registry.wire import OCI_INDEX as INDEX_TYPE
from buildctl.registry.wire import sha256_digest

if TYPE_CHECKING:
    from buildctl.registry.client import RegistryClient

PREFIX = "buildctl-claim-"
TAG_KEY, RUN_KEY, ENDED_KEY = "org.buildctl.claim.tag", "org.buildctl.claim.run", "org.buildctl.claim.ended"
CREATED_KEY = "org.opencontainers.image.created"
CLAIM_TTL_SECONDS = 15 * 60  # longer than any tag + sign + GitOps step; a dead run blocks no longer
ENDED = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [], "annotations": {ENDED_KEY: "true"}},
                   sort_keys=True).encode()  # no run, no time: not a claim (parse_claim), the same bytes everywhere
ENDED_DIGEST = sha256_digest(ENDED)
# The tags this buildctl claims under (claim_tag); older ones had no attempt, and are left alone.
_ATTEMPT_TAG = re.compile(re.escape(PREFIX) + r"[0-9a-f]{16}-[^-]+-[0-9]+")


@dataclass(frozen=True)
class Claim:
    """A claim as read from the registry."""

    repository: str
    tag: str  # buildctl-claim-<key>-<run>-<attempt> (an older buildctl: no attempt)
    run_id: str
    created: float  # seconds since the epoch, as the claiming run's clock said
    ended: bool = False  # the run is over (as buildctl before ENDED marked a claim it could not delete)

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.created, timezone.utc).strftime("%H:%M:%S UTC")
        return f"run {self.run_id} (claimed {when})"


def release_key(release_tag: str) -> str:
    """16 hex digits naming the release tag inside a claim tag (tags are at most 128 characters)."""
    return hashlib.sha256(release_tag.encode()).hexdigest()[:16]


def claim_tag(release_tag: str, run_id: str, *, attempt: int = 1) -> str:
    """The tag of one attempt's claim: a fresh tag each attempt, never one that pointed at ENDED —
    a tidy's delete untags whatever points at ENDED when it looked, even a tag re-pointed since."""
    return f"{PREFIX}{release_key(release_tag)}-{run_id}-{attempt}"


def claim_document(release_tag: str, run_id: str, *, now: float) -> bytes:
    created = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
    annotations = {TAG_KEY: release_tag, RUN_KEY: run_id, CREATED_KEY: created}
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [],
                       "annotations": annotations}, sort_keys=True).encode()


def parse_claim(repository: str, tag: str, content: bytes) -> Claim | None:
    """The claim ``content`` records, or None when it is not one of ours (then it is no claim)."""
    try:
        annotations = jsonsafe.loads(content).get("annotations") or {}
        created = datetime.fromisoformat(annotations[CREATED_KEY]).timestamp()
        run_id = str(annotations[RUN_KEY])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return Claim(repository, tag, run_id, created, ended=annotations.get(ENDED_KEY) == "true")


def live_claims(claims: Sequence[Claim], *, own_run: str, now: float,
                ttl: float = CLAIM_TTL_SECONDS) -> tuple[Claim, ...]:
    """The other runs' claims that still hold: not this run's, not ended, not older than ``ttl``."""
    return tuple(c for c in claims if c.run_id != own_run and not c.ended and now - c.created < ttl)


def is_attempt_tag(tag: str) -> bool:
    """Whether ``tag`` is one claim_tag makes (a claim, held or ended, of this buildctl)."""
    return _ATTEMPT_TAG.fullmatch(tag) is not None


def read_claim(client: RegistryClient, repository: str, tag: str) -> tuple[str, Claim | None] | None:
    """What claim tag ``tag`` points at: (that digest, the claim its document records, or None when
    it records none), or None when the tag or its document is gone. A tag at ENDED is not read."""
    head = client.head_manifest(f"{repository}:{tag}")
    if head is None:
        return None
    if head.digest == ENDED_DIGEST:
        return head.digest, None
    try:
        manifest = client.get_manifest(f"{repository}@{head.digest}")
    except OperationError:
        if client.head_manifest(f"{repository}@{head.digest}") is None:
            return None  # taken back (its run deleted it) between the HEAD and the GET
        raise
    return head.digest, parse_claim(repository, tag, manifest.content)


def point_at_ended(client: RegistryClient, repository: str, tag: str) -> None:
    """Point ``tag`` at ENDED (one PUT): how a run takes its claim back, a tidy ends an abandoned
    one, and a staging tag is parked where tags cannot be deleted alone (pipeline/gate.py)."""
    client.put_manifest(f"{repository}:{tag}", ENDED, INDEX_TYPE)

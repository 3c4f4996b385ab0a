"""What the registry client reports, in a module of its own so that readers need not load httpx."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from buildctl.registry.bounds import parse_json

# the index media types of wire.INDEX_TYPES (wire imports httpx; this module must not)
_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})


class TagDeletion(StrEnum):
    """What happened to a tag buildctl asked the registry to delete (a run's staging tag)."""

    DELETED = "deleted"
    ALREADY_GONE = "already gone"
    KEPT = "kept: the registry does not delete tags alone"  # Distribution 2.x: by digest only
    PARKED = "parked: at the ended claim, deleted with the ended claims"  # gate.py: where KEPT was


@dataclass(frozen=True)
class Manifest:
    media_type: str
    content: bytes  # exactly the bytes the digest covers
    digest: str

    @property
    def is_index(self) -> bool:
        return self.media_type in _INDEX_TYPES

    def json(self) -> dict[str, Any]:
        return parse_json(self.content, what=f"manifest {self.digest}")


@dataclass(frozen=True)
class ManifestHead:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    total_seconds: float = 60.0  # no new attempt would start after this
    initial_wait: float = 0.5
    max_wait: float = 8.0

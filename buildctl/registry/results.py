"""What the registry client reports, in a module of its own so that readers need not load httpx."""

from __future__ import annotations

from enum import StrEnum


class TagDeletion(StrEnum):
    """What happened to a tag buildctl asked the registry to delete (a run's staging tag)."""

    DELETED = "deleted"
    ALREADY_GONE = "already gone"
    KEPT = "kept: the registry does not delete tags alone"  # Distribution 2.x: by digest only

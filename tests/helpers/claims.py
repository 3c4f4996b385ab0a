"""What a repository's release claims say, as the tests read them (registry/claims.py)."""

from __future__ import annotations

from buildctl.registry import claim_docs, claims
from buildctl.registry.client import RegistryClient


def claim_tags(client: RegistryClient, repository: str) -> list[str]:
    """Every claim tag of ``repository``, held or ended."""
    return sorted(t for t in client.list_tags(repository) if t.startswith(claims.PREFIX))


def held_claim_tags(client: RegistryClient, repository: str) -> list[str]:
    """The claim tags that still hold a claim: not pointing at the ended claim (nor dangling)."""
    held = []
    for tag in claim_tags(client, repository):
        head = client.head_manifest(f"{repository}:{tag}")
        if head is not None and head.digest != claim_docs.ENDED_DIGEST:
            held.append(tag)
    return held

"""``buildctl verify IMAGE...``: check pushed images without pulling them."""

from __future__ import annotations

from collections.abc import Sequence

from buildctl.errors import UsageError
from buildctl.inspect.results import Verification
from buildctl.inspect.verify import verify_images
from buildctl.references import parse_reference
from buildctl.registry.client import RegistryClient, RegistryCredentials


def verify_references(
    references: Sequence[str],
    *,
    platforms: Sequence[str],
    exact: bool = True,
    credentials: RegistryCredentials | None = None,
) -> tuple[Verification, ...]:
    """Verify each reference against ``platforms``; ``credentials`` go to the references' registries only."""
    registries = set()
    for reference in references:
        try:
            registries.add(parse_reference(reference).registry)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    creds = dict.fromkeys(registries, credentials) if credentials is not None else None
    with RegistryClient(credentials=creds) as client:
        return verify_images(references, platforms=platforms, exact=exact, client=client)

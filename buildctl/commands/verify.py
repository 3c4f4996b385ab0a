"""``buildctl verify IMAGE...``: check pushed images without pulling them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from buildctl.errors import UsageError
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.inspect.verify import VerifyOptions, page_size_bytes, verify_images
from buildctl.references import parse_reference
from buildctl.registry.auth import is_loopback
from buildctl.registry.bounds import DEFAULT_DEADLINE_SECONDS
from buildctl.registry.client import RegistryClient, RegistryCredentials
from buildctl.signing import cosign


def verify_references(
    references: Sequence[str],
    *,
    platforms: Sequence[str],
    exact: bool = True,
    credentials: RegistryCredentials | None = None,
    allow_foreign: Sequence[str] = (),
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    public_key: Path | None = None,
    page_size: str = "4k",
) -> tuple[Verification, ...]:
    """Verify each reference against ``platforms``; ``credentials`` go to the references' registries only.

    With ``public_key``, each verified digest must also carry a cosign signature by that key."""
    pages = page_size_bytes(page_size)
    if public_key is not None and not public_key.is_file():
        raise UsageError(f"--key {public_key}: no such file (the public key, e.g. cosign.pub)")
    registries = set()
    for reference in references:
        try:
            registries.add(parse_reference(reference).registry)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    creds = dict.fromkeys(registries, credentials) if credentials is not None else None
    with RegistryClient(credentials=creds) as client:
        results = verify_images(references, platforms=platforms, exact=exact, client=client,
                                options=VerifyOptions(tuple(allow_foreign), deadline_seconds, page_size=pages))
    return results if public_key is None else tuple(signature_checked(r, public_key) for r in results)


def signature_checked(result: Verification, public_key: Path) -> Verification:
    """``result`` plus a ``signature`` check of the digest that was verified (not the tag, which
    could have moved since)."""
    if result.index_digest is None and "@" not in result.reference:
        check = Check("", "signature", CheckStatus.FAIL, "no digest to check the signature of")
    else:
        registry = parse_reference(result.reference).registry
        found = cosign.verify(result.reference, public_key=str(public_key), insecure=is_loopback(registry))
        check = Check("", "signature", CheckStatus.PASS if found.ok else CheckStatus.FAIL, found.detail)
    return replace(result, checks=(*result.checks, check))

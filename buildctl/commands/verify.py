"""``buildctl verify IMAGE...``: check pushed images without pulling them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from buildctl.config import loader
from buildctl.errors import UsageError
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.inspect.verify import VerifyOptions, page_size_bytes, verify_images
from buildctl.references import parse_reference
from buildctl.registry.auth import is_loopback
from buildctl.registry.bounds import DEFAULT_DEADLINE_SECONDS
from buildctl.registry.client import RegistryClient
from buildctl.registry.credentials import CredentialLookup
from buildctl.signing import attestation, cosign


def verify_references(
    references: Sequence[str],
    *,
    platforms: Sequence[str],
    exact: bool = True,
    credentials: CredentialLookup | None = None,
    allow_foreign: Sequence[str] = (),
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
    public_key: Path | None = None,
    page_size: str = "4k",
    attestation: bool = False,
) -> tuple[Verification, ...]:
    """Verify each reference against ``platforms``; each registry gets only its own credentials
    from ``credentials`` (default: the lookup scoped to the default registry, 127.0.0.1:5000).

    With ``public_key``, each verified digest must also carry a cosign signature by that key.
    With ``attestation``, the verification attestations are read back instead (attestations_of)."""
    if attestation:
        return attestations_of(references, platforms=platforms, exact=exact, credentials=credentials,
                               public_key=public_key)
    pages = page_size_bytes(page_size)
    if public_key is not None and not public_key.is_file():
        raise UsageError(f"--key {public_key}: no such file (the public key, e.g. cosign.pub)")
    for reference in references:
        try:
            parse_reference(reference)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    lookup = credentials if credentials is not None else CredentialLookup(release_registry=loader.DEFAULT_REGISTRY)
    with RegistryClient(credentials=lookup) as client:
        results = verify_images(references, platforms=platforms, exact=exact, client=client,
                                options=VerifyOptions(tuple(allow_foreign), deadline_seconds, page_size=pages))
    return results if public_key is None else tuple(signature_checked(r, public_key) for r in results)


def credential_lookup(config: Path, registry: str | None) -> CredentialLookup:
    """The lookup for ``verify``: BUILDCTL_REGISTRY_* only for the release registry (``--registry``,
    else services.yaml's ``registry:`` when there is one, else the default), never for the other
    registries named on the command line (issue #24)."""
    if registry is None:
        registry = loader.load_config(config).registry if config.is_file() else loader.DEFAULT_REGISTRY
    return CredentialLookup(release_registry=registry)


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


def attestations_of(references: Sequence[str], *, platforms: Sequence[str], exact: bool = True,
                    credentials: CredentialLookup | None = None,
                    public_key: Path | None = None) -> tuple[Verification, ...]:
    """``verify --attestation``: each reference's verification attestation read back (not the bytes
    verified again): the attested checks, and an ``attestation`` check that fails when there is
    none for this index, it failed, it lacks a required platform, or (``public_key``) no
    attestation's signature verifies with that key."""
    if public_key is not None and not public_key.is_file():
        raise UsageError(f"--key {public_key}: no such file (the public key, e.g. cosign.pub)")
    refs = []
    for reference in references:
        try:
            refs.append(parse_reference(reference))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if cosign.available() is None:
        raise UsageError("--attestation reads attestations with cosign, which is not installed")
    lookup = credentials if credentials is not None else CredentialLookup(release_registry=loader.DEFAULT_REGISTRY)
    out = []
    with RegistryClient(credentials=lookup) as client:
        for ref in refs:
            # The digest first, once: the attestation read and checked is the one of this index.
            head = client.head_manifest(ref) if ref.digest is None else None
            digest = ref.digest or (head.digest if head is not None else None)
            if digest is None:
                out.append(Verification(str(ref), None, (), (Check("", "attestation", CheckStatus.FAIL,
                                                                   "no such image"),)))
                continue
            found = attestation.read_back(ref.name, digest, public_key=str(public_key) if public_key else None,
                                          insecure=is_loopback(ref.registry))
            out.append(attestation.as_verification(found, platforms=tuple(platforms), exact=exact,
                                                   public_key=str(public_key) if public_key else None))
    return tuple(out)

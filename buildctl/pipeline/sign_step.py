"""Signing a release (services.yaml ``sign:``) and attesting its verification: after the gate,
before the GitOps commit.

Only images that passed verification and carry the release tag are signed, each by the index
digest the tag resolves to (the existing one when the release was already there, identical), so
the signature covers exactly what the manifests will pin.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TypeVar

from buildctl import concurrently
from buildctl.errors import BuildctlError, OperationError, UsageError
from buildctl.inspect import threads
from buildctl.model import Config
from buildctl.pipeline.results import ReleaseOutcome, ServiceOutcome, Signature
from buildctl.references import parse_reference
from buildctl.registry.auth import is_loopback
from buildctl.registry.client import RegistryClient
from buildctl.signing import attestation, cosign

T = TypeVar("T")
log = logging.getLogger(__name__)
MAX_COSIGNS = 8  # cosign processes at once (a repository of 1,000 services is not 1,000 processes)


def preflight(config: Config) -> None:
    """Before building: cosign is there and the key's password variable is set (empty is fine)."""
    if config.sign is None:
        if config.verify.attest and cosign.available() is None:
            raise OperationError("verify.attest (on by default) attaches each release's verification with cosign, "
                                 "which is not installed",
                                 hint="scripts/stack.sh up installs Debian's cosign; or set verify: {attest: false}")
        return
    if cosign.available() is None:
        raise OperationError("sign: is configured but cosign is not installed",
                             hint="scripts/stack.sh up installs Debian's cosign; or remove sign: from services.yaml")
    if config.sign.password_env not in os.environ:
        raise UsageError(f"sign: needs the key's password in ${config.sign.password_env} "
                         "(set it empty for a key without password)")


def sign_release(config: Config, outcome: ReleaseOutcome, client: RegistryClient) -> tuple[Signature, ...]:
    if config.sign is None or not outcome.passed or outcome.refusal is not None or outcome.tag_failure is not None:
        return ()
    password, key = os.environ.get(config.sign.password_env, ""), config.sign.key

    def sign(s: ServiceOutcome) -> Signature | None:
        if not (s.ok and s.tagged and s.released_digest):
            return None  # never sign what was not verified and released
        signed = f"{s.repository}@{s.released_digest}"
        insecure = is_loopback(parse_reference(s.repository).registry)
        cosign.sign(signed, key=key, password=password, insecure=insecure)
        head = client.head_manifest(f"{s.repository}:{cosign.signature_tag(s.released_digest)}")
        if head is None:
            raise OperationError(f"cosign signed {signed}, but the registry has no signature for it")
        return Signature(s.service, signed, f"{s.repository}@{head.digest}", key)

    return _each_service(sign, outcome.services)


def attest_services(config: Config, services: Sequence[ServiceOutcome],
                    client: RegistryClient) -> tuple[attestation.Attested, ...]:
    """The attestations of ``services``, verified and with their release tag decided: released, or
    (`pipeline/run.py`) about to be, the attestation then beside the tag writes.

    A reused index (pipeline/reuse.py) already carries the attestation of the release that built
    it. Unsigned, that one says all an unsigned one can: it is kept (no new layer every night). With
    ``sign:`` it is attested again: the one it has may be unsigned, or signed with another key."""
    if not config.verify.attest:
        return ()
    key = config.sign.key if config.sign is not None else None
    password = os.environ.get(config.sign.password_env, "") if config.sign is not None else ""

    def attest(s: ServiceOutcome) -> attestation.Attested | None:
        if not (s.ok and s.released_digest and s.verification is not None):
            return None  # only what was verified
        if key is None and s.build.reused_from and _attested(client, s.repository, s.released_digest):
            return None
        insecure = is_loopback(parse_reference(s.repository).registry)
        return attestation.attach(s.repository, s.released_digest, attestation.predicate(s.verification),
                                  key=key, password=password, insecure=insecure)

    return _each_service(attest, services)


class AttestBesideTags:
    """`attest_services` begun, in a thread, the moment the release tags are decided (the gate
    passed, none refused), so cosign (~0.1 s) runs beside the tag writes instead of after them
    (issue #20). An attestation says what verification found for that digest; it is true whether or
    not a tag write then fails (the run then fails on the tag, and the attestation stays)."""

    def __init__(self, config: Config, client: RegistryClient) -> None:
        self._config, self._client = config, client
        self._begun: Future[tuple[attestation.Attested, ...]] | None = None

    def __call__(self, services: Sequence[ServiceOutcome]) -> None:
        chosen = tuple(services)
        self._begun = threads.start(lambda: attest_services(self._config, chosen, self._client), name="attest")

    def finish(self, outcome: ReleaseOutcome) -> tuple[attestation.Attested, ...]:
        """The attestations of the released services; its error if one failed (the run then fails,
        before GitOps). Nothing when the tags were never decided (the hook was not called)."""
        begun, self._begun = self._begun, None
        if begun is None:
            return ()
        if outcome.passed and outcome.refusal is None and outcome.tag_failure is None:
            return begun.result()
        _logged(begun)  # the run fails on its tags: that error is the one to tell
        return ()

    def settle(self) -> None:
        """Waits for attestations begun and never finished (the run failed on something else
        first): their error is logged, not raised."""
        begun, self._begun = self._begun, None
        if begun is not None:
            _logged(begun)


def _logged(begun: Future[tuple[attestation.Attested, ...]]) -> None:
    try:
        begun.result()
    except BuildctlError as exc:
        log.warning("attesting the verification failed too: %s", exc.message)


def _each_service(fn: Callable[[ServiceOutcome], T | None], services: Sequence[ServiceOutcome]) -> tuple[T, ...]:
    """``fn`` of every service at once, but for those it returns None: one cosign process each
    (~0.1-0.15 s, mostly registry round trips; in sequence they were the longest step after a cold
    release's builds, issue #20)."""
    return tuple(r for r in concurrently.each(fn, services, name="cosign", limit=MAX_COSIGNS) if r is not None)


def _attested(client: RegistryClient, repository: str, digest: str) -> bool:
    """Does REPO:sha256-<hex>.att (cosign's attestation tag for the index) exist?"""
    try:
        return client.head_manifest(f"{repository}:{digest.replace(':', '-')}.att") is not None
    except OperationError:
        return False

"""Signing a release (services.yaml ``sign:``) and attesting its verification: after the gate,
before the GitOps commit.

Only images that passed verification and carry the release tag are signed, each by the index
digest the tag resolves to (the existing one when the release was already there, identical), so
the signature covers exactly what the manifests will pin.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from buildctl import concurrently
from buildctl.errors import BuildctlError, OperationError, UsageError
from buildctl.inspect import threads
from buildctl.inspect.results import Verification
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
        cosign.sign(signed, key=key, password=password, insecure=_insecure(s.repository))
        head = client.head_manifest(f"{s.repository}:{cosign.signature_tag(s.released_digest)}")
        if head is None:
            raise OperationError(f"cosign signed {signed}, but the registry has no signature for it")
        return Signature(s.service, signed, f"{s.repository}@{head.digest}", key)

    return _each_service(sign, outcome.services)


# (repository, digest) -> begun at verification; None: not attested then (its round was stopped)
Early = Mapping[tuple[str, str], "Future[attestation.Attested | None]"]


def attest_services(config: Config, services: Sequence[ServiceOutcome], client: RegistryClient, *,
                    early: Early | None = None) -> tuple[attestation.Attested, ...]:
    """The attestations of ``services``, verified and with their release tag decided: released, or
    (`pipeline/run.py`) about to be, the attestation then beside the tag writes.

    A reused index (pipeline/reuse.py) already carries the attestation of the release that built
    it. Unsigned, that one says all an unsigned one can: it is kept (no new layer every night). With
    ``sign:`` it is attested again: the one it has may be unsigned, or signed with another key.
    ``early``: the unsigned attestations begun as each built index passed (AttestBesideTags.verified),
    taken for a service released by that very digest."""
    if not config.verify.attest:
        return ()
    key = config.sign.key if config.sign is not None else None
    password = os.environ.get(config.sign.password_env, "") if config.sign is not None else ""

    def attest(s: ServiceOutcome) -> attestation.Attested | None:
        if not (s.ok and s.released_digest and s.verification is not None):
            return None  # only what was verified
        if (begun := (early or {}).get((s.repository, s.released_digest))) is not None and (done := begun.result()):
            return done
        if key is None and s.build.reused_from and _attested(client, s.repository, s.released_digest):
            return None
        return _attach(s.repository, s.released_digest, s.verification, key=key, password=password)

    return _each_service(attest, services)


class AttestBesideTags:
    """`attest_services` begun, in a thread, the moment the release tags are decided (the gate
    passed, none refused), so cosign (~0.1 s) runs beside the tag writes instead of after them
    (issue #20). An attestation says what verification found for that digest; it is true whether or
    not a tag write then fails (the run then fails on the tag, and the attestation stays).

    Unsigned, an index built by this run is attested the moment its verification passed
    (``verified``), while the other services still build: a cold release's cosigns then no longer
    all follow the last build (three at once took 0.23 s after it). That is true of the digest
    whether or not the gate then releases it (another service failed: the attestation stays, of a
    verified image no tag releases). A signed one waits for the gate: only released images are signed."""

    def __init__(self, config: Config, client: RegistryClient) -> None:
        self._config, self._client = config, client
        self._begun: Future[tuple[attestation.Attested, ...]] | None = None
        self._early: dict[tuple[str, str], Future[attestation.Attested | None]] = {}
        self._lock, self._cosigns = threading.Lock(), threading.BoundedSemaphore(MAX_COSIGNS)

    def verified(self, repository: str, verification: Verification, *,
                 stopped: Callable[[], bool] = lambda: False) -> None:
        """``verification`` of REPOSITORY@its index, built by this run, ended: attested now when it
        passed and the attestation is unsigned, unless ``stopped()`` (it waits for the builder check)
        says the builder check stopped the round that built it. Called from the verifying threads;
        at most MAX_COSIGNS at once, one per digest (a round built again may give the same one)."""
        if not (self._config.verify.attest and self._config.sign is None and verification.ok):
            return
        digest = verification.index_digest

        def attach() -> attestation.Attested | None:
            if stopped():  # the gate attests what it releases, if anything
                return None
            with self._cosigns:
                return _attach(repository, digest, verification, key=None, password="")

        with self._lock:
            if (repository, digest) not in self._early:
                self._early[(repository, digest)] = threads.start(attach, name="attest")

    def __call__(self, services: Sequence[ServiceOutcome]) -> None:
        chosen = tuple(services)
        with self._lock:
            early = dict(self._early)
        self._begun = threads.start(lambda: attest_services(self._config, chosen, self._client, early=early),
                                    name="attest")

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
        first, or the gate released none): their error is logged, not raised."""
        begun, self._begun = self._begun, None
        if begun is not None:
            _logged(begun)
        with self._lock:
            early, self._early = tuple(self._early.values()), {}
        for each in early:
            _logged(each)


def _attach(repository: str, digest: str, verification: Verification, *, key: str | None,
            password: str) -> attestation.Attested:
    """``verification`` stored as the attestation of REPOSITORY@DIGEST (signed with ``key``)."""
    return attestation.attach(repository, digest, attestation.predicate(verification), key=key, password=password,
                              insecure=_insecure(repository))


def _insecure(repository: str) -> bool:
    """cosign may speak plain HTTP to it: a registry on this machine's loopback."""
    return is_loopback(parse_reference(repository).registry)


def _logged(begun: Future[Any]) -> None:
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

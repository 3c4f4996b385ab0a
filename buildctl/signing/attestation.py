"""Verification as evidence: a released index's verification result, stored beside it in the
registry as an in-toto attestation, so an admission policy (Kyverno ``verifyImages``
attestations) can require "verified for this architecture" and a later run can read it back.

The predicate (type PREDICATE_TYPE, documented in README "Verification as evidence") holds the
platforms, each platform image's digest, every check with its verdict, and buildctl's version.
With ``sign:`` it is signed by ``cosign attest`` with the release key; without, the statement is
stored as a DSSE envelope without a real signature (``cosign attach attestation``), readable by
``buildctl verify --attestation`` but proof of nothing to anyone who can push to the repository:
admission policies need the signed form. Both live at REPO:sha256-<hex>.att (cosign's tag
scheme, which registries without the OCI referrers API, such as Distribution 2.8, serve).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from buildctl import __version__, jsonsafe
from buildctl.engine.retry import TAG_RETRY, typed, with_retries
from buildctl.errors import CommandError
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.signing import cosign

PREDICATE_TYPE = "https://buildctl.dev/verification/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
IN_TOTO = "application/vnd.in-toto+json"
# cosign attach refuses an envelope with no signature entry; this one says plainly there is none.
UNSIGNED = {"keyid": "buildctl:unsigned", "sig": ""}


@dataclass(frozen=True)
class Attested:
    """What was attached to a released index."""

    subject: str  # REPO@sha256:... of the index
    signed_with: str | None  # the key (path or URI) that signed it; None: stored unsigned


@dataclass(frozen=True)
class ReadBack:
    """An attestation read back from the registry: its predicate, or why there is none to trust."""

    subject: str
    predicate: dict[str, Any] | None
    problem: str | None = None


def predicate(verification: Verification, *, at: datetime | None = None) -> dict[str, Any]:
    """The predicate of ``verification`` (of the index it names)."""
    return {
        "buildctl": {"version": __version__},
        "verifiedAt": (at or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        "verifiedIndex": verification.index_digest,
        "passed": verification.ok,
        "platforms": [p.platform for p in verification.platforms],
        "images": [{"platform": p.platform, "digest": p.digest} for p in verification.platforms],
        "checks": [{"platform": c.platform, "name": c.name, "status": str(c.status), "detail": c.detail}
                   for c in verification.checks],
    }


def attach(repository: str, digest: str, body: dict[str, Any], *, key: str | None, password: str,
           insecure: bool) -> Attested:
    """Store ``body`` as the attestation of REPOSITORY@DIGEST: signed with ``key``, else unsigned.

    A registry fault cosign reports (5xx, 429, a refused or broken connection) is retried as a tag
    write is (engine/retry.py): cosign itself does not retry, and the attestation is written beside
    the release tags, which ride out a registry restart. An attempt that failed after its manifest
    was stored leaves one more identical attestation layer, which readers take as the same."""
    subject = f"{repository}@{digest}"
    registry = repository.split("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="buildctl-attest-") as tmp:
        path = Path(tmp) / "attestation.json"
        if key is not None:
            path.write_text(json.dumps(body), encoding="utf-8")
            store = functools.partial(cosign.attest, subject, predicate=str(path), predicate_type=PREDICATE_TYPE,
                                      key=key, password=password, insecure=insecure)
        else:
            path.write_text(json.dumps(unsigned_envelope(repository, digest, body)), encoding="utf-8")
            store = functools.partial(cosign.attach_attestation, subject, envelope=str(path), insecure=insecure)

        def attempt(number: int) -> None:
            try:
                store()
            except CommandError as exc:
                raise typed(exc, registry=registry) from None

        with_retries(f"attesting {subject}", attempt, policy=TAG_RETRY)
    return Attested(subject, key)


def unsigned_envelope(repository: str, digest: str, body: dict[str, Any]) -> dict[str, Any]:
    algorithm, _, hexdigest = digest.partition(":")
    statement = {"_type": STATEMENT_TYPE, "subject": [{"name": repository, "digest": {algorithm: hexdigest}}],
                 "predicateType": PREDICATE_TYPE, "predicate": body}
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return {"payloadType": IN_TOTO, "payload": payload, "signatures": [UNSIGNED]}


def read_back(repository: str, digest: str, *, public_key: str | None, insecure: bool) -> ReadBack:
    """The newest attestation of ours whose subject is REPOSITORY@DIGEST (with ``public_key``: only
    one its signature verifies). One stored for another image, or of another type, is not it."""
    subject = f"{repository}@{digest}"
    envelopes, problem = cosign.attestations(subject, public_key=public_key, predicate_type=PREDICATE_TYPE,
                                             insecure=insecure)
    if problem is not None:
        return ReadBack(subject, None, problem)
    found = None
    others = 0
    for line in envelopes:
        statement = _statement(line)
        if statement is None or statement.get("predicateType") != PREDICATE_TYPE:
            continue
        if _names(statement, digest) and isinstance(statement.get("predicate"), dict):
            found = statement["predicate"]  # the last one stored is the newest
        else:
            others += 1
    if found is not None:
        return ReadBack(subject, found)
    why = (f"{others} verification attestation(s) stored here name another image" if others
           else f"no {PREDICATE_TYPE} attestation")
    return ReadBack(subject, None, why)


def as_verification(result: ReadBack, *, platforms: tuple[str, ...], exact: bool,
                    public_key: str | None) -> Verification:
    """``result`` as verify's output: the attested checks, then an ``attestation`` check that fails
    when there is none, it did not pass, or it lacks a required platform."""
    digest = result.subject.rpartition("@")[2]
    body = result.predicate
    if body is None:
        return Verification(result.subject, digest, (), (Check("", "attestation", CheckStatus.FAIL, result.problem or ""),))
    try:
        images = tuple(PlatformImage(str(i["platform"]), str(i["digest"])) for i in body["images"])
        checks = tuple(Check(str(c["platform"]), str(c["name"]), CheckStatus(c["status"]), str(c["detail"]))
                       for c in body["checks"])
        version, at = body["buildctl"]["version"], body["verifiedAt"]
    except (KeyError, TypeError, ValueError) as exc:
        why = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        bad = Check("", "attestation", CheckStatus.FAIL, f"not a {PREDICATE_TYPE} predicate ({why})")
        return Verification(result.subject, digest, (), (bad,))
    attested = [p.platform for p in images]
    missing = [p for p in platforms if p not in attested]
    extra = [p for p in attested if p not in platforms] if exact else []
    who = f"signed by {public_key}" if public_key else "signature not checked (no --key)"
    if body.get("passed") is not True or any(c.status is CheckStatus.FAIL for c in checks):
        verdict = Check("", "attestation", CheckStatus.FAIL, f"the attested verification failed ({who})")
    elif missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"extra {', '.join(extra)}"
        verdict = Check("", "attestation", CheckStatus.FAIL, f"attested platforms {', '.join(attested)}: {what}")
    else:
        verdict = Check("", "attestation", CheckStatus.PASS, f"verified by buildctl {version} at {at}, {who}")
    return Verification(result.subject, digest, images, (*checks, verdict))


def _statement(line: str) -> dict[str, Any] | None:
    try:
        envelope = jsonsafe.loads(line)
        if envelope.get("payloadType") != IN_TOTO:
            return None
        statement = jsonsafe.loads(base64.b64decode(envelope["payload"], validate=True))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None
    return statement if isinstance(statement, dict) else None


def _names(statement: dict[str, Any], digest: str) -> bool:
    algorithm, _, hexdigest = digest.partition(":")
    subjects = statement.get("subject")
    return isinstance(subjects, list) and any(
        isinstance(s, dict) and isinstance(s.get("digest"), dict) and s["digest"].get(algorithm) == hexdigest
        for s in subjects)

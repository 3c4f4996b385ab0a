"""The verification predicate and how a read-back attestation becomes verify's answer (pure)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from buildctl import __version__
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.signing.attestation import (
    PREDICATE_TYPE,
    ReadBack,
    _names,
    _statement,
    as_verification,
    predicate,
    unsigned_envelope,
)

D1, D2, INDEX = "sha256:" + "1" * 64, "sha256:" + "2" * 64, "sha256:" + "9" * 64
REPO = "r.io/team/api"
VERIFIED = Verification(f"{REPO}@{INDEX}", INDEX, (PlatformImage("linux/amd64", D1), PlatformImage("linux/arm64", D2)),
                        (Check("", "platforms", CheckStatus.PASS, "linux/amd64, linux/arm64"),
                         Check("linux/arm64", "page-size", CheckStatus.WARN, "1 file aligned to 4 KiB")))
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_the_predicate_names_platforms_images_checks_and_version() -> None:
    body = predicate(VERIFIED, at=AT)
    assert body == {
        "buildctl": {"version": __version__}, "verifiedAt": "2026-01-02T03:04:05+00:00", "verifiedIndex": INDEX,
        "passed": True, "platforms": ["linux/amd64", "linux/arm64"],
        "images": [{"platform": "linux/amd64", "digest": D1}, {"platform": "linux/arm64", "digest": D2}],
        "checks": [{"platform": "", "name": "platforms", "status": "pass", "detail": "linux/amd64, linux/arm64"},
                   {"platform": "linux/arm64", "name": "page-size", "status": "warn",
                    "detail": "1 file aligned to 4 KiB"}]}


def test_the_unsigned_envelope_is_an_in_toto_statement_about_the_index() -> None:
    envelope = unsigned_envelope(REPO, INDEX, {"passed": True})
    statement = _statement(json.dumps(envelope))
    assert statement == {"_type": "https://in-toto.io/Statement/v1", "predicateType": PREDICATE_TYPE,
                         "subject": [{"name": REPO, "digest": {"sha256": "9" * 64}}], "predicate": {"passed": True}}
    assert _names(statement, INDEX) and not _names(statement, D1)
    assert _statement("{\"payloadType\": \"application/vnd.in-toto+json\", \"payload\": \"%%%\"}") is None
    assert _statement(json.dumps({"payloadType": "text/plain", "payload": base64.b64encode(b"{}").decode()})) is None


def test_read_back_becomes_checks_and_a_verdict() -> None:
    body = predicate(VERIFIED, at=AT)
    ok = as_verification(ReadBack(f"{REPO}@{INDEX}", body), platforms=("linux/amd64", "linux/arm64"), exact=True,
                         public_key="k.pub")
    assert ok.ok and ok.platforms == VERIFIED.platforms and ok.checks[:2] == VERIFIED.checks
    assert ok.checks[-1] == Check("", "attestation", CheckStatus.PASS,
                                  f"verified by buildctl {__version__} at 2026-01-02T03:04:05+00:00, signed by k.pub")
    fewer = as_verification(ReadBack(f"{REPO}@{INDEX}", body), platforms=("linux/amd64",), exact=True, public_key=None)
    assert not fewer.ok and fewer.checks[-1].detail == "attested platforms linux/amd64, linux/arm64: extra linux/arm64"
    failed = as_verification(ReadBack(f"{REPO}@{INDEX}", dict(body, passed=False)), platforms=("linux/amd64",),
                             exact=False, public_key=None)
    assert not failed.ok and "the attested verification failed" in failed.checks[-1].detail
    broken = as_verification(ReadBack(f"{REPO}@{INDEX}", {"passed": True}), platforms=(), exact=False, public_key=None)
    assert not broken.ok and broken.checks[-1].detail == f"not a {PREDICATE_TYPE} predicate (no 'images')"
    bad_status = dict(body, checks=[{"platform": "", "name": "x", "status": "passed", "detail": ""}])
    assert not as_verification(ReadBack(f"{REPO}@{INDEX}", bad_status), platforms=(), exact=False,
                               public_key=None).ok
    none = as_verification(ReadBack(f"{REPO}@{INDEX}", None, "found no attestations"), platforms=(), exact=True,
                           public_key=None)
    assert not none.ok and none.checks == (Check("", "attestation", CheckStatus.FAIL, "found no attestations"),)

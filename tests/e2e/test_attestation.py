"""Verification as evidence (signing/attestation.py) on the real stack: a release attaches its
verification to the released index as an in-toto attestation at REPO:sha256-<hex>.att (signed
with the release key when sign: is on), `buildctl verify --attestation` reads it back, and a
missing, copied, failed or wrongly signed one fails."""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from buildctl.signing.attestation import PREDICATE_TYPE, unsigned_envelope
from tests.helpers.cli import BASE_IMAGE, PROJECT, REGISTRY, run_cli
from tests.helpers.crafted_images import OCI_MANIFEST, image_manifest, push_blob, push_manifest, sha
from tests.helpers.project import GOOD, PINNED, index_digest, make_project, record_of
from tests.helpers.tools import cosign_key_pairs, need

pytestmark = pytest.mark.engine
COSIGN = ("--allow-http-registry", "--allow-insecure-registry")


def _crafted(name: str) -> tuple[str, str]:
    """(repository, digest) of a fresh one-platform image that nobody attested."""
    repository = f"buildctl-test-attest/{name}-{uuid.uuid4().hex[:8]}"
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "n": repository,
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    push_blob(REGISTRY, repository, config)
    raw = push_manifest(REGISTRY, repository, "1", image_manifest(config, []), OCI_MANIFEST)
    return f"{REGISTRY}/{repository}", sha(raw)


def _attach(envelope: dict, image: str, tmp_path: Path) -> None:
    path = tmp_path / f"envelope-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(envelope))
    subprocess.run(["cosign", "attach", "attestation", *COSIGN, "--attestation", str(path), image], check=True,
                   capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def _envelopes(image: str) -> list[dict]:
    out = subprocess.run(["cosign", "download", "attestation", *COSIGN, image], check=True, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=120).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _release(tmp_path: Path, name: str, *, sign: str = "", env: dict | None = None) -> tuple[Path, str, dict]:
    """A release that builds (--rebuild: an earlier run's index of the same inputs is not reused)."""
    root = tmp_path / name
    root.mkdir()
    make_project(root, {name: GOOD})
    (root / "services.yaml").write_text(sign + (root / "services.yaml").read_text())
    tag = f"att-{uuid.uuid4().hex[:8]}"
    built = run_cli("build", "--rebuild", "--tag", tag, "--record", "r.json", "-q", cwd=root, env=env)
    assert built.code == 0, built.output
    for secret in (env or {}).values():  # the key's password reaches cosign in its environment only
        assert secret not in built.output and secret not in (root / "r.json").read_text()
    return root, f"{REGISTRY}/buildctl-e2e/{name}:{tag}", record_of(root / "r.json")


def test_an_unsigned_release_is_attested_and_read_back(tmp_path: Path) -> None:
    need("cosign")
    root, ref, record = _release(tmp_path, "att-plain")
    digest = record["services"][0]["index_digest"]
    repository = ref.rpartition(":")[0]
    tags = httpx.get(f"http://{REGISTRY}/v2/buildctl-e2e/att-plain/tags/list", timeout=10).json()["tags"]
    assert digest.replace(":", "-") + ".att" in tags

    [envelope] = _envelopes(f"{repository}@{digest}")
    assert envelope["signatures"] == [{"keyid": "buildctl:unsigned", "sig": ""}]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [{"name": repository, "digest": {"sha256": digest.removeprefix("sha256:")}}]
    predicate = statement["predicate"]
    assert predicate["passed"] is True and predicate["platforms"] == ["linux/amd64", "linux/arm64"]
    assert predicate["buildctl"]["version"] and predicate["verifiedIndex"] == digest
    names = {(c["platform"], c["name"], c["status"]) for c in predicate["checks"]}
    assert {("linux/arm64", "elf-files", "pass"), ("linux/amd64", "elf", "pass"), ("", "platforms", "pass")} <= names

    read = run_cli("verify", "--attestation", ref, cwd=root)
    assert read.code == 0, read.output
    assert "attestation verified by buildctl" in read.stdout and "signature not checked (no --key)" in read.stdout
    as_json = run_cli("verify", "--attestation", "--json", ref, cwd=root)
    assert as_json.code == 0, as_json.output
    assert "elf-files" in as_json.stdout and digest in as_json.stdout
    more = run_cli("verify", "--attestation", "--platform", "linux/s390x", "--platform", "linux/amd64",
                   "--allow-extra-platforms", ref, cwd=root)
    assert more.code == 1 and "attested platforms linux/amd64, linux/arm64: missing linux/s390x" in more.stdout

    # An image nobody attested, and one carrying a copy of another image's attestation, fail.
    missing = run_cli("verify", "--attestation", BASE_IMAGE, cwd=PROJECT)
    assert missing.code == 1 and "attestation found no attestations" in missing.stdout, missing.output
    image, other = _crafted("copied")
    _attach(envelope, f"{image}@{other}", tmp_path)
    copied = run_cli("verify", "--attestation", "--platform", "linux/amd64", f"{image}:1", cwd=PROJECT)
    assert copied.code == 1, copied.output
    assert "1 verification attestation(s) stored here name another image" in copied.stdout

    # One that says the verification failed, for this very image, fails too.
    failed = dict(predicate, passed=False, images=[{"platform": "linux/amd64", "digest": other}], checks=[
        {"platform": "linux/amd64", "name": "elf-files", "status": "fail", "detail": "x86-64 on arm64"}])
    _attach(unsigned_envelope(image, other, failed), f"{image}@{other}", tmp_path)
    refused = run_cli("verify", "--attestation", "--platform", "linux/amd64", f"{image}:1", cwd=PROJECT)
    assert refused.code == 1 and "the attested verification failed" in refused.stdout, refused.output


def test_a_signed_release_attestation_verifies_with_its_key_only(tmp_path: Path) -> None:
    need("cosign")
    keys, other = cosign_key_pairs(tmp_path, "keys", "other")
    variable = f"ATT_PW_{uuid.uuid4().hex[:8].upper()}"
    root, ref, record = _release(tmp_path, "att-signed", env={variable: "pw-keys"},
                                 sign=f"sign: {{key: {keys / 'cosign.key'}, password_env: {variable}}}\n")
    digest = record["services"][0]["index_digest"]
    [envelope] = _envelopes(f"{ref.rpartition(':')[0]}@{digest}")
    assert envelope["signatures"][0]["sig"]  # signed by cosign attest

    good = run_cli("verify", "--attestation", "--key", str(keys / "cosign.pub"), ref, cwd=root)
    assert good.code == 0, good.output
    assert "attestation verified by buildctl" in good.stdout and f"signed by {keys / 'cosign.pub'}" in good.stdout
    assert "pw-keys" not in good.output
    bad = run_cli("verify", "--attestation", "--key", str(other / "cosign.pub"), ref, cwd=root)
    assert bad.code == 1, bad.output
    assert "attestation no matching attestations" in bad.stdout and "verified by buildctl" not in bad.stdout

    # Tampered: the signed envelope, its statement edited (a platform added, the subject re-aimed at an
    # image nobody attested): the signature no longer matches, so with the key nothing verifies;
    # without a key, buildctl can only read what is stored (README: unsigned is not proof).
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["platforms"] = [*statement["predicate"]["platforms"], "linux/s390x"]
    image, crafted = _crafted("forged")
    statement["subject"] = [{"name": image, "digest": {"sha256": crafted.removeprefix("sha256:")}}]
    forged = dict(envelope, payload=base64.b64encode(json.dumps(statement).encode()).decode())
    _attach(forged, f"{image}@{crafted}", tmp_path)
    keyed = run_cli("verify", "--attestation", "--allow-extra-platforms", "--platform", "linux/amd64",
                    "--key", str(keys / "cosign.pub"), f"{image}:1", cwd=PROJECT)
    assert keyed.code == 1, keyed.output
    assert "attestation no matching attestations" in keyed.stdout and "verified by buildctl" not in keyed.stdout
    unkeyed = run_cli("verify", "--attestation", "--allow-extra-platforms", "--platform", "linux/amd64",
                      f"{image}:1", cwd=PROJECT)
    assert unkeyed.code == 0 and "signature not checked" in unkeyed.stdout, unkeyed.output


def test_verify_attest_false_attaches_nothing(tmp_path: Path) -> None:
    root, ref, record = _release(tmp_path, "att-off", sign="verify: {attest: false}\n")
    digest = record["services"][0]["index_digest"]
    tags = httpx.get(f"http://{REGISTRY}/v2/buildctl-e2e/att-off/tags/list", timeout=10).json()["tags"]
    assert ref.rpartition(":")[2] in tags and digest.replace(":", "-") + ".att" not in tags


def test_a_reused_index_is_attested_again_with_this_releases_key(tmp_path: Path) -> None:
    """A reused index (pipeline/reuse.py) carries the attestation of the release that built it —
    unsigned here; this release signs, so its own signed attestation must be there too."""
    need("cosign")
    keys = cosign_key_pairs(tmp_path, "keys")[0]
    name = f"att-reuse-{uuid.uuid4().hex[:6]}"  # a repository no earlier run released into
    root, _, first = _release(tmp_path, name)
    variable = f"ATT_PW_{uuid.uuid4().hex[:8].upper()}"
    (root / "services.yaml").write_text(f"sign: {{key: {keys / 'cosign.key'}, password_env: {variable}}}\n"
                                        + (root / "services.yaml").read_text())
    tag = f"att-{uuid.uuid4().hex[:8]}"
    again = run_cli("build", "--tag", tag, "--record", "r2.json", "-q", cwd=root, env={variable: "pw-keys"})
    assert again.code == 0, again.output
    second = record_of(root / "r2.json")
    assert second["services"][0]["outcome"].startswith("reused"), second["services"][0]
    assert second["services"][0]["index_digest"] == first["services"][0]["index_digest"]
    signed = run_cli("verify", "--attestation", "--key", str(keys / "cosign.pub"),
                     f"{REGISTRY}/buildctl-e2e/{name}:{tag}", cwd=root)
    assert signed.code == 0, signed.output
    assert f"signed by {keys / 'cosign.pub'}" in signed.stdout


def test_a_built_index_is_attested_once_verified_and_a_refused_release_keeps_only_true_ones(tmp_path: Path) -> None:
    """Unsigned, a built index is attested as soon as its verification passed, before the gate
    (pipeline/sign_step.AttestBesideTags.verified): one service passes, another fails its
    verification, the gate refuses the release. The one that passed carries exactly one
    attestation, which says it passed; the one that failed carries none; no release tag exists."""
    need("cosign")
    root = tmp_path / "refused"
    root.mkdir()
    ok, pinned = f"att-ok-{uuid.uuid4().hex[:6]}", f"att-pinned-{uuid.uuid4().hex[:6]}"
    make_project(root, {ok: GOOD, pinned: PINNED})
    tag = f"att-{uuid.uuid4().hex[:8]}"
    refused = run_cli("build", "--rebuild", "--tag", tag, "--record", "r.json", "-q", cwd=root)
    assert refused.code == 1, refused.output
    services = {s["name"]: s for s in record_of(root / "r.json")["services"]}
    for name in (ok, pinned):
        assert index_digest(f"buildctl-e2e/{name}", tag) is None  # the gate released nothing
    [envelope] = _envelopes(f"{REGISTRY}/buildctl-e2e/{ok}@{services[ok]['index_digest']}")
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["predicate"]["passed"] is True
    assert statement["predicate"]["verifiedIndex"] == services[ok]["index_digest"]
    tags = httpx.get(f"http://{REGISTRY}/v2/buildctl-e2e/{pinned}/tags/list", timeout=10).json()["tags"] or []
    assert services[pinned]["index_digest"].replace(":", "-") + ".att" not in tags

"""Running cosign: the only module that does. Signs and verifies index digests with a key pair.

Its own package beside engine/ and registry/ rather than inside them: engine/ is the Docker
engine (python-on-whales) and registry/ speaks the Distribution API over httpx, while cosign is
a separate tool with its own key material and failure modes — the way git.py and kustomize.py
are the only modules running git and kustomize. The key's password reaches cosign in its
environment only (COSIGN_PASSWORD), never argv, logs or errors; the transparency log is never
used (an offline registry has no Rekor to reach), so the signature lives in the registry only,
at REPO:sha256-<hex>.sig. Attestations (signing/attestation.py) live beside it, at
REPO:sha256-<hex>.att (cosign's tag scheme: it works on registries without the referrers API).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from buildctl.errors import CommandError, OperationError
from buildctl.programs import ProgramError, ProgramResult, run_program

COSIGN_TIMEOUT_SECONDS = 120
# Plain-HTTP registries (a loopback one): cosign refuses them unless told.
_INSECURE = ("--allow-insecure-registry", "--allow-http-registry")


@dataclass(frozen=True)
class SignatureCheck:
    ok: bool
    detail: str


def available() -> str | None:
    return shutil.which("cosign")


def signature_tag(digest: str) -> str:
    """Where cosign stores the signatures of ``digest`` (sha256:HEX -> sha256-HEX.sig)."""
    return digest.replace(":", "-") + ".sig"


def sign(reference: str, *, key: str, password: str, insecure: bool) -> None:
    """Sign ``reference`` (REPO@sha256:...) with ``key``; CommandError when cosign fails."""
    argv = ["sign", "--key", key, "--tlog-upload=false", "--yes", *(_INSECURE if insecure else ()), reference]
    proc = _run(argv, password=password, what=f"signing {reference}")
    if proc.returncode != 0:
        raise CommandError(f"cosign could not sign {reference}", command=["cosign", *argv],
                           returncode=proc.returncode, output=_scrub(proc.stdout + proc.stderr, password),
                           hint="check sign.key and its password variable, and that the registry accepts pushes")


def verify(reference: str, *, public_key: str, insecure: bool) -> SignatureCheck:
    """``cosign verify --key PUB`` (transparency log not consulted: signatures were made offline)."""
    argv = ["verify", "--key", public_key, "--insecure-ignore-tlog=true", "--output", "json",
            *(_INSECURE if insecure else ()), reference]  # fmt: skip
    proc = _run(argv, password=None, what=f"verifying the signature of {reference}")
    if proc.returncode == 0:
        return SignatureCheck(True, f"signed by {public_key}")
    errors = [line.removeprefix("Error: ") for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    return SignatureCheck(False, f"{errors[0] if errors else 'cosign verify failed'} (key {public_key})")


def attest(reference: str, *, predicate: str, predicate_type: str, key: str, password: str,
           insecure: bool) -> None:
    """``cosign attest``: sign the in-toto statement of ``predicate`` (a file) about ``reference``."""
    argv = ["attest", "--key", key, "--predicate", predicate, "--type", predicate_type, "--tlog-upload=false",
            "--yes", *(_INSECURE if insecure else ()), reference]  # fmt: skip
    _must(argv, password=password, what=f"attesting {reference}",
          hint="check sign.key and its password variable, and that the registry accepts pushes")


def attach_attestation(reference: str, *, envelope: str, insecure: bool) -> None:
    """``cosign attach attestation``: store a DSSE envelope (a file) as it is, unsigned by cosign."""
    argv = ["attach", "attestation", "--attestation", envelope, *(_INSECURE if insecure else ()), reference]
    _must(argv, password=None, what=f"attaching the attestation of {reference}",
          hint="check that the registry accepts pushes to this repository")


def attestations(reference: str, *, public_key: str | None, predicate_type: str,
                 insecure: bool) -> tuple[list[str], str | None]:
    """(DSSE envelopes as JSON lines, None), or ([], why not). With ``public_key`` only those whose
    signature it verifies (``cosign verify-attestation``), else every one stored (``download``)."""
    if public_key is None:
        argv = ["download", "attestation", *(_INSECURE if insecure else ()), reference]
    else:
        argv = ["verify-attestation", "--key", public_key, "--type", predicate_type, "--insecure-ignore-tlog=true",
                *(_INSECURE if insecure else ()), reference]  # fmt: skip
    proc = _run(argv, password=None, what=f"reading the attestations of {reference}")
    if proc.returncode == 0:
        return [line for line in proc.stdout.splitlines() if line.strip().startswith("{")], None
    errors = [line.removeprefix("Error: ") for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    return [], errors[0] if errors else f"cosign {argv[0]} failed"


def _must(argv: list[str], *, password: str | None, what: str, hint: str) -> None:
    proc = _run(argv, password=password, what=what)
    if proc.returncode != 0:
        raise CommandError(f"cosign failed {what}", command=["cosign", *argv], returncode=proc.returncode,
                           output=_scrub(proc.stdout + proc.stderr, password or ""), hint=hint)


def _run(argv: list[str], *, password: str | None, what: str) -> ProgramResult:
    exe = available()
    if exe is None:
        raise OperationError(f"{what}: cosign is not installed",
                             hint="scripts/stack.sh up installs Debian's cosign; or install it from your distribution")
    env = dict(os.environ)
    if password is not None:
        env["COSIGN_PASSWORD"] = password  # in the child's environment only, never its argv
    env.pop("COSIGN_EXPERIMENTAL", None)
    try:
        return run_program([exe, *argv], what=what, timeout=COSIGN_TIMEOUT_SECONDS, env=env)
    except ProgramError as exc:
        raise OperationError(_scrub(exc.message, password or "")) from None


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text

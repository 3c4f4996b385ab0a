"""Build secrets in a real build (issue #23): `secrets:` in services.yaml reaches a BuildKit
`RUN --mount=type=secret` step (it proves so by writing the secret's SHA-256 into the image), and
the secret itself is in no layer, no config, no provenance attestation, not in the record, the
build log, the output, nor the argv of any process during the run."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import uuid
from pathlib import Path

import httpx
import pytest
import zstandard

from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli
from tests.helpers.gitops import CmdlineWatcher

pytestmark = pytest.mark.engine

ACCEPT = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])

DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
# BuildKit leaves secrets out of cache keys: a fresh nonce makes this run's RUN step really run.
COPY nonce /nonce
RUN --mount=type=secret,id=npmrc,required=true \\
    python3 -c "import hashlib; print(hashlib.sha256(open('/run/secrets/npmrc','rb').read()).hexdigest())" > /secret.sha256
COPY app.py /app/app.py
ENTRYPOINT ["python3", "/app/app.py"]
"""


def _forms(secret: str) -> set[str]:
    return {secret, base64.b64encode(secret.encode()).decode()}


def _blob(repository: str, digest: str) -> bytes:
    response = httpx.get(f"http://{REGISTRY}/v2/{repository}/blobs/{digest}", timeout=60)
    response.raise_for_status()
    data = response.content
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _everything_pushed(repository: str, reference: str) -> dict[str, bytes]:
    """Every manifest, config and (decompressed) layer reachable from ``reference``, by digest."""
    seen: dict[str, bytes] = {}
    pending = [reference]
    while pending:
        ref = pending.pop()
        response = httpx.get(f"http://{REGISTRY}/v2/{repository}/manifests/{ref}", headers={"Accept": ACCEPT},
                             timeout=60)
        response.raise_for_status()
        seen[response.headers["Docker-Content-Digest"]] = response.content
        manifest = response.json()
        pending += [m["digest"] for m in manifest.get("manifests", ())]
        for descriptor in [manifest.get("config"), *manifest.get("layers", ())]:
            if descriptor and descriptor["digest"] not in seen:
                seen[descriptor["digest"]] = _blob(repository, descriptor["digest"])
    return seen


def _platforms_holding(pushed: dict[str, bytes], needle: bytes) -> set[str]:
    """The architectures of the image manifests one of whose layers contains ``needle``."""
    found: set[str] = set()
    for data in pushed.values():
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError):
            continue
        for entry in document.get("manifests", ()) if isinstance(document, dict) else ():
            architecture = entry.get("platform", {}).get("architecture")
            manifest = json.loads(pushed[entry["digest"]])
            if any(needle in pushed[layer["digest"]] for layer in manifest.get("layers", ())):
                found.add(architecture)
    return found


def test_a_build_secret_is_used_and_left_nowhere(tmp_path: Path) -> None:
    secret = "npm-" + secrets.token_urlsafe(24)
    project, name = tmp_path / "project", f"sec{uuid.uuid4().hex[:6]}"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(DOCKERFILE)
    (project / "app" / "app.py").write_text("print('ok')\n")
    (project / "app" / "nonce").write_text(uuid.uuid4().hex)
    repository = f"buildctl-secrets/{name}"
    (project / "services.yaml").write_text(
        "services:\n  app:\n    context: app\n"
        f"    image: {repository}\n    build_args: {{BASE_IMAGE: {BASE_IMAGE}}}\n"
        "    secrets: [{id: npmrc, env: NPM_RC}]\n")
    tag = f"s-{uuid.uuid4().hex[:8]}"
    with CmdlineWatcher() as ps:
        result = run_cli("--debug", "build", "--tag", tag, "--record", "rec.json", cwd=project,
                         env={"NPM_RC": secret})
    assert result.code == 0, result.output

    pushed = _everything_pushed(repository, tag)
    # The RUN step really read the secret: its hash is in a layer of every platform's image. The
    # two platforms' layers may be byte-identical (same file, same timestamps), hence one digest:
    # count the platform manifests whose layers hold it, not distinct blobs.
    digest_line = hashlib.sha256(secret.encode()).hexdigest().encode()
    assert _platforms_holding(pushed, digest_line) == {"amd64", "arm64"}
    # Provenance attestations are among what was searched (BuildKit's default: mode=min).
    assert any(b"https://slsa.dev/provenance" in data for data in pushed.values())

    files = {str(p): p.read_bytes() for p in (project / ".buildctl").rglob("*") if p.is_file()}
    assert any(path.endswith(".build.log") for path in files)  # the build logs are among what was searched
    haystacks = {"output": result.output.encode(), "argv": "\n".join(ps.seen).encode(),
                 "record": (project / "rec.json").read_bytes(), **files, **pushed}
    leaks = [(where, form[:6] + "…") for where, text in haystacks.items() for form in _forms(secret)
             if form.encode() in text]
    assert leaks == []
    # The search is not vacuous: the output and argv are buildctl's and buildx's.
    assert "buildx" in "\n".join(ps.seen) and tag in result.output
    assert json.loads((project / "rec.json").read_text())["services"][0]["tagged"] is True

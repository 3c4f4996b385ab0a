"""`--metadata-file FILE`: the released images in the shape `docker buildx bake --metadata-file`
writes, so a pipeline step written for buildx reads buildctl's the same way:

    {"vote": {"containerimage.digest": "sha256:...", "image.name": "REG/voting-app/vote:1.4.0", ...}}

One entry per service that was released (tagged): the digest is the one its release tag resolves
to, ``image.name`` the release reference (the staging tag buildx pushed is gone by then). The other
keys of buildx's own per-service metadata (``containerimage.descriptor``, ``buildx.build.ref``)
are kept when they describe that same digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from buildctl import jsonsafe
from buildctl.pipeline import record
from buildctl.pipeline.plan import metadata_path

DIGEST = "containerimage.digest"
NAME = "image.name"


def released_metadata(release: Mapping[str, Any], buildx: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``release``: a release record (pipeline/record.py); ``buildx``: service -> what buildx wrote
    to that service's metadata file (missing or unreadable: {})."""
    out: dict[str, Any] = {}
    for service in release.get("services", ()):
        if not service.get("tagged") or not service.get("index_digest"):
            continue
        own = dict(buildx.get(service["name"], {}))
        kept = own if own.get(DIGEST) == service["index_digest"] else {}
        out[service["name"]] = {**kept, DIGEST: service["index_digest"],
                                NAME: f"{service['repository']}:{service['tag']}"}
    return out


def write_metadata(path: Path, release: Mapping[str, Any], *, run_dir: Path) -> Path:
    """Write the metadata of ``release`` (its run's buildx files are in ``run_dir``) to ``path``."""
    buildx = {s["name"]: _read(metadata_path(run_dir, s["name"])) for s in release.get("services", ())}
    return record.write_record(path, released_metadata(release, buildx))


def _read(path: Path) -> Mapping[str, Any]:
    try:
        data = jsonsafe.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

"""The release record: one JSON file per run, always written, the audit trail of a release.

Per service: index digest, per-platform digests, every check and its result, timings; plus the
Git commit when the GitOps step ran. Holds no secret: only references, digests and results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from buildctl import __version__
from buildctl.gitops.results import GitOpsResult


def to_data(obj: Any) -> Any:
    """Dataclasses, mappings, paths and tuples as plain JSON data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "config"}
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def release_record(outcome, *, gitops: GitOpsResult | None = None, gate: str | None = None) -> dict[str, Any]:
    services = []
    for s in outcome.services:
        v = s.verification
        services.append({
            "name": s.service,
            "repository": s.repository,
            "tag": outcome.tag,
            "staging_tag": s.build.staging_tag,
            "index_digest": s.build.index_digest,
            "platforms": {p.platform: p.digest for p in v.platforms} if v else {},
            "checks": [to_data(c) for c in v.checks] if v else [],
            "built": s.build.ok,
            "verified": bool(v and v.ok),
            "tagged": s.tagged,
            "staging_tag_cleanup": s.staging,
            "build_seconds": round(s.build.seconds, 3),
            "build_log": s.build.log_file,
            "error": s.build.error,
        })
    return {
        "tool": {"buildctl": __version__, "docker_client": outcome.engine.client_version,
                 "docker_server": outcome.engine.server_version},
        "run_id": outcome.run_id,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "registry": outcome.registry,
        "tag": outcome.tag,
        "gate": gate or ("passed" if outcome.passed else "failed"),
        "timings": outcome.timings,
        "binfmt": to_data(outcome.binfmt),
        "builder": to_data(outcome.builder),
        "services": services,
        "gitops": to_data(gitops) if gitops else None,
    }


def write_record(path: Path, record: Mapping[str, Any]) -> Path:
    """Write atomically, so a crash never leaves half a record for a pipeline to publish."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".record-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path

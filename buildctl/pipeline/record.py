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
from buildctl.errors import ConfigError
from buildctl.gitops.results import GitOpsResult
from buildctl.model import ReleasedImage
from buildctl.references import DIGEST_RE, is_valid_tag, parse_reference
from buildctl.pipeline.results import ReleaseOutcome


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


def release_record(outcome: ReleaseOutcome, *, gitops: GitOpsResult | None = None) -> dict[str, Any]:
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
            "staging_tag_cleanup": s.staging and str(s.staging),
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
        "gate": "passed" if outcome.passed else "failed",
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


def load_releases(path: Path) -> tuple[ReleasedImage, ...]:
    """The verified images of a release record (``buildctl build --record PATH``)."""
    shown = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("release record not found", file=shown) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=shown, line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the release record: {exc}", file=shown) from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list) or not services:
        raise ConfigError("not a release record: expected an object with a non-empty `services` list", file=shown)
    return tuple(_released(entry, i, shown) for i, entry in enumerate(services))


def _released(entry: Any, i: int, file: str) -> ReleasedImage:
    key = f"services[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError("expected an object", file=file, key=key)
    for field in ("name", "repository", "tag", "index_digest"):
        if not isinstance(entry.get(field), str) or not entry[field]:
            raise ConfigError(f"missing or empty `{field}`", file=file, key=key)
    name = entry["name"]
    if entry.get("verified") is not True:
        raise ConfigError(
            f"service {name} is not verified (verified: {json.dumps(entry.get('verified'))}); "
            "refusing to deploy an image that did not pass verification",
            file=file, key=key,
        )  # fmt: skip
    if entry.get("tagged") is False:  # the gate failed: the release tag was never pushed
        raise ConfigError(f"service {name} was not tagged (the release gate failed)", file=file, key=key)
    try:
        ref = parse_reference(entry["repository"])
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, key=f"{key}.repository") from None
    if ref.tag or ref.digest:
        raise ConfigError("`repository` must not carry a tag or digest", file=file, key=f"{key}.repository")
    if not is_valid_tag(entry["tag"]):
        raise ConfigError(f"invalid tag {entry['tag']!r}", file=file, key=f"{key}.tag")
    if not DIGEST_RE.match(entry["index_digest"]):
        raise ConfigError("`index_digest` must be sha256:<64 hex>", file=file, key=f"{key}.index_digest")
    return ReleasedImage(name, entry["repository"], entry["tag"], entry["index_digest"])

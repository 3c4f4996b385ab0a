"""The release record: one JSON file per run, always written, the audit trail of a release.

Per service: index digest, per-platform digests, every check and its result, timings, what the
tag step did (``release``: tagged, already released identical, re-tagged, refused); the
signatures; plus the Git commit (and the references kept because they are newer) when the
GitOps step ran. Holds no secret: only references, digests and results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildctl import __version__, jsonsafe
from buildctl.config import source_text
from buildctl.errors import ConfigError
from buildctl.model import ReleasedImage
from buildctl.references import DIGEST_RE, is_valid_tag, parse_reference

if TYPE_CHECKING:  # annotations only: `update-manifests` reads a record without the release's types (~50 ms)
    from buildctl.gitops.results import GitOpsResult
    from buildctl.pipeline.results import ReleaseOutcome, Signature


# A record is about 2 KiB per service; 16 MiB is thousands of services, and bounds what is read.
MAX_RECORD_BYTES = 16 * 2**20


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


def release_record(outcome: ReleaseOutcome, *, gitops: GitOpsResult | None = None,
                   signatures: Sequence[Signature] = ()) -> dict[str, Any]:
    services = []
    for s in outcome.services:
        v = s.verification
        services.append({
            "name": s.service,
            "repository": s.repository,
            "tag": outcome.tag,
            "staging_tag": s.build.staging_tag,
            # What the tag resolves to (and the manifests pin): the existing index when identical.
            "index_digest": s.released_digest,
            "built_index_digest": s.build.index_digest,
            "platforms": {p.platform: p.digest for p in v.platforms} if v else {},
            # Which builder node built each platform (builder_spec.platform_nodes: buildx's choice).
            "nodes": {p.platform: outcome.builder.node_of(p.platform) for p in v.platforms} if v else {},
            "checks": [to_data(c) for c in v.checks] if v else [],
            "built": s.build.ok,  # an image is there (built now, or reused: see "outcome")
            "outcome": s.build.outcome,  # built | reused (inputs sha256:..., from TAG) | failed
            "inputs": s.build.inputs,  # the input digest (pipeline/reuse.py); null: could not be known
            "reused_from": s.build.reused_from,
            "why_built": s.build.why_built or None,
            "bases_moved": list(s.build.bases_moved),
            "verified": bool(v and v.ok),
            "tagged": s.tagged,
            "release": s.tag_status and str(s.tag_status),
            "previous_index_digest": s.previous_digest,
            "tag_error": s.tag_error,
            "tag_left": s.tag_left and str(s.tag_left),
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
        "refused": outcome.refusal,
        "tag_failure": outcome.tag_failure and f"{outcome.tag_failure.message} ({outcome.tag_failure.hint})",
        "timings": outcome.timings,
        "prefetch": to_data(outcome.prefetch) if outcome.prefetch else None,
        "binfmt": to_data(outcome.binfmt),
        "builder": to_data(outcome.builder),
        "services": services,
        "signatures": [to_data(sig) for sig in signatures],
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
        data = jsonsafe.loads(jsonsafe.read_file(path, max_bytes=MAX_RECORD_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError("release record not found", file=shown) from None
    except jsonsafe.NotARegularFile as exc:  # a FIFO would block, /dev/zero fill the memory
        what = "a folder" if stat.S_ISDIR(exc.mode) else source_text.kind_of(exc.mode)
        raise ConfigError(f"the release record must be a regular file, not {what}", file=shown) from None
    except jsonsafe.FileTooLarge:
        raise ConfigError(f"larger than {MAX_RECORD_BYTES // 2**20} MiB: not a release record (those are a few KiB)",
                          file=shown) from None
    except jsonsafe.JSONOutOfBounds as exc:
        raise ConfigError(exc.msg, file=shown, line=exc.lineno) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON: {exc.msg}", file=shown, line=exc.lineno) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path; UnicodeDecodeError
        why = source_text.strerror(exc) if isinstance(exc, OSError) else exc
        raise ConfigError(f"cannot read the release record: {why}", file=shown) from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, list) or not services:
        raise ConfigError("not a release record: expected an object with a non-empty `services` list", file=shown)
    released = tuple(_released(entry, i, shown) for i, entry in enumerate(services))
    first: dict[str, int] = {}
    for i, image in enumerate(released):
        if image.service in first:  # which one would deploy? Neither: the record is not one release
            j = first[image.service]
            tags = f" with tag {released[j].tag!r} and {image.tag!r}" if released[j].tag != image.tag else ""
            raise ConfigError(f"service {image.service} is listed twice (services[{j}] and services[{i}]){tags}",
                              file=shown, key=f"services[{i}].name")
        first[image.service] = i
    return released


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

"""The file a native agent writes (`buildctl build --platform P --by-digest FILE`) and the final
agent reads (`buildctl run --from FILE ...`): per service, what was pushed by digest for one
platform, what decided that image, and its verdict.

Frozen data, written as JSON and read back bounded (jsonsafe): the file comes from another CI
job, so it is outside input — every field is checked for its type, and any fault is one line
naming the file. Whether several files belong together is pipeline/belongs.py's question.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from buildctl import jsonsafe
from buildctl.errors import UsageError
from buildctl.inspect.results import Check, CheckStatus
from buildctl.model import Config, ServiceConfig
from buildctl.references import DIGEST_RE

FORMAT = "buildctl-agent/1"
# A file is well under 1 KiB per service and platform, checks included; 4 MiB bounds what is read.
MAX_AGENT_FILE_BYTES = 4 * 2**20


class Verdict(StrEnum):
    PASSED = "passed"  # built, pushed, every check of this platform passed (smoke included)
    FAILED = "failed"  # the build or a check failed: the merge refuses this file


@dataclass(frozen=True)
class AgentImage:
    """One service's image for the agent's platform."""

    service: str
    repository: str  # registry/path
    digest: str  # what buildx pushed: an index (image + attestation manifest) or a lone manifest; "" if none
    image_digest: str  # the platform's image manifest inside it; "" if none
    entry_digest: str  # entry_digest(): the services.yaml entry and settings that decide the image
    input_digest: str | None  # the build's input digest (issue #18), where one exists
    verdict: Verdict
    checks: tuple[Check, ...] = ()
    error: str | None = None  # the build's error line, when it failed


@dataclass(frozen=True)
class AgentFile:
    platform: str
    registry: str
    tag: str
    commit: str  # HEAD of the services.yaml checkout; "" outside git
    images: tuple[AgentImage, ...]
    dirty: bool = False  # tracked files differed from that commit: not the build of the commit

    @property
    def passed(self) -> bool:
        return all(i.verdict is Verdict.PASSED for i in self.images)


def entry_digest(config: Config, svc: ServiceConfig) -> str:
    """sha256 of what in services.yaml decides ``svc``'s image and its verdict: its entry (paths
    relative to services.yaml, so two clones at different paths agree; its line left out), the
    build options and the verify settings. Two agents that differ here built different images."""
    def rel(path: Path) -> str:
        try:
            return path.relative_to(config.root).as_posix()
        except ValueError:
            return str(path)

    build = config.build
    data = {
        "image": svc.image, "context": rel(svc.context), "dockerfile": rel(svc.dockerfile),
        "platforms": list(svc.platforms), "build_args": dict(sorted(svc.build_args.items())),
        "secrets": dict(sorted(svc.secrets.items())), "target": svc.target, "smoke": list(svc.smoke),
        "allow_foreign": sorted(config.verify.allow_foreign + svc.allow_foreign),
        "page_size": config.verify.page_size, "provenance": build.provenance, "sbom": build.sbom,
        "labels": dict(sorted(build.labels.items())), "source_date_epoch": build.source_date_epoch,
    }
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def to_json(agent: AgentFile) -> str:
    doc = {
        "format": FORMAT, "platform": agent.platform, "registry": agent.registry, "tag": agent.tag,
        "commit": agent.commit, "dirty": agent.dirty,
        "services": [{
            "service": i.service, "repository": i.repository, "platform": agent.platform, "digest": i.digest,
            "image_digest": i.image_digest, "entry_digest": i.entry_digest, "input_digest": i.input_digest,
            "verdict": str(i.verdict), "error": i.error,
            "checks": [{"platform": c.platform, "name": c.name, "status": str(c.status), "detail": c.detail}
                       for c in i.checks],
        } for i in agent.images],
    }
    return json.dumps(doc, indent=2) + "\n"


def write(path: Path, agent: AgentFile) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(to_json(agent), encoding="utf-8")
    temp.replace(path)  # a reader (an artifact upload) never sees half a file


def read(path: Path) -> AgentFile:
    """The agent file at ``path``; UsageError ("FILE: what is wrong") when it is not one."""
    try:
        raw = jsonsafe.read_file(path, max_bytes=MAX_AGENT_FILE_BYTES)
        doc = jsonsafe.loads(raw)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the agent file: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, NotARegularFile, FileTooLarge
        raise UsageError(f"{path}: not a buildctl agent file: {exc}") from None
    try:
        return parse(doc)
    except (TypeError, ValueError, KeyError) as exc:
        raise UsageError(f"{path}: not a buildctl agent file ({FORMAT}): {exc}") from None


def parse(doc: Any) -> AgentFile:
    """An AgentFile from decoded JSON; ValueError/TypeError/KeyError saying which field is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT!r}")
    platform = _text(doc, "platform")
    services = doc["services"]
    if not isinstance(services, list):
        raise TypeError("services is not a list")
    images = tuple(_image(item, platform) for item in services)
    if not isinstance(dirty := doc.get("dirty", False), bool):
        raise TypeError("dirty is not true or false")
    return AgentFile(platform, _text(doc, "registry"), _text(doc, "tag"), _text(doc, "commit", empty=True), images,
                     dirty)


def _image(item: Any, platform: str) -> AgentImage:
    if not isinstance(item, dict):
        raise TypeError("a services entry is not an object")
    name = _text(item, "service")
    if _text(item, "platform") != platform:
        raise ValueError(f"service {name}: platform {item['platform']!r} in a file for {platform}")
    verdict = Verdict(_text(item, "verdict"))
    digests = {key: _text(item, key, empty=verdict is Verdict.FAILED) for key in ("digest", "image_digest")}
    for key, value in (*digests.items(), ("entry_digest", _text(item, "entry_digest"))):
        if value and not DIGEST_RE.fullmatch(value):
            raise ValueError(f"service {name}: {key} {value[:80]!r} is not a sha256 digest")
    checks = item.get("checks") or []
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise TypeError(f"service {name}: checks is not a list of objects")
    input_digest, error = item.get("input_digest"), item.get("error")
    if not isinstance(input_digest, (str, type(None))) or not isinstance(error, (str, type(None))):
        raise TypeError(f"service {name}: input_digest and error must be strings or null")
    return AgentImage(name, _text(item, "repository"), digests["digest"], digests["image_digest"],
                      _text(item, "entry_digest"), input_digest, verdict,
                      tuple(Check(_text(c, "platform", empty=True), _text(c, "name"), CheckStatus(_text(c, "status")),
                                  _text(c, "detail", empty=True)) for c in checks), error)


def _text(doc: dict, key: str, *, empty: bool = False) -> str:
    value = doc[key]
    if not isinstance(value, str) or (not value and not empty):
        raise TypeError(f"{key} is not a{'' if empty else ' non-empty'} string")
    return value

"""The input digest of a service: sha256 over a canonical JSON of everything that decides its image.

Pure: the caller reads the context (inputs/context.py), the Dockerfile and the base digests. Two
services, or two runs, with equal inputs get equal digests; any input that differs gives another.
What cannot be known before building (a URL or git source, a secret, --no-cache, --pull, a base
the registry did not answer for) makes the service unknowable: ``unknowable`` says why, and it
builds as it always did.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from buildctl.inputs.context import ContextEntry

KEY_VERSION = 1  # raise it whenever what goes into the digest (or how) changes: old pointers then miss
ANNOTATION = "dev.buildctl.inputs"  # on the pushed index: the input digest it was built from
BASES_ANNOTATION = "dev.buildctl.bases"  # on the pushed index: the base digests (nightly says what moved)
POINTER_PREFIX = f"buildctl-inputs-v{KEY_VERSION}-"  # REPO:POINTER_PREFIX<hex>: the index built from <hex>

_UNKNOWN_DIGESTS = ("not resolved", "absent")  # inspect/base_platforms.py NOT_RESOLVED, ABSENT
_SYNTAX = re.compile(r"^#\s*syntax\s*=\s*(\S+)", re.IGNORECASE)
_ADD_REMOTE = re.compile(r"^\s*ADD\s(?:[^\n]*\s)?(?:[a-z][a-z0-9+.-]*://|git@)\S+", re.IGNORECASE | re.MULTILINE)
_MOUNT_SECRET = re.compile(r"--mount=\S*type=(?:secret|ssh)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Base:
    reference: str  # as the Dockerfile names it, build args applied
    platform: str
    digest: str  # the image manifest digest for that platform (or an unknown marker)


@dataclass(frozen=True)
class Inputs:
    """Everything that decides one service's index, as read before the build."""

    entries: tuple[ContextEntry, ...]
    dockerfile: str  # its text: the `# syntax=` line is in it
    platforms: tuple[str, ...]
    build_args: Mapping[str, str]
    target: str | None
    labels: Mapping[str, str]
    bases: tuple[Base, ...]
    source_date_epoch: str | None
    outputs: Mapping[str, str]  # what the exporter is told: provenance, sbom, rewrite-timestamp


def input_digest(inputs: Inputs) -> str:
    """``sha256:<hex>`` of ``inputs`` (and KEY_VERSION)."""
    document = {
        "version": KEY_VERSION,
        "files": [[e.path, e.kind, e.mode, e.content] for e in inputs.entries],
        "dockerfile": hashlib.sha256(inputs.dockerfile.encode("utf-8", "surrogateescape")).hexdigest(),
        "platforms": list(inputs.platforms),
        "build_args": sorted(inputs.build_args.items()),
        "target": inputs.target or "",
        "labels": sorted(inputs.labels.items()),
        "bases": sorted([b.reference, b.platform, b.digest] for b in inputs.bases),
        "source_date_epoch": inputs.source_date_epoch or "",
        "outputs": sorted(inputs.outputs.items()),
    }
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def pointer_tag(digest: str) -> str:
    """The tag that names the index built from ``digest`` (a tag holds at most 128 characters)."""
    return POINTER_PREFIX + digest.removeprefix("sha256:")


def unknowable(dockerfile: str, *, bases: tuple[Base, ...], secrets: bool, pull: bool,
               no_cache: bool) -> str | None:
    """Why the image cannot be told from its inputs before building (None: it can)."""
    if no_cache:
        return "--no-cache asks for a build"
    if pull:
        return "--pull asks for a build"
    if secrets:
        return "the build uses secrets (their values are not part of any key)"
    first = dockerfile.lstrip("\ufeff").splitlines()[:1]
    if first and (syntax := _SYNTAX.match(first[0])) and "@sha256:" not in syntax.group(1):
        return f"the # syntax= frontend {syntax.group(1)} is not pinned by digest"
    if match := _ADD_REMOTE.search(dockerfile):
        return f"`{match.group(0).strip()[:80]}` fetches a remote source"
    if _MOUNT_SECRET.search(dockerfile):
        return "a RUN step mounts a secret or an SSH agent"
    for base in bases:
        if base.digest in _UNKNOWN_DIGESTS:
            return f"base image {base.reference} ({base.platform}) is {base.digest} in the registry"
    return None


def moved_bases(old: Mapping[str, str], new: tuple[Base, ...]) -> tuple[str, ...]:
    """``REF (PLATFORM): OLD -> NEW`` for each base whose digest differs from ``old`` (from an
    earlier index's BASES_ANNOTATION, ``REF PLATFORM`` -> digest)."""
    out = []
    for base in sorted(new, key=lambda b: (b.reference, b.platform)):
        before = old.get(f"{base.reference} {base.platform}")
        if before is not None and before != base.digest:
            out.append(f"{base.reference} ({base.platform}): {before} -> {base.digest}")
    return tuple(out)


def bases_annotation(bases: tuple[Base, ...]) -> str:
    """``REF|PLATFORM|DIGEST;...``: no comma, quote or space, which buildx's flag parsing would split."""
    return ";".join(sorted(f"{b.reference}|{b.platform}|{b.digest}" for b in bases))


def parse_bases_annotation(value: str) -> dict[str, str]:
    """BASES_ANNOTATION's value -> ``REF PLATFORM`` -> digest (what moved_bases compares)."""
    out = {}
    for item in value.split(";"):
        parts = item.split("|")
        if len(parts) == 3:
            out[f"{parts[0]} {parts[1]}"] = parts[2]
    return out

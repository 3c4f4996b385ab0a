"""What the registry's JSON says about an image: descriptors, platforms, attestation entries.

Registry JSON that lacks what the OCI image spec requires is a broken image, not a buildctl bug:
``parsing`` turns the lookup errors into one OperationError naming what was malformed.
Attestation manifests in an index are recognised by the annotation buildx puts on them
(``vnd.docker.reference.type: attestation-manifest``, see
https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md), never by
their ``unknown/unknown`` platform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from buildctl.errors import OperationError
from buildctl.platforms import Platform
from buildctl.registry.wire import parse_json, size_mismatch

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_VALUE = "attestation-manifest"


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor's digest and size (None when absent or not a size)."""

    digest: str
    size: int | None


def descriptor(d: Any) -> Descriptor:
    size = d.get("size")
    return Descriptor(d["digest"], size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None)


def sized_descriptor(d: Any, what: str) -> Descriptor:
    """``descriptor`` for what a pull fetches (layers, config, platform manifests): the OCI image
    spec requires ``size`` (an int64 of at least 0), and without one no reader can check the blob's
    length, so an image whose descriptor lacks it, or holds a negative or non-integer one, fails."""
    found = descriptor(d)
    if found.size is None:
        written = f"size is {json.dumps(d['size'])}, not a byte count" if "size" in d else "has no size"
        raise OperationError(f"{what} {found.digest}: its descriptor {written} (the OCI image spec requires one, "
                             "so a pull can check the blob's length)")
    return found


def check_size(what: str, content: bytes, size: int | None) -> None:
    """A manifest of another size than its index descriptor says fails a pull (containerd checks it)."""
    if size is not None and len(content) != size:
        raise OperationError(size_mismatch(what, len(content), size))


def platform_of(spec: Mapping[str, Any] | None) -> str:
    spec = spec or {}
    return str(Platform.of(str(spec.get("os", "unknown")), str(spec.get("architecture", "unknown")),
                           spec.get("variant")))


def is_attestation(d: Mapping[str, Any]) -> bool:
    """An index entry buildx wrote for an attestation: its annotation, and the platform buildx gives it,
    unknown/unknown (or none). An entry with the annotation and a real platform is an image to
    verify: containerd picks index entries by platform alone and would pull it for that platform."""
    if (d.get("annotations") or {}).get(ATTESTATION_ANNOTATION) != ATTESTATION_VALUE:
        return False
    spec = d.get("platform")
    return spec is None or (isinstance(spec, Mapping) and platform_of(spec) == platform_of(None))


@contextmanager
def parsing(what: str) -> Iterator[None]:
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise OperationError(f"{what} is malformed ({type(exc).__name__}: {exc})") from None


def config_json(raw: bytes, what: str) -> dict[str, Any]:
    doc = parse_json(raw, what=what)
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    return doc

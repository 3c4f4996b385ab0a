"""Wire-level helpers for buildctl.registry: media types, digests, Retry-After, error text.

Pure functions and small types; nothing here opens a connection.
"""

from __future__ import annotations

import email.utils
import hashlib
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.redaction import redact
from buildctl.references import ImageReference
from buildctl.registry.bounds import Deadline, LimitError, parse_json

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


class TransientStatusError(Exception):
    """A registry answer worth retrying (429/502/503/504); never leaves buildctl.registry."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class DigestMismatchError(Exception):
    """Bytes fetched by digest hash to something else; never leaves buildctl.registry."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    if value.strip().isascii() and value.strip().isdigit():  # "²".isdigit() is True too
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class DigestReader(io.RawIOBase):
    """A file-like view of a response body that hashes what passes through it.

    With ``size`` (the descriptor's), a body that grows past it fails at once, not after the
    download, and one that ends short of it fails where it ends (a pull would fail on either);
    ``deadline`` is checked between chunks, so a body drip-fed forever ends on time.
    """

    def __init__(self, chunks: Iterator[bytes], digest: str, *, size: int | None = None,
                 deadline: Deadline | None = None) -> None:
        self._chunks = chunks
        self._pending = b""
        self._hash = hashlib.sha256()
        self._digest = digest
        self._size = size
        self._deadline = deadline
        self.received = 0

    def readable(self) -> bool:
        return True

    def _next(self) -> bytes | None:
        if self._deadline is not None:
            self._deadline.check()
        chunk = next(self._chunks, None)
        if chunk is None:
            if self._size is not None and self.received < self._size:  # before the consumer sees the end
                raise OperationError(size_mismatch(f"blob {self._digest}", self.received, self._size))
            return None
        self.received += len(chunk)
        if self._size is not None and self.received > self._size:
            raise LimitError(f"blob {self._digest} is larger than the {self._size} bytes its descriptor says")
        self._hash.update(chunk)
        return chunk

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._next()
            if chunk is None:
                return 0
            self._pending = chunk
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def verify(self) -> None:
        """Read what the consumer left (e.g. a gzip trailer) and compare digests."""
        while self._next() is not None:
            pass
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._digest:
            raise DigestMismatchError(f"blob {self._digest} arrived as {actual}")


def size_mismatch(what: str, received: int, size: int) -> str:
    return f"{what} is {received} bytes but its descriptor says {size}: a pull of it would fail"


def read_capped(chunks: Iterator[bytes], *, cap: int, what: str, deadline: Deadline | None) -> bytes:
    """A whole small body (manifest, config), refused as soon as it passes ``cap`` bytes."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > cap:
            raise LimitError(f"{what} is larger than {cap} bytes (limit)")
        parts.append(chunk)
        if deadline is not None:
            deadline.check()
    return b"".join(parts)


def reason(exc: BaseException | None) -> str:
    if isinstance(exc, TransientStatusError):
        return f"HTTP {exc.status}" + (f", Retry-After {exc.retry_after:g}s" if exc.retry_after is not None else "")
    text = str(exc) if exc is not None else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def media_type_from_body(content: bytes) -> str | None:
    try:
        body = parse_json(content, what="manifest")
    except ValueError:
        return None
    media_type = body.get("mediaType") if isinstance(body, dict) else None
    if media_type is None and isinstance(body, dict) and "manifests" in body:
        return OCI_INDEX
    return media_type if isinstance(media_type, str) else None


def status_error(response: httpx.Response, ref: ImageReference, what: str) -> OperationError:
    """The one line for an error answer other than 401 (the auth source words those)."""
    status = response.status_code
    try:
        answer = jsonsafe.loads(response.content)
    except ValueError:
        answer = None
    errors = answer.get("errors") if isinstance(answer, dict) else None
    errors = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    codes = {e["code"] for e in errors if isinstance(e.get("code"), str)}
    # The registry's words go into a one-line message: no newlines or terminal escapes from it, and
    # none of our secrets (a registry may echo the Authorization header or the password it got).
    message = _one_line(redact("; ".join(str(e["message"]) for e in errors if e.get("message"))))
    if status == 403:
        return OperationError(f"registry {ref.registry} denied access (HTTP 403) to {what}")
    if status == 404:
        if "NAME_UNKNOWN" in codes:
            return OperationError(f"repository {ref.name} does not exist (wanted {what})")
        if "MANIFEST_UNKNOWN" in codes or what.startswith("manifest"):
            return OperationError(f"manifest unknown: {ref} does not exist in {ref.registry}")
        return OperationError(f"{what} not found in {ref.registry} (HTTP 404)")
    detail = f": {message}" if message else ""
    return OperationError(f"{what}: registry {ref.registry} answered HTTP {status}{detail}")


def _one_line(text: str, *, limit: int = 300) -> str:
    """``text`` as one printable line: control characters (newlines, ESC) become spaces."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def refuse_length(response: httpx.Response, cap: int, what: str) -> None:
    """Fail before reading a body whose Content-Length already says it is too large."""
    length = response.headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > cap:
        raise LimitError(f"{what} is {int(length)} bytes (Content-Length); the limit is {cap}")

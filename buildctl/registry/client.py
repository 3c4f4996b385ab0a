"""A small OCI Distribution API client: manifests, config blobs, streamed layers, tag lists.

It reads; the only writes are release claims' tiny manifests (registry/claims.py) — images and
tags are pushed by buildx.

With transport.py beneath it (HTTP, auth, retries, error mapping), the only code that talks to
registries. Spec: https://github.com/opencontainers/distribution-spec
Every byte fetched by digest is checked against that digest. Transient failures (connection
errors, 429/500/502/503/504) are retried with exponential backoff and jitter, honouring Retry-After.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO, TypeVar

import httpx

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.references import ImageReference, parse_reference
from buildctl.registry import refusals
from buildctl.registry.auth import CredentialSource, RegistryCredentials
from buildctl.registry.bounds import Deadline, LimitError
from buildctl.registry.manifest_memo import ManifestMemo
from buildctl.registry.results import Manifest, ManifestHead, RetryPolicy, TagDeletion
from buildctl.registry.retrying import retrying
from buildctl.registry.transport import Transport
from buildctl.registry.wire import (INDEX_TYPES, MANIFEST_ACCEPT, MANIFEST_TYPES, DigestMismatchError, DigestReader,
                                    media_type_from_body, read_capped, reason, refuse_length, sha256_digest,
                                    size_mismatch)

__all__ = ["Manifest", "ManifestHead", "RegistryClient", "RegistryCredentials", "RetryPolicy"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_MANIFEST_BYTES = 4 << 20  # containerd's limit for manifests and indexes
MAX_CONFIG_BYTES = 8 << 20
TAGS_PAGE, MAX_TAG_PAGES = 1000, 200


class RegistryClient:
    """Registry access, shared safely by threads. Use as a context manager or close()."""

    def __init__(
        self,
        *,
        credentials: Mapping[str, RegistryCredentials] | CredentialSource | None = None,
        scheme: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 - frozen dataclass
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        """``credentials`` maps registry (``host[:port]`` as in references) to credentials, or is the
        lookup (credentials.CredentialLookup) asked per host when a registry wants them.

        ``scheme`` forces http or https; by default loopback registries use http, others https
        (as buildx does: it speaks plain HTTP to 127.0.0.0/8, localhost and ::1).
        """
        if scheme not in (None, "http", "https"):
            raise ValueError(f"scheme must be http or https, not {scheme!r}")
        if isinstance(credentials, RegistryCredentials):
            raise TypeError("credentials maps registry host[:port] to RegistryCredentials: {registry: creds}")
        self._retry = retry
        self._transport = Transport(credentials=credentials, scheme=scheme, timeout=timeout, retry=retry,
                                    event_hooks=event_hooks)
        self.auth, self.http = self._transport.auth, self._transport.http  # public for registry.access (doctor)
        self._memo = ManifestMemo()  # manifests read or written, by repository and digest

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ public API

    def get_manifest(self, reference: ImageReference | str, *, deadline: Deadline | None = None) -> Manifest:
        """GET a manifest or index by digest (verified) or tag (``latest`` when neither).

        At most MAX_MANIFEST_BYTES are read, whatever Content-Length says or the body is."""
        ref = _as_ref(reference)
        if (found := self._get_manifest(ref, deadline=deadline, missing_ok=False)) is None:  # a 404 raised already
            raise OperationError(f"manifest of {ref}: not found")
        return found

    def find_manifest(self, reference: ImageReference | str) -> Manifest | None:
        """get_manifest, or None when the registry does not have it: one round trip where HEAD then
        GET take two (by tag, the digest is still the bytes' own)."""
        return self._get_manifest(_as_ref(reference), deadline=None, missing_ok=True)

    def _get_manifest(self, ref: ImageReference, *, deadline: Deadline | None, missing_ok: bool) -> Manifest | None:
        if ref.digest and (held := self._memo.get(ref.registry, ref.repository, ref.digest)) is not None:
            return held  # the same bytes: read or written by this client in this repository (manifest_memo.py)
        what = f"manifest of {ref}"

        def read(response: httpx.Response) -> tuple[bytes, httpx.Headers] | None:
            if response.status_code == 404:  # only with missing_ok: any other error status raised
                return None
            refuse_length(response, MAX_MANIFEST_BYTES, what)
            return read_capped(response.iter_bytes(), cap=MAX_MANIFEST_BYTES, what=what,
                               deadline=deadline), response.headers

        answer = self._transport.request("GET", ref, f"manifests/{_ref_part(ref)}", consume=read, deadline=deadline,
                                         headers={"Accept": MANIFEST_ACCEPT, "Accept-Encoding": "identity"},
                                         missing_ok=missing_ok)
        if answer is None:
            return None
        content, headers = answer
        digest = sha256_digest(content)
        claimed = ref.digest or headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise OperationError(f"manifest of {ref}: registry sent bytes with digest {digest}, not {claimed}")
        media_type = headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in INDEX_TYPES | MANIFEST_TYPES:
            media_type = media_type_from_body(content) or media_type
        manifest = Manifest(media_type, content, digest)
        self._memo.keep(ref.registry, ref.repository, manifest)
        return manifest

    def head_manifest(self, reference: ImageReference | str) -> ManifestHead | None:
        """HEAD a manifest; None when the registry does not have it."""
        ref = _as_ref(reference)
        response = self._transport.request(
            "HEAD", ref, f"manifests/{_ref_part(ref)}", headers={"Accept": MANIFEST_ACCEPT}, missing_ok=True
        )
        if response.status_code == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            raise OperationError(f"registry {ref.registry} answered HEAD {ref} without Docker-Content-Digest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return ManifestHead(media_type, digest, int(response.headers.get("Content-Length", "0")))

    def get_blob(self, reference: ImageReference | str, digest: str, *, max_bytes: int = MAX_CONFIG_BYTES,
                 size: int | None = None, deadline: Deadline | None = None) -> bytes:
        """GET a small blob (an image config) and verify its digest; ``size`` is its descriptor's.

        Never reads more than ``max_bytes``, nor past ``size``."""
        ref = _as_ref(reference)
        what = f"blob {digest} of {ref.name}"
        if size is not None and size > max_bytes:
            raise LimitError(f"{what}: its descriptor says {size} bytes; the limit is {max_bytes}")
        cap = max_bytes if size is None else size

        def read(response: httpx.Response) -> bytes:
            refuse_length(response, cap, what)
            return read_capped(response.iter_bytes(), cap=cap, what=what, deadline=deadline)

        try:
            content = self._transport.request("GET", ref, f"blobs/{digest}", what=what, consume=read, deadline=deadline,
                                    headers={"Accept-Encoding": "identity"})
        except LimitError as exc:
            if size is None:
                raise
            raise LimitError(f"{what} is larger than the {size} bytes its descriptor says") from exc
        if size is not None and len(content) != size:
            raise OperationError(size_mismatch(what, len(content), size))
        if sha256_digest(content) != digest:
            raise OperationError(f"blob {digest} of {ref.name}: registry sent bytes with another digest")
        return content

    def head_blob(self, reference: ImageReference | str, digest: str) -> int | None:
        """HEAD a blob of ``reference``'s repository: its size, or None when the registry has none."""
        ref = _as_ref(reference)
        response = self._transport.request("HEAD", ref, f"blobs/{digest}", what=f"blob {digest} of {ref}",
                                           missing_ok=True)
        if response.status_code == 404:
            return None
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    def stream_blob(self, reference: ImageReference | str, digest: str, consume: Callable[[BinaryIO], T], *,
                    size: int | None = None, deadline: Deadline | None = None) -> T:
        """Stream a blob (a layer) through ``consume`` and verify its digest at the end.

        ``consume`` gets a buffered binary file; it must be idempotent, because a connection that
        breaks mid-blob is retried from the start. A body longer than ``size`` (the descriptor's)
        fails as soon as the extra byte arrives.
        """
        ref = _as_ref(reference)
        what = f"blob {digest} of {ref.name}"

        def read(response: httpx.Response) -> T:
            if size is not None:
                try:
                    refuse_length(response, size, what)
                except LimitError:  # not a limit of ours: the descriptor's size, which a pull checks too
                    raise LimitError(f"{what} is larger than the {size} bytes its descriptor says") from None
            # raw: the digest covers the stored bytes
            raw = DigestReader(response.iter_raw(), digest, size=size, deadline=deadline)
            result = consume(io.BufferedReader(raw, buffer_size=1 << 16))
            raw.verify()
            return result

        try:
            return self._transport.request("GET", ref, f"blobs/{digest}", what=what, consume=read, deadline=deadline,
                                           streamed=True)
        except DigestMismatchError as exc:
            raise OperationError(f"{what}: {exc}; the registry's copy is corrupt") from None

    def delete_tag(self, reference: ImageReference | str) -> TagDeletion:
        """Delete just a tag (distribution-spec 1.1, ACR); KEPT where refused (Distribution 2.x: by digest only)."""
        ref = _as_ref(reference)
        if not ref.tag or ref.digest:
            raise ValueError(f"delete_tag needs a tag reference, got {ref}")
        where = f"{ref.registry}/{ref.repository}"  # rules may differ by repository (a lock, a path's policy)
        if refusals.refused_lately(refusals.TAG_DELETE, where):  # it would refuse again (registry/refusals.py)
            return TagDeletion.KEPT
        response = self._transport.request("DELETE", ref, f"manifests/{ref.tag}", what=f"tag {ref}",
                                           missing_ok=True, refused_ok=True)
        if response.status_code == 404 or 200 <= response.status_code < 300:
            return TagDeletion.ALREADY_GONE if response.status_code == 404 else TagDeletion.DELETED
        refusals.note_refusal(refusals.TAG_DELETE, where)  # 400, 405, 501: the transport raises any other
        return TagDeletion.KEPT

    def list_tags(self, repository: str) -> tuple[str, ...]:
        """Every tag of ``repository`` (registry/path), following the registry's pagination."""
        ref, tags, query, what = _as_ref(f"{repository}:latest"), [], f"n={TAGS_PAGE}", f"tags of {repository}"

        def read(response: httpx.Response) -> tuple[Any, str | None]:
            if response.status_code == 404:  # no such repository yet: no tags
                return {}, None
            refuse_length(response, MAX_MANIFEST_BYTES, what)
            body = read_capped(response.iter_bytes(), cap=MAX_MANIFEST_BYTES, what=what, deadline=None)
            try:
                page = jsonsafe.loads(body)
            except ValueError:
                raise OperationError(f"{what}: the registry answered something that is not JSON") from None
            return page if isinstance(page, dict) else {}, response.links.get("next", {}).get("url")

        for _ in range(MAX_TAG_PAGES):
            page, following = self._transport.request("GET", ref, f"tags/list?{query}", what=what, consume=read,
                                                      missing_ok=True)
            tags += [t for t in (page.get("tags") or ()) if isinstance(t, str)]
            if not following:
                return tuple(tags)
            query = httpx.URL(following).query.decode()
        raise OperationError(f"tags of {repository}: more than {MAX_TAG_PAGES} pages of {TAGS_PAGE}")

    def put_manifest(self, reference: ImageReference | str, content: bytes, media_type: str) -> str:
        """PUT ``content`` as the manifest at ``reference`` (a tag); its digest, as computed here."""
        ref = _as_ref(reference)
        digest = sha256_digest(content)
        response = self._transport.request("PUT", ref, f"manifests/{_ref_part(ref)}", what=f"manifest {ref}",
                                           headers={"Content-Type": media_type}, content=content)
        stored = response.headers.get("Docker-Content-Digest") if isinstance(response, httpx.Response) else None
        if stored and stored != digest:  # the registry rewrote the bytes: not the manifest we mean
            raise OperationError(f"manifest {ref}: registry stored digest {stored}, not {digest}")
        self._memo.keep(ref.registry, ref.repository, Manifest(media_type, content, digest))
        return digest

    def delete_manifest(self, reference: ImageReference | str) -> bool:
        """DELETE a manifest by digest (and with it every tag of it); False where deletes are refused
        (405, 501: Distribution's default), OperationError when it failed otherwise."""
        ref = _as_ref(reference)
        if not ref.digest:
            raise ValueError(f"delete_manifest needs a digest reference, got {ref}")
        try:
            response = self._transport.request("DELETE", ref, f"manifests/{ref.digest}", what=f"manifest {ref}",
                                               missing_ok=True, refused_ok=True)
        finally:  # after the delete: a GET beside it could have held the bytes once more
            self._memo.forget(ref.registry, ref.repository, ref.digest)
        if response.status_code == 400:  # Distribution: a PUT of the same bytes raced it (DIGEST_INVALID)
            raise OperationError(f"manifest {ref}: the registry answered HTTP 400 to its delete")
        return response.status_code in (200, 202, 404)  # else 405/501: deletes are off there

    def ping(self, registry: str, *, authenticated: bool = False) -> str:
        """GET /v2/: does ``registry`` speak the Distribution API? A short description if so.

        ``authenticated``: a 401 that the credentials could not answer (none found, or refused) is
        the error saying where they were looked for, instead of a description."""
        host, url = self._transport.host_and_url(registry, "/v2/")
        scheme = url.partition(":")[0]
        try:
            response = retrying(self._retry, f"registry {registry} /v2/")(lambda: self.http.get(url))
        except httpx.HTTPError as exc:
            raise OperationError(f"registry {registry} unreachable ({reason(exc)}) {self._transport.tries}") from None
        if response.status_code == 200:
            return f"{registry} answers /v2/ ({scheme})"
        if response.status_code == 401:
            if authenticated:
                raise self.auth.source.unauthorized(host, "/v2/")
            return f"{registry} answers /v2/ ({scheme}); requires authentication"
        raise OperationError(f"registry {registry} answered /v2/ with HTTP {response.status_code}")

    # ------------------------------------------------------------------ plumbing

    def host_and_url(self, registry: str, path: str) -> tuple[str, str]:
        """The host httpx talks to for ``registry``, and the URL of ``path`` there."""
        return self._transport.host_and_url(registry, path)


def _as_ref(reference: ImageReference | str) -> ImageReference:
    if isinstance(reference, ImageReference):
        return reference
    try:
        return parse_reference(reference)
    except ValueError as exc:
        raise OperationError(str(exc)) from None


def _ref_part(ref: ImageReference) -> str:
    return ref.digest or ref.tag or "latest"

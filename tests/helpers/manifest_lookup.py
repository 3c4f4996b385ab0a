"""What a tag resolves to in a registry, for tests that assert a tag exists or does not.

"Not tagged" must mean the registry said so: a 404 whose error is MANIFEST_UNKNOWN or
NAME_UNKNOWN (distribution's spec). Any other answer (a 401, a 500 the stack's registry gives now
and then, a refused connection) is an error, so an assertion that a tag is absent cannot pass on
a registry fault. 5xx answers are asked again a few times first: a flake is not evidence either way.
"""

from __future__ import annotations

import time

import httpx

INDEX_ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json"
ABSENT_CODES = frozenset({"MANIFEST_UNKNOWN", "NAME_UNKNOWN"})
_ATTEMPTS = 4


class LookupError_(AssertionError):
    """The registry gave no clear answer: neither the manifest nor a 'manifest unknown'."""


def _error_codes(response: httpx.Response) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return set()
    errors = body.get("errors") if isinstance(body, dict) else None
    return {e.get("code") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()


def manifest_digest(url: str, **client_options) -> str | None:
    """The Docker-Content-Digest of the manifest at ``url`` (…/v2/REPO/manifests/REF), None when the
    registry answers 404 manifest/name unknown; raises on every other answer."""
    for attempt in range(1, _ATTEMPTS + 1):
        # GET, not HEAD: a HEAD 404 has no body, so it cannot say *why* the manifest is absent.
        response = httpx.get(url, headers={"Accept": INDEX_ACCEPT}, timeout=30, **client_options)
        if response.status_code == 200:
            digest = response.headers.get("Docker-Content-Digest")
            if not digest:
                raise LookupError_(f"{url}: 200 without Docker-Content-Digest")
            return digest
        if response.status_code == 404:
            codes = _error_codes(response)
            if codes & ABSENT_CODES:
                return None
            raise LookupError_(f"{url}: 404 without manifest-unknown error (codes {sorted(codes)!r})")
        if response.status_code >= 500 and attempt < _ATTEMPTS:
            time.sleep(0.5 * attempt)
            continue
        raise LookupError_(f"{url}: registry answered HTTP {response.status_code}, not the manifest nor 404")
    raise AssertionError("unreachable")

"""The HTTP transport under the registry client (go-containerregistry keeps them apart too): one
httpx client with registry authentication, URLs per registry, and one request path that retries
transient answers, bounds error bodies and turns every failure into one OperationError."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from buildctl.errors import OperationError
from buildctl.references import ImageReference
from buildctl.registry.auth import CredentialSource, RegistryAuth, RegistryCredentials, answered_by_origin, is_loopback
from buildctl.registry import guard
from buildctl.registry.bounds import Deadline
from buildctl.registry.results import RetryPolicy
from buildctl.registry.retrying import RETRY_STATUSES, retrying
from buildctl.registry.tls import tls_context
from buildctl.registry.wire import (
    TransientStatusError,
    parse_retry_after,
    read_capped,
    reason,
    refuse_length,
    status_error,
)

MAX_ERROR_BYTES = 64 << 10  # an error answer's body is a short JSON document
DOCKER_HUB_API = "registry-1.docker.io"  # docker.io references are served from here


class Transport:
    """Shared safely by threads; ``close()`` when done."""

    def __init__(self, *, credentials: Mapping[str, RegistryCredentials] | CredentialSource | None,
                 scheme: str | None, timeout: float, retry: RetryPolicy,
                 event_hooks: Mapping[str, list[Callable[..., Any]]] | None) -> None:
        self._scheme = scheme
        self._retry = retry
        self._timeout = timeout
        source = credentials if isinstance(credentials, CredentialSource) else \
            {self.host(reg): c for reg, c in (credentials or {}).items()}
        self.auth = RegistryAuth(source)
        self.http = httpx.Client(
            auth=self.auth,
            verify=tls_context(),  # the CAs load with the first TLS connection (tls.py)
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,  # blob storage redirects; httpx drops Authorization cross-origin
            # Ours first: no body read past a limit, no credential off its origin (guard.py).
            event_hooks={k: [*guard.event_hooks().get(k, ()), *(event_hooks or {}).get(k, ())]
                         for k in ("request", "response")},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self.http.close()

    def host(self, registry: str) -> str:
        return DOCKER_HUB_API if registry == "docker.io" else registry

    def host_and_url(self, registry: str, path: str) -> tuple[str, str]:
        """The host httpx talks to for ``registry``, and the URL of ``path`` there."""
        host = self.host(registry)
        return host, f"{self._scheme or ('http' if is_loopback(host) else 'https')}://{host}{path}"

    def url(self, ref: ImageReference, path: str) -> str:
        return self.host_and_url(ref.registry, f"/v2/{ref.repository}/{path}")[1]

    @property
    def tries(self) -> str:
        return f"(gave up after at most {self._retry.attempts} attempts / {self._retry.total_seconds:g}s)"

    def request(
        self,
        method: str,
        ref: ImageReference,
        path: str,
        *,
        what: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        consume: Callable[[httpx.Response], Any] | None = None,
        missing_ok: bool = False,
        refused_ok: bool = False,
        deadline: Deadline | None = None,
        streamed: bool = False,
    ) -> Any:
        """``streamed``: a 2xx body with no transport limit (a layer: ``consume`` bounds it by its
        descriptor's size and the deadline); every other body is capped (guard.py)."""
        what = what or f"manifest {ref}"
        url = self.url(ref, path)

        def attempt() -> Any:
            timeout = None
            if deadline is not None:
                deadline.check()
                timeout = httpx.Timeout(deadline.timeout(self._timeout), connect=deadline.timeout(10.0))
            request = self.http.build_request(method, url, headers=dict(headers or {}), content=content,
                                               extensions={guard.BODY_LIMIT: None} if streamed else None,
                                               **({"timeout": timeout} if timeout else {}))
            response = self.http.send(request, stream=True)
            try:
                if response.status_code in RETRY_STATUSES:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    raise TransientStatusError(response.status_code, retry_after)
                refused = refused_ok and response.status_code in (400, 405, 501)
                if response.status_code >= 400 and not (missing_ok and response.status_code == 404) and not refused:
                    refuse_length(response, MAX_ERROR_BYTES, f"{what}: the error body")
                    response._content = read_capped(response.iter_bytes(), cap=MAX_ERROR_BYTES, deadline=deadline,
                                                    what=f"{what}: the error body")
                    if response.status_code == 401 and not answered_by_origin(request.url, response.url):
                        raise OperationError(f"{what}: registry {ref.registry} redirected to "
                                             f"{response.url.netloc.decode('ascii')}, which answered HTTP 401; buildctl "
                                             "sends credentials only to the registry's own challenge")
                    if response.status_code == 401:
                        raise self.auth.source.unauthorized(self.host(ref.registry), what)
                    raise status_error(response, ref, what)
                if consume is not None:
                    return consume(response)
                response.read()
                return response
            finally:
                response.close()

        try:
            return retrying(self._retry, what, deadline)(attempt)
        except TransientStatusError as exc:
            raise OperationError(f"{what}: registry {ref.registry} answered HTTP {exc.status} {self.tries}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise OperationError(
                f"registry {ref.registry} unreachable ({reason(exc)}) {self.tries}; wanted {what}",
                hint="is the registry running and the address right?",
            ) from None
        except httpx.TimeoutException as exc:
            if deadline is not None and deadline.expired:
                deadline.check()
            raise OperationError(f"{what}: registry {ref.registry} timed out ({reason(exc)})") from None
        except httpx.HTTPError as exc:
            raise OperationError(f"{what}: talking to registry {ref.registry} failed: {reason(exc)}") from None

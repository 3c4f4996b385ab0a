"""What the one registry HTTP client may send and read, whatever a registry answers (issue #24).

- **No answer is read past a limit.** httpx reads some bodies whole by itself, before buildctl's
  own capped reads see them: every redirect answer, every answer an auth flow moves on from (the
  401 challenge, the token endpoint's), and ``Client.get``. A registry streaming a chunked body
  forever there exhausted memory. The response hook caps every body as it streams: answers other
  than 2xx at ``OTHER_LIMIT``, 2xx at ``DEFAULT_LIMIT`` unless the request says otherwise
  (``BODY_LIMIT``: a layer is streamed through its own size and digest check). The limits are
  above the callers' own (manifest 4 MiB, config 8 MiB, error 64 KiB, token 1 MiB), whose
  messages stay the ones users see.
- **A credential in a body stays at its origin.** httpx drops ``Authorization`` on a cross-origin
  redirect, but a 307/308 re-sends the body: the token endpoint's POST, which carries an identity
  token, would follow it to any host. A request marked with ``CREDENTIAL_ORIGIN`` is refused
  before it is sent anywhere else (docker's Go client would follow it; README "Registry
  credentials: what goes where" promises no credential goes to another host).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from buildctl.errors import OperationError
from buildctl.registry.bounds import LimitError

BODY_LIMIT = "buildctl.body_limit"  # request extension: the 2xx body limit in bytes, or None (the reader bounds it)
CREDENTIAL_ORIGIN = "buildctl.credential_origin"  # request extension: the only origin it may be sent to
DEFAULT_LIMIT = 16 << 20
OTHER_LIMIT = 1 << 20


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in, as browsers compare origins."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, *, limit: int, what: str) -> None:
        self._stream = stream
        self._limit = limit
        self._what = what

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._stream:
            seen += len(chunk)
            if seen > self._limit:
                raise LimitError(f"{self._what} is larger than {self._limit} bytes (limit); refused")
            yield chunk

    def close(self) -> None:
        self._stream.close()


def cap_body(response: httpx.Response) -> None:
    """httpx response hook (it runs before httpx reads any body itself): cap the body as it streams."""
    request = response.request
    if 200 <= response.status_code < 300:
        limit = request.extensions.get(BODY_LIMIT, DEFAULT_LIMIT)
    else:
        limit = OTHER_LIMIT
    if limit is None:
        return
    what = f"registry {request.url.netloc.decode('ascii')}: the HTTP {response.status_code} answer to {request.method}"
    response.stream = _CappedStream(response.stream, limit=limit, what=what)  # type: ignore[arg-type]


def keep_credentials_at_origin(request: httpx.Request) -> None:
    """httpx request hook (it runs for every redirect too): a request carrying a credential in its
    body goes to its own origin only."""
    allowed = request.extensions.get(CREDENTIAL_ORIGIN)
    if allowed is not None and origin(request.url) != allowed:
        scheme, host, port = allowed
        raise OperationError(
            f"the token endpoint {scheme}://{host}:{port} redirected to {request.url.scheme}://"
            f"{request.url.netloc.decode('ascii')}; refusing to send the credentials there",
            hint="the registry's token endpoint (its WWW-Authenticate realm) must answer itself",
        )


def event_hooks() -> dict[str, list]:
    return {"request": [keep_credentials_at_origin], "response": [cap_body]}

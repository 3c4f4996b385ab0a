"""Registry authentication for httpx: anonymous, Basic, and the Bearer token challenge.

The token flow is the Docker Registry v2 one (https://distribution.github.io/distribution/spec/auth/token/):
a request answered ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` is
repeated with a token from ``GET realm?service=...&scope=...`` (sent Basic credentials when we
have them — Docker Hub, ACR and Harbor all work this way). Tokens are cached per registry host, realm,
service and scope until shortly before they expire. Passwords never reach a log line or an exception.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import re
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field

import httpx

from buildctl import jsonsafe
from buildctl.errors import OperationError
from buildctl.redaction import remember_secret
from buildctl.registry.bounds import LimitError
from buildctl.registry.guard import CREDENTIAL_ORIGIN, origin
from buildctl.registry.wire import refuse_length

# RFC 6750 b64token: what a Bearer header may carry. Anything else (a newline, non-ASCII) would
# make httpx raise with the whole header, the token in it, in the message.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# One part of a challenge list: a key=value auth-param, or a scheme (a token with no "=" after it).
_CHALLENGE_PART_RE = re.compile(
    rf'(?P<key>{_TCHARS})\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s,"]*))|(?P<scheme>{_TCHARS})'
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)")
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_MAX_TOKEN_RESPONSE = 1 << 20  # a token answer is a few KB; a registry cannot make us read more
_REPOSITORY_PATH_RE = re.compile(r"^/v2/(?P<name>.+)/(?:manifests|blobs|tags)/")
_DEFAULT_TOKEN_SECONDS = 60  # the spec's default when the token response has no expires_in
_EXPIRY_MARGIN = 10.0


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and password, or an identity token (an OAuth2 refresh token: ACR's
    ``00000000-0000-0000-0000-000000000000`` logins, what ``az acr login`` stores)."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = field(default="", compare=False)  # where it was found, for messages

    def __repr__(self) -> str:
        return f"RegistryCredentials(username={self.username!r}, password='***')"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


class CredentialSource:
    """Credentials per registry host (``host[:port]`` as httpx sees it), and what a refusal says.

    This base serves a fixed mapping (library use, tests); credentials.CredentialLookup is the
    lookup the CLI uses, and says where it looked and what to run."""

    def __init__(self, credentials: Mapping[str, RegistryCredentials] | None = None) -> None:
        self._credentials = dict(credentials or {})

    def find(self, host: str) -> RegistryCredentials | None:
        return self._credentials.get(host)

    def missing(self, host: str) -> tuple[str, str]:
        """(what to add to the message, the hint) when ``host`` wants credentials and we have none."""
        return "", "pass registry credentials"

    def refused(self, host: str, creds: RegistryCredentials) -> str:
        """The hint when ``host`` refused ``creds``."""
        return "check the registry username and password/token"

    def unauthorized(self, host: str, what: str) -> Unauthorized:
        """The one error for an HTTP 401 that the auth flow could not answer."""
        creds = self.find(host)
        if creds is not None:
            return Unauthorized(f"registry {host} rejected the credentials (HTTP 401) for {what}",
                                hint=self.refused(host, creds))
        detail, hint = self.missing(host)
        return Unauthorized(f"registry {host} requires authentication (HTTP 401) for {what}{detail}", hint=hint)


class Unauthorized(OperationError):
    """An HTTP 401 the credentials could not answer (none found, refused, or a login that expired)."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" | "bearer" (lowercase)
    params: Mapping[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse a ``WWW-Authenticate`` value; None when it names no scheme.

    One header may hold several challenges (httpx joins repeated headers with ", "): Bearer is
    taken when offered, else the first. auth-params as RFC 7235 2.1 has them (spaces around "=",
    quoted strings with backslash escapes), separated by commas or, leniently, by spaces."""
    challenges: list[tuple[str, dict[str, str]]] = []
    for match in _CHALLENGE_PART_RE.finditer(header):
        if match["scheme"]:
            challenges.append((match["scheme"].lower(), {}))
        elif challenges and match["key"]:
            quoted = match["quoted"]
            value = _QUOTED_PAIR_RE.sub(lambda m: m[1], quoted) if quoted is not None else match["bare"]
            challenges[-1][1][match["key"].lower()] = value
    if not challenges:
        return None
    scheme, params = next((c for c in challenges if c[0] == "bearer"), challenges[0])
    return Challenge(scheme, params)


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port (``[::1]:5000``)."""
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pull_scope(url: httpx.URL) -> str | None:
    match = _REPOSITORY_PATH_RE.match(url.path)
    return f"repository:{match.group('name')}:pull" if match else None


class RegistryAuth(httpx.Auth):
    """An httpx auth flow answering registry challenges; one instance is shared by all threads.

    ``credentials`` maps a registry host as httpx sees it (``host[:port]``) to its credentials,
    or is a CredentialSource asked for a host's credentials when that host first wants them.
    """

    def __init__(self, credentials: Mapping[str, RegistryCredentials] | CredentialSource) -> None:
        self.source = credentials if isinstance(credentials, CredentialSource) else CredentialSource(credentials)
        self._lock = threading.Lock()
        # (host, realm, service, scope) -> (header, expiry). The host too: a token bought with one
        # registry's credentials is that registry's, whatever realm another registry's challenge names.
        self._tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
        self._challenges: dict[str, Challenge] = {}  # host -> last challenge seen

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        host = request.url.netloc.decode("ascii")
        cached = self._cached_header(host, pull_scope(request.url))
        if cached:
            request.headers["Authorization"] = cached
        response = yield request
        if response.status_code != 401 or not answered_by_origin(request.url, response.url):
            # A 401 from where a redirect led (blob storage) is not the registry's challenge: its
            # realm would get the registry's credentials. It goes back to the caller as a 401.
            return
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return
        creds = self.source.find(host)
        with self._lock:
            self._challenges[host] = challenge
        if challenge.scheme == "basic":
            if creds is None:
                return  # the 401 goes back to the caller, which says "authentication required"
            if creds.identity_token and not creds.password:
                raise OperationError(f"registry {host} wants a user name and password (Basic), but the "
                                     f"credentials from {creds.source or 'the lookup'} are an identity token",
                                     hint=self.source.refused(host, creds))
            request.headers["Authorization"] = creds.basic_header()
        elif challenge.scheme == "bearer":
            scope = challenge.params.get("scope") or pull_scope(request.url) or ""
            token_request = self._token_request(host, challenge, scope, creds)
            token_response = yield token_request
            body = _read_bounded(token_response, host)
            request.headers["Authorization"] = self._store_token(host, challenge, scope, token_response, body)
        else:
            return
        yield request

    def token(self, http: httpx.Client, host: str, challenge: Challenge, scope: str) -> str:
        """A token for ``scope`` from ``host``'s token endpoint, outside any request (doctor asks for
        push scope before anything is pushed); the same errors as the flow's."""
        token_request = self._token_request(host, challenge, scope, self.source.find(host))
        response = http.send(token_request, auth=None)
        try:
            body = _read_bounded(response, host)
        finally:
            response.close()
        return self._store_token(host, challenge, scope, response, body).removeprefix("Bearer ")

    def _cached_header(self, host: str, scope: str | None) -> str | None:
        with self._lock:
            challenge = self._challenges.get(host)
            if challenge is None:
                return None
            if challenge.scheme == "basic":
                creds = self.source.find(host)
                return creds.basic_header() if creds else None
            key = (host, challenge.params.get("realm", ""), challenge.params.get("service", ""), scope or "")
            header, expiry = self._tokens.get(key, ("", 0.0))
            return header if header and time.monotonic() < expiry else None

    def _token_request(
        self, host: str, challenge: Challenge, scope: str, creds: RegistryCredentials | None
    ) -> httpx.Request:
        realm = challenge.params.get("realm")
        if not realm:
            raise OperationError(f"registry {host} sent a Bearer challenge without a realm")
        url = httpx.URL(realm)
        if creds is not None and url.scheme != "https" and not is_loopback(url.netloc.decode("ascii")):
            raise OperationError(
                f"registry {host} asks for credentials over plain HTTP ({url.host}); refusing to send them"
            )
        service = challenge.params.get("service")
        if creds is not None and creds.identity_token:
            # An identity token is an OAuth2 refresh token: POST it to the realm (distribution's
            # token spec, "OAuth2"; what docker and containerd do for identitytoken logins).
            form = {k: v for k, v in (("grant_type", "refresh_token"), ("refresh_token", creds.identity_token),
                                      ("service", service), ("scope", scope), ("client_id", "buildctl")) if v}
            # Marked: a 307/308 would carry the refresh token in the body to wherever it points.
            return httpx.Request("POST", url, data=form, extensions={CREDENTIAL_ORIGIN: origin(url)})
        query = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        headers = {"Authorization": creds.basic_header()} if creds else {}
        return httpx.Request("GET", url.copy_merge_params(query), headers=headers)

    def _store_token(self, host: str, challenge: Challenge, scope: str, response: httpx.Response, body: bytes) -> str:
        creds = self.source.find(host)
        if response.status_code in (401, 403):
            if creds is None:
                detail, hint = self.source.missing(host)
                raise OperationError(f"registry {host} refused anonymous access (token endpoint answered HTTP "
                                     f"{response.status_code}){detail}", hint=hint)
            who = f"user {creds.username!r}" if creds.username and not creds.identity_token else "the identity token"
            raise OperationError(
                f"registry {host} refused {who} (token endpoint answered HTTP {response.status_code})",
                hint=self.source.refused(host, creds),
            )
        if response.status_code != 200:
            raise OperationError(f"registry {host}: token endpoint answered HTTP {response.status_code}")
        try:
            answer = jsonsafe.loads(body)
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise OperationError(f"registry {host}: token endpoint answered without a token")
        if not _TOKEN_RE.fullmatch(token):  # never shown: it is a credential
            raise OperationError(f"registry {host}: token endpoint answered a token that is not a valid Bearer token")
        expires = answer.get("expires_in")
        valid = isinstance(expires, (int, float)) and not isinstance(expires, bool) and math.isfinite(expires) and expires > 0
        seconds = float(expires) if valid else _DEFAULT_TOKEN_SECONDS  # the spec's default when absent
        remember_secret(token)  # a registry that echoes it in an error must not make us print it
        header = f"Bearer {token}"
        key = (host, challenge.params.get("realm", ""), challenge.params.get("service", ""), scope)
        with self._lock:
            self._tokens[key] = (header, time.monotonic() + max(seconds - _EXPIRY_MARGIN, 1.0))
        return header


def answered_by_origin(asked: httpx.URL, answered: httpx.URL) -> bool:
    """The answer came from the origin asked (or, as httpx keeps Authorization there, from the same
    host upgraded from http to https), not from another host a redirect led to."""
    if origin(asked) == origin(answered):
        return True
    return (asked.scheme, answered.scheme) == ("http", "https") and asked.host == answered.host \
        and asked.port in (None, 80) and answered.port in (None, 443)


def _read_bounded(response: httpx.Response, host: str) -> bytes:
    """The token endpoint's body, refused when its Content-Length is past _MAX_TOKEN_RESPONSE.

    Read whole with ``read()``: httpx reads each response of an auth flow again once the flow has
    moved on, and a body streamed here would be gone by then (StreamConsumed)."""
    try:
        refuse_length(response, _MAX_TOKEN_RESPONSE, f"registry {host}: the token endpoint's answer")
    except LimitError:
        response.close()
        raise
    return response.read()

"""buildctl.registry.auth: WWW-Authenticate as hostile or sloppy registries send it, and the httpx auth
flow driven step by step with real requests and responses (the generator is the whole protocol); last,
inside RegistryClient against a loopback server. test_client.py has the well-formed challenges."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Generator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest

from buildctl.errors import OperationError
from buildctl.redaction import redact
from buildctl.registry.auth import RegistryAuth, is_loopback, parse_challenge, pull_scope
from buildctl.registry.client import RegistryClient, RegistryCredentials, RetryPolicy

PASSWORD = "hunter2-" + "s" * 12
CREDS = RegistryCredentials("alice", PASSWORD)
SECRET_FORMS = (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), CREDS.basic_header().split()[1])
URL = "https://reg.example/v2/team/app/manifests/1"
REALM = "https://auth.example/token"

Flow = Generator[httpx.Request, httpx.Response, None]


def start(auth: RegistryAuth, url: str = URL) -> tuple[Flow, httpx.Request]:
    flow = auth.auth_flow(httpx.Request("GET", url))
    return flow, next(flow)


def answer(flow: Flow, request: httpx.Request, status: int, *, headers=(), body: bytes = b"") -> httpx.Request | None:
    """Send the flow the response to ``request``; the next request it makes, or None when it is done."""
    try:
        return flow.send(httpx.Response(status, headers=list(headers), content=body, request=request))
    except StopIteration:
        return None


def bearer(realm: str = REALM, **params: str) -> list[tuple[str, str]]:
    extra = "".join(f',{k}="{v}"' for k, v in params.items())
    return [("WWW-Authenticate", f'Bearer realm="{realm}"{extra}')]


def token_flow(auth: RegistryAuth, body: bytes, *, status: int = 200) -> httpx.Request:
    """One whole Bearer dance, the token endpoint answering ``status`` and ``body``; the retried request."""
    flow, first = start(auth)
    token_request = answer(flow, first, 401, headers=bearer())
    assert token_request is not None and token_request.url.path == "/token"
    retried = answer(flow, token_request, status, body=body)
    assert retried is not None
    return retried


def assert_no_secret(text: str) -> None:
    assert not [form for form in SECRET_FORMS if form in text]


# ------------------------------------------------------------------ parse_challenge


@pytest.mark.parametrize(("header", "scheme", "params"), [
    ('BEARER Realm="https://a/t",SERVICE="reg"', "bearer", {"realm": "https://a/t", "service": "reg"}),
    ('BASIC realm="Sonatype Nexus Repository Manager"', "basic", {"realm": "Sonatype Nexus Repository Manager"}),
    ('Bearer realm="https://a/t?x=1,y=2",scope="repository:a:pull,push"', "bearer",
     {"realm": "https://a/t?x=1,y=2", "scope": "repository:a:pull,push"}),
    ('Bearer realm="say \\"hi\\"",service=bare', "bearer", {"realm": 'say "hi"', "service": "bare"}),
    ('Bearer ,realm="x",,service="y",', "bearer", {"realm": "x", "service": "y"}),
    ('Bearer realm="x" scope="y"', "bearer", {"realm": "x", "scope": "y"}),
    ('Bearer realm="",service="s"', "bearer", {"realm": "", "service": "s"}),
    ('Bearer realm="https://a/t",error="insufficient_scope",scope="repository:a:push"', "bearer",
     {"realm": "https://a/t", "error": "insufficient_scope", "scope": "repository:a:push"}),
    ("  Bearer  ", "bearer", {}),
])
def test_parse_challenge_edges(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None and (challenge.scheme, dict(challenge.params)) == (scheme, params)


@pytest.mark.parametrize("header", ["", "   ", "\t"])
def test_no_scheme_is_no_challenge(header: str) -> None:
    assert parse_challenge(header) is None


@pytest.mark.parametrize(("header", "params"), [
    pytest.param(f'Bearer realm="{REALM}",service="reg", Basic realm="Registry"', {"realm": REALM, "service": "reg"}, id="two-challenges"),
    pytest.param(f'Bearer realm = "{REALM}", service = "reg"', {"realm": REALM, "service": "reg"}, id="spaces-around-equals"),
    pytest.param('Bearer realm="C:\\\\reg"', {"realm": "C:\\reg"}, id="quoted-pair"),
])
def test_parse_challenge_as_the_rfc_says(header: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None and (challenge.scheme, dict(challenge.params)) == ("bearer", params)


# ------------------------------------------------------------------ is_loopback, pull_scope


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.255.255.254:1", True), ("[::1]", True), ("", False), ("[::1", False), ("0.0.0.0:5000", False), ("127.0.0.1.nip.io", False), ("localhost.:5000", False),
    ("evil.example:127.0.0.1", False), ("[::2]:5000", False),
])
def test_is_loopback_edges(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("path", "scope"), [
    ("/v2/a/manifests/1", "repository:a:pull"),
    ("/v2/org/manifests/app/manifests/sha256:ab", "repository:org/manifests/app:pull"),
    ("/v2/a/b/c/blobs/sha256:ab", "repository:a/b/c:pull"),
    ("/v2/a/tags/list", "repository:a:pull"),
    ("/v2/", None), ("/v2/_catalog", None), ("/v2/a/manifests", None), ("/v3/a/manifests/1", None),
])
def test_pull_scope(path: str, scope: str | None) -> None:
    assert pull_scope(httpx.URL("https://reg.example" + path)) == scope


# ------------------------------------------------------------------ the Bearer flow


def test_anonymous_bearer_flow_asks_for_the_path_scope() -> None:
    flow, first = start(RegistryAuth({}))
    assert "Authorization" not in first.headers
    token_request = answer(flow, first, 401, headers=bearer(service="reg.example"))
    assert token_request is not None and "Authorization" not in token_request.headers
    assert (token_request.url.host, token_request.url.path) == ("auth.example", "/token")
    assert parse_qs(token_request.url.query.decode()) == {"service": ["reg.example"], "scope": ["repository:team/app:pull"]}
    retried = answer(flow, token_request, 200, body=b'{"token": "t0k"}')
    assert retried is not None and retried.headers["Authorization"] == "Bearer t0k"
    assert answer(flow, retried, 401, headers=bearer()) is None  # refused again: no loop


@pytest.mark.parametrize(("challenge", "query"), [
    (bearer(scope="repository:team/app:pull,push"), {"scope": ["repository:team/app:pull,push"]}),  # the challenge's wins
    (bearer("https://auth.example/token?tenant=t1", service="s"),
     {"tenant": ["t1"], "service": ["s"], "scope": ["repository:team/app:pull"]}),
])
def test_token_request_query(challenge: list[tuple[str, str]], query: dict[str, list[str]]) -> None:
    flow, first = start(RegistryAuth({}))
    token_request = answer(flow, first, 401, headers=challenge)
    assert token_request is not None and parse_qs(token_request.url.query.decode()) == query


def test_credentials_go_to_the_token_endpoint_as_basic_for_their_host_port_only() -> None:
    flow, first = start(RegistryAuth({"reg.example": CREDS}))
    token_request = answer(flow, first, 401, headers=bearer())
    assert token_request is not None
    scheme, _, encoded = token_request.headers["Authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == ("Basic", f"alice:{PASSWORD}")
    flow, first = start(RegistryAuth({"reg.example:5000": CREDS}))  # another port: another registry
    token_request = answer(flow, first, 401, headers=bearer())
    assert token_request is not None and "Authorization" not in token_request.headers


@pytest.mark.parametrize("realm", [
    "http://auth.example/token", "HTTP://auth.example/token", "http://127.0.0.1:80@evil.example/token",
    "http://localhost.evil.example/token", "http://127.0.0.1.nip.io/token", "//auth.example/token", "token",
])
def test_credentials_never_go_to_a_plain_http_realm(realm: str) -> None:
    flow, first = start(RegistryAuth({"reg.example": CREDS}))
    with pytest.raises(OperationError, match="^registry reg.example asks for credentials over plain HTTP") as err:
        answer(flow, first, 401, headers=bearer(realm))
    assert_no_secret(str(err.value))


@pytest.mark.parametrize(("creds", "realm"), [
    (CREDS, "http://127.0.0.1:5001/token"), (CREDS, "http://[::1]:5001/token"), (CREDS, "http://localhost/t"),
    (None, "http://auth.example/token"),  # anonymous: nothing to leak
])
def test_plain_http_realms_that_are_allowed(creds: RegistryCredentials | None, realm: str) -> None:
    flow, first = start(RegistryAuth({"reg.example": creds} if creds else {}))
    token_request = answer(flow, first, 401, headers=bearer(realm))
    assert token_request is not None and token_request.url.scheme == "http"
    assert token_request.headers.get("Authorization") == (creds.basic_header() if creds else None)


@pytest.mark.parametrize("header", ['Bearer service="reg"', "Bearer", 'Bearer realm=""'])
def test_bearer_without_a_realm_is_an_error(header: str) -> None:
    flow, first = start(RegistryAuth({}))
    with pytest.raises(OperationError, match="^registry reg.example sent a Bearer challenge without a realm$"):
        answer(flow, first, 401, headers=[("WWW-Authenticate", header)])


@pytest.mark.parametrize(("creds", "status", "message", "hint"), [
    ({"reg.example": CREDS}, 401, "registry reg.example refused user 'alice' (token endpoint answered HTTP 401)",
     "check the registry username and password/token"),
    ({"reg.example": CREDS}, 403, "registry reg.example refused user 'alice' (token endpoint answered HTTP 403)",
     "check the registry username and password/token"),
    ({}, 401, "registry reg.example refused anonymous access (token endpoint answered HTTP 401)",
     "pass registry credentials"),
    ({}, 500, "registry reg.example: token endpoint answered HTTP 500", None),
    ({"reg.example": CREDS}, 302, "registry reg.example: token endpoint answered HTTP 302", None),
])
def test_token_endpoint_refusals(creds, status: int, message: str, hint: str | None) -> None:
    with pytest.raises(OperationError) as err:
        token_flow(RegistryAuth(creds), json.dumps({"details": PASSWORD}).encode(), status=status)
    assert (str(err.value), err.value.hint) == (message, hint)
    assert_no_secret(f"{err.value} {err.value.hint} {err.value!r}")


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'"t0k"', b"null", b'{"token": ""}', b'{"token": 42}', b'{"token": {"t": 1}}', b"{}",
    b'{"token": null, "access_token": ""}', b"[" * 200 + b"]" * 200, b'\xff\xfe{"token": "x"}',
])
def test_token_answers_without_a_token(body: bytes) -> None:
    with pytest.raises(OperationError, match="^registry reg.example: token endpoint answered without a token$"):
        token_flow(RegistryAuth({}), body)


@pytest.mark.parametrize(("body", "header"), [
    (b'{"access_token": "oauth"}', "Bearer oauth"),
    (b'{"token": "docker", "access_token": "oauth"}', "Bearer docker"),
    (b'{"token": "t", "expires_in": -5}', "Bearer t"),
    (b'{"token": "t", "expires_in": "300"}', "Bearer t"),
    # a malformed lifetime is the spec's default lifetime, never a crash or a refusal of the token
    (b'{"token": "t", "expires_in": [3600]}', "Bearer t"),
    (b'{"token": "t", "expires_in": {"s": 1}}', "Bearer t"),
])
def test_token_answers_accepted(body: bytes, header: str) -> None:
    assert token_flow(RegistryAuth({}), body).headers["Authorization"] == header


# ------------------------------------------------------------------ Basic, other schemes, the cache


def test_basic_challenge() -> None:
    flow, first = start(RegistryAuth({}))
    assert answer(flow, first, 401, headers=[("WWW-Authenticate", 'Basic realm="r"')]) is None  # nothing to send
    auth = RegistryAuth({"reg.example": CREDS})
    flow, first = start(auth)
    retried = answer(flow, first, 401, headers=[("WWW-Authenticate", 'basic realm="r"')])
    assert retried is not None and retried.headers["Authorization"] == CREDS.basic_header()
    assert answer(flow, retried, 401, headers=[("WWW-Authenticate", 'Basic realm="r"')]) is None  # wrong: no loop
    # from now on sent up front, to every repository of that registry
    assert start(auth, "https://reg.example/v2/x/tags/list")[1].headers["Authorization"] == CREDS.basic_header()


@pytest.mark.parametrize("headers", [[], [("WWW-Authenticate", "")], [("WWW-Authenticate", "Negotiate abc==")],
                                     [("WWW-Authenticate", 'Digest realm="r", nonce="n"')]])
def test_401_without_a_usable_challenge_goes_back_to_the_caller(headers) -> None:
    flow, first = start(RegistryAuth({"reg.example": CREDS}))
    assert answer(flow, first, 401, headers=headers) is None


def test_a_bearer_token_is_reused_for_its_repository_until_shortly_before_it_expires() -> None:
    auth = RegistryAuth({})
    assert token_flow(auth, b'{"token": "t0k", "expires_in": 11}').headers["Authorization"] == "Bearer t0k"
    assert start(auth, "https://reg.example/v2/team/app/blobs/sha256:ab")[1].headers["Authorization"] == "Bearer t0k"
    assert "Authorization" not in start(auth, "https://reg.example/v2/team/other/manifests/1")[1].headers
    assert "Authorization" not in start(auth, "https://other.example/v2/team/app/manifests/1")[1].headers
    time.sleep(1.1)  # 11 s less the 10 s margin
    assert "Authorization" not in start(auth)[1].headers


# ------------------------------------------------------------------ inside RegistryClient, on loopback


@pytest.fixture
def token_registry(request: pytest.FixtureRequest) -> Iterator[str]:
    """A loopback server that is registry and token endpoint in one, issuing ``request.param``."""
    token = request.param

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/token"):
                body = json.dumps({"token": token}).encode()
                self.send_response(200)
            else:
                body = b""
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://{address}/token",service="loop"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    address = f"127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield address
    server.shutdown(), server.server_close()


@pytest.mark.parametrize("token_registry", ["tok-SECRET-0123456789\n", "tok-SECRET-0123456789\u00e9"],
                         indirect=True, ids=["newline", "non-ascii"])
def test_an_unusable_token_is_refused_without_showing_it(token_registry: str) -> None:
    with RegistryClient(retry=RetryPolicy(attempts=1)) as client, pytest.raises(OperationError) as err:
        client.get_manifest(f"{token_registry}/team/app:1")
    assert "tok-SECRET-0123456789" not in str(err.value)


def test_a_token_answer_past_the_limit_is_refused_by_its_length() -> None:
    flow, first = start(RegistryAuth({}))
    token_request = answer(flow, first, 401, headers=bearer())
    assert token_request is not None
    huge = httpx.Response(200, headers=[("Content-Length", str(2 << 20))], stream=httpx.ByteStream(b"{}"),
                          request=token_request)
    with pytest.raises(OperationError) as err:
        flow.send(huge)
    assert str(err.value) == ("registry reg.example: the token endpoint's answer is 2097152 bytes (Content-Length); "
                              "the limit is 1048576")
    assert huge.is_closed


# ------------------------------------------------------------------ identity tokens (ACR, `az acr login`)


IDENTITY = RegistryCredentials("00000000-0000-0000-0000-000000000000", identity_token="refresh-" + "r" * 20)


def test_an_identity_token_is_posted_as_an_oauth2_refresh_token() -> None:
    flow, first = start(RegistryAuth({"reg.example": IDENTITY}))
    token_request = answer(flow, first, 401, headers=bearer(service="reg.example", scope="repository:team/app:pull"))
    assert token_request is not None and token_request.method == "POST"
    assert str(token_request.url) == REALM and "Authorization" not in token_request.headers
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.read().decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": [IDENTITY.identity_token], "service": ["reg.example"],
        "scope": ["repository:team/app:pull"], "client_id": ["buildctl"]}
    retried = answer(flow, token_request, 200, body=b'{"access_token": "acc3ss", "refresh_token": "new"}')
    assert retried is not None and retried.headers["Authorization"] == "Bearer acc3ss"


def test_an_identity_token_never_goes_to_a_plain_http_realm() -> None:
    flow, first = start(RegistryAuth({"reg.example": IDENTITY}))
    with pytest.raises(OperationError, match="over plain HTTP"):
        answer(flow, first, 401, headers=bearer("http://auth.example/token"))


def test_an_identity_token_for_a_basic_registry_is_one_clear_error() -> None:
    flow, first = start(RegistryAuth({"reg.example": IDENTITY}))
    with pytest.raises(OperationError) as err:
        answer(flow, first, 401, headers=[("WWW-Authenticate", 'Basic realm="r"')])
    assert str(err.value).startswith("registry reg.example wants a user name and password (Basic), but the credentials")
    assert IDENTITY.identity_token not in f"{err.value} {err.value.hint}"


def test_a_refused_identity_token_is_named_as_such() -> None:
    flow, first = start(RegistryAuth({"reg.example": IDENTITY}))
    token_request = answer(flow, first, 401, headers=bearer())
    with pytest.raises(OperationError) as err:
        answer(flow, token_request, 401)
    assert str(err.value) == "registry reg.example refused the identity token (token endpoint answered HTTP 401)"


def test_tokens_received_are_redacted_from_any_later_text() -> None:
    token = "tok-" + "z" * 30
    token_flow(RegistryAuth({}), json.dumps({"token": token}).encode())
    assert redact(f"registry says: bad header Bearer {token}") == "registry says: bad header Bearer ***"

"""buildctl.registry.guard and the auth flow against real loopback servers (issue #24): registry
credentials never reach a host a redirect leads to, and no answer is read past a limit — also the
ones httpx reads whole by itself (redirects, 401 challenges, token answers, ``/v2/``)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buildctl.errors import OperationError
from buildctl.registry.bounds import LimitError
from buildctl.registry.client import RegistryClient, RegistryCredentials, RetryPolicy

PASSWORD = "hunter2-guard-password"
REFRESH = "refresh-token-guard-secret"
DIGEST = "sha256:" + "a" * 64
ONCE = RetryPolicy(attempts=1)
Answer = Callable[["_Handler"], None]


@dataclass
class Server:
    """A loopback HTTP server answering every request with ``answer``; records what it was sent."""

    answer: Answer
    seen: list[tuple[str, str, str, bytes]] = field(default_factory=list)  # method, path, Authorization, body
    sent: int = 0  # body bytes written

    def __post_init__(self) -> None:
        handler = type("H", (_Handler,), {"server_state": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: Server

    def log_message(self, *args: object) -> None:
        pass

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server_state.seen.append((self.command, self.path, self.headers.get("Authorization") or "", body))
        self.server_state.answer(self)

    do_GET = do_HEAD = do_POST = do_PUT = _any

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server_state.sent += len(body)

    def stream(self, status: int, total: int, headers: dict[str, str] | None = None) -> None:
        """``total`` bytes, chunked (no length announced), as fast as the client reads them."""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"{" * 65536
        try:
            for _ in range(total // len(chunk)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.server_state.sent += len(chunk)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading: what it should do


@pytest.fixture
def servers() -> Iterator[Callable[[Answer], Server]]:
    started: list[Server] = []

    def start(answer: Answer) -> Server:
        started.append(Server(answer))
        return started[-1]

    yield start
    for server in started:
        server.close()


def client_for(registry: Server, creds: RegistryCredentials) -> RegistryClient:
    return RegistryClient(credentials={registry.address: creds}, retry=ONCE)


def bearer(realm: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'}


# ------------------------------------------------------------------ credentials stay with their registry


def test_a_challenge_from_where_a_redirect_led_gets_no_credentials(servers) -> None:
    """Blob storage (another host) answering 401 with its own Bearer realm: the registry's Basic
    credentials went to that realm (its challenge was taken for the registry's)."""
    def storage_answer(h: _Handler) -> None:
        if h.path.startswith("/token"):
            h.reply(200, json.dumps({"token": "storage-token"}).encode())
        else:
            h.reply(401, b"{}", bearer(f"http://{storage.address}/token"))

    storage = servers(storage_answer)
    registry = servers(lambda h: h.reply(302, headers={"Location": f"http://{storage.address}/blob"}))
    with client_for(registry, RegistryCredentials("alice", PASSWORD)) as client, \
            pytest.raises(OperationError, match=f"redirected to {storage.address}, which answered HTTP 401"):
        client.get_blob(f"{registry.address}/team/app:1", DIGEST)
    assert [auth for _, _, auth, _ in storage.seen] == [""], storage.seen  # the blob GET, bare; no token request


def test_doctor_sends_no_credentials_to_the_realm_of_a_host_v2_redirects_to(servers, tmp_path) -> None:
    """doctor read the challenge of whatever answered /v2/ after redirects, and asked that realm
    for a push token with the release registry's credentials."""
    from buildctl.registry import access
    from buildctl.registry.credentials import CredentialLookup

    def elsewhere_answer(h: _Handler) -> None:
        h.reply(401, b"{}", bearer(f"http://{elsewhere.address}/token"))

    elsewhere = servers(elsewhere_answer)
    registry = servers(lambda h: h.reply(302, headers={"Location": f"http://{elsewhere.address}/v2/"}))
    lookup = CredentialLookup(release_registry=registry.address, environ={
        "BUILDCTL_REGISTRY_USERNAME": "alice", "BUILDCTL_REGISTRY_PASSWORD": PASSWORD,
        "DOCKER_CONFIG": str(tmp_path)})
    reachable, credentials = access.check(registry.address, "team/app", lookup)
    assert not credentials.ok and f"redirects /v2/ to {elsewhere.address}" in credentials.detail
    assert [auth for _, _, auth, _ in elsewhere.seen] == [""], elsewhere.seen  # no token request


def test_the_registrys_own_challenge_still_gets_them(servers) -> None:
    """The same dance answered by the registry itself: the credentials go to its realm (README)."""
    def answer(h: _Handler) -> None:
        if h.path.startswith("/token"):
            h.reply(200, json.dumps({"token": "abc"}).encode())
        elif h.headers.get("Authorization") == "Bearer abc":
            h.reply(200, json.dumps({"tags": ["1"]}).encode())
        else:
            h.reply(401, b"{}", bearer(f"http://{registry.address}/token"))

    registry = servers(answer)
    with client_for(registry, RegistryCredentials("alice", PASSWORD)) as client:
        assert client.list_tags(f"{registry.address}/team/app") == ("1",)
    assert any(path.startswith("/token") and auth.startswith("Basic ") for _, path, auth, _ in registry.seen)


def test_an_identity_token_never_follows_a_redirect_off_the_token_endpoint(servers) -> None:
    """A 307 from the realm re-sent the POST — the refresh token in its body — to another host."""
    thief = servers(lambda h: h.reply(200, json.dumps({"access_token": "stolen"}).encode()))

    def answer(h: _Handler) -> None:
        if h.command == "POST":
            h.reply(307, headers={"Location": f"http://{thief.address}/steal"})
        else:
            h.reply(401, b"{}", bearer(f"http://{registry.address}/token"))

    registry = servers(answer)
    creds = RegistryCredentials("00000000-0000-0000-0000-000000000000", identity_token=REFRESH)
    with client_for(registry, creds) as client, \
            pytest.raises(OperationError, match="redirected to http://127.0.0.1:.*refusing to send the credentials"):
        client.get_blob(f"{registry.address}/team/app:1", DIGEST)
    assert thief.seen == []


def test_an_identity_token_still_posts_to_its_realm_behind_a_same_origin_redirect(servers) -> None:
    def answer(h: _Handler) -> None:
        if h.command == "POST" and h.path == "/token":
            h.reply(307, headers={"Location": "/oauth2/token"})
        elif h.command == "POST":
            h.reply(200, json.dumps({"access_token": "abc"}).encode())
        elif h.headers.get("Authorization") == "Bearer abc":
            h.reply(200, json.dumps({"tags": ["1"]}).encode())
        else:
            h.reply(401, b"{}", bearer(f"http://{registry.address}/token"))

    registry = servers(answer)
    creds = RegistryCredentials("00000000-0000-0000-0000-000000000000", identity_token=REFRESH)
    with client_for(registry, creds) as client:
        assert client.list_tags(f"{registry.address}/team/app") == ("1",)
    assert any(REFRESH.encode() in body for method, path, _, body in registry.seen if path == "/oauth2/token")


# ------------------------------------------------------------------ no answer read past a limit

BIG = 64 << 20  # what each hostile answer offers; every limit is far below


def _hostile(kind: str, registry: Callable[[], Server]) -> Answer:
    def answer(h: _Handler) -> None:
        realm = f"http://{registry().address}/token"
        if kind == "token" and h.path.startswith("/token"):
            h.stream(200, BIG)
        elif kind == "challenge" or (kind == "token" and h.path.startswith("/v2/")):
            h.stream(401, BIG, bearer(realm)) if kind == "challenge" else h.reply(401, b"{}", bearer(realm))
        elif kind == "redirect":
            h.stream(302, BIG, {"Location": "/elsewhere"})
        else:  # ping, tags: a 200 that never ends
            h.stream(200, BIG)
    return answer


@pytest.mark.parametrize("kind", ["challenge", "token", "redirect", "ping", "tags"])
def test_no_answer_is_read_past_a_limit(servers, kind: str) -> None:
    """Each of these bodies httpx read whole by itself before buildctl's capped reads saw it
    (a 401 challenge, a token answer, a redirect, ``/v2/``); a tag list is capped by its reader."""
    holder: list[Server] = []
    registry = servers(_hostile(kind, lambda: holder[0]))
    holder.append(registry)
    with client_for(registry, RegistryCredentials("alice", PASSWORD)) as client, pytest.raises(LimitError):
        if kind == "ping":
            client.ping(registry.address)
        else:
            client.list_tags(f"{registry.address}/team/app")
    assert registry.sent < 24 << 20, registry.sent  # stopped near its limit, never the whole answer


def test_a_layer_streams_past_the_default_limit_also_behind_a_redirect(servers) -> None:
    """Layers are bounded by their descriptor's size and digest, not by the transport's limit."""
    layer = b"L" * (20 << 20)
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    storage = servers(lambda h: h.reply(200, layer))
    registry = servers(lambda h: h.reply(307, headers={"Location": f"http://{storage.address}/layer"}))
    with RegistryClient(retry=ONCE) as client:
        size = client.stream_blob(f"{registry.address}/team/app:1", digest, lambda f: len(f.read()), size=len(layer))
    assert size == len(layer)


def test_a_tag_list_nested_deep_is_one_error_not_a_crash(servers) -> None:
    """json.loads raised RecursionError (exit 3) on a tag list 100,000 arrays deep."""
    registry = servers(lambda h: h.reply(200, b"[" * 100_000 + b"]" * 100_000))
    with RegistryClient(retry=ONCE) as client, pytest.raises(OperationError, match="not JSON"):
        client.list_tags(f"{registry.address}/team/app")


def test_a_token_got_with_one_registrys_credentials_never_goes_to_another(servers) -> None:
    """Tokens were cached per (realm, service, scope), not per registry: a third-party registry whose
    challenge names the release registry's realm was sent the token its credentials had bought."""
    tokens = servers(lambda h: h.reply(200, json.dumps(
        {"token": "private-token" if h.headers.get("Authorization") else "anonymous-token"}).encode()))

    def registry_answer(h: _Handler) -> None:
        if (h.headers.get("Authorization") or "").startswith("Bearer "):
            h.reply(200, json.dumps({"tags": ["1"]}).encode())
        else:
            h.reply(401, b"{}", bearer(f"http://{tokens.address}/token"))

    release, third_party = servers(registry_answer), servers(registry_answer)
    with client_for(release, RegistryCredentials("alice", PASSWORD)) as client:
        client.list_tags(f"{third_party.address}/team/app")
        client.list_tags(f"{release.address}/team/app")
        client.list_tags(f"{third_party.address}/team/app")
    assert "Bearer private-token" in [auth for _, _, auth, _ in release.seen]
    assert "Bearer private-token" not in [auth for _, _, auth, _ in third_party.seen], third_party.seen

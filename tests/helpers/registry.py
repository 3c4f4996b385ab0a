"""Real registries with authentication, and misbehaving HTTP fronts, for tests/test_registry.py.

* ``start_registry``: another Distribution registry process (the same ``docker-registry`` binary
  the stack runs) in pull-through mode in front of 127.0.0.1:5000, with htpasswd (Basic) or
  token (Bearer) authentication — so auth is exercised against the real server code.
* ``TokenServer``: the token endpoint a Bearer registry sends clients to (what ACR's
  /oauth2/token and auth.docker.io do): checks Basic credentials, issues an ES256 JWT whose x5c
  certificate the registry trusts.
* ``FrontServer``: answers scripted statuses (503 with Retry-After, a 401 challenge) and forwards
  everything else to the real registry — to test retries without touching the real one.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

UPSTREAM = "127.0.0.1:5000"
USER = "alice"
PASSWORD = "correct-horse-battery"
# bcrypt (cost 4) of PASSWORD: registry's htpasswd accepts only bcrypt.
HTPASSWD = f"{USER}:$2b$04$5V2osOHkDnW/XfuMyHbNsujBnkpa3ovWIPV4BSWu6LNo4SjrI4KjC\n"
REFRESH_TOKEN = "refresh-" + "7" * 24  # an identity token (what `az acr login` leaves for ACR)
SERVICE = "buildctl-test-registry"
ISSUER = "buildctl-test-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Server:
    """A ThreadingHTTPServer on a free loopback port, running in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TokenServer(_Server):
    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_file = directory / "token-cert.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict[str, str]] = []
        self.grant_push = False  # like a pull-only token unless a test says otherwise
        super().__init__(_TokenHandler)

    def issue(self, scope: str) -> str:
        access = []
        if scope.startswith("repository:"):
            _, name, actions = scope.split(":")
            granted = [a for a in actions.split(",") if a == "pull" or self.grant_push]
            access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class _TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: TokenServer = self.server.owner  # type: ignore[attr-defined]
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        server.requests.append(query)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.end_headers()
            return
        self._answer(server, {"token": server.issue(query.get("scope", "")), "expires_in": 300})

    def do_POST(self) -> None:  # noqa: N802 - the OAuth2 form (distribution's token spec): refresh tokens
        server: TokenServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        server.requests.append({"method": "POST", **{k: v for k, v in form.items() if k != "refresh_token"}})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != REFRESH_TOKEN:
            self.send_response(401)
            self.end_headers()
            return
        self._answer(server, {"access_token": server.issue(form.get("scope", "")), "expires_in": 300})

    def _answer(self, server: TokenServer, answer: dict) -> None:
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


Script = Callable[[int, str], tuple[int, dict[str, str]] | None]


class FrontServer(_Server):
    """For request number n (from 1) and path ("DELETE <path>" for a delete), ``script`` returns
    (status, headers) or None to forward."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.count = 0
        self.lock = threading.Lock()
        super().__init__(_FrontHandler)


class _FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, head_only: bool) -> None:
        server: FrontServer = self.server.owner  # type: ignore[attr-defined]
        with server.lock:
            server.count += 1
            scripted = server.script(server.count, f"DELETE {self.path}" if self.command == "DELETE" else self.path)
        if scripted is not None:
            status, headers = scripted
            self.send_response(status)
            for k, v in {**headers, "Content-Length": "0"}.items():
                self.send_header(k, v)
            self.end_headers()
            return
        upstream = httpx.request(self.command, f"http://{UPSTREAM}{self.path}",
                                 headers={k: v for k, v in self.headers.items() if k.lower() == "accept"})
        self.send_response(upstream.status_code)
        for k in ("Content-Type", "Docker-Content-Digest", "Content-Length"):
            if k in upstream.headers:
                self.send_header(k, upstream.headers[k])
        self.end_headers()
        if not head_only:
            self.wfile.write(upstream.content)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(head_only=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head_only=True)

    def do_DELETE(self) -> None:  # noqa: N802 - the script sees "DELETE <path>"
        self._answer(head_only=True)


class RegistryProcess:
    def __init__(self, directory: Path, auth: dict) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}},
            "http": {"addr": self.address, "secret": secrets.token_hex(16)},
            "auth": auth,
            "proxy": {"remoteurl": f"http://{UPSTREAM}"},  # pull-through: the images come from the real registry
        }
        (directory / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = directory / "registry.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(["docker-registry", "serve", str(directory / "config.yml")],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://{self.address}/v2/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError(f"registry on {self.address} did not start: {self.log.read_text()[-2000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)


def htpasswd_registry(directory: Path) -> RegistryProcess:
    (directory / "htpasswd").write_text(HTPASSWD)
    return RegistryProcess(directory, {"htpasswd": {"realm": "buildctl-test", "path": str(directory / "htpasswd")}})


def token_registry(directory: Path, tokens: TokenServer) -> RegistryProcess:
    return RegistryProcess(directory, {"token": {
        "realm": f"http://{tokens.address}/token", "service": SERVICE, "issuer": ISSUER,
        "rootcertbundle": str(tokens.cert_file),
    }})

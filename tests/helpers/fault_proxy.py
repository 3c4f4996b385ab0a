"""A fault-injecting HTTP proxy between the engine and a registry, for tests/test_faults.py.

Loopback only (``host`` is for the TLS case below), one thread per connection, bounded (connections, body sizes, idle time) and it stops
itself after ``lifetime`` seconds even if a test forgets to. It forwards every request to the
upstream registry unchanged (the ``Host`` header included, so the Location URLs Distribution
builds for blob uploads point back at the proxy) except those a scripted fault matches:

* ``fail(status, times, ...)``: answer 503/429/... (optionally with ``Retry-After``) instead;
* ``drop(times, ...)``: cut the connection half-way through a body — the client's upload, or the
  registry's answer — with a TCP reset, as a broken network path does;
* ``expire_login(...)``: answer 401 to matching requests until a client logs in again (a
  ``GET /v2/`` with credentials, as ``docker login`` sends): a session that expired mid-run;
* ``stall(seconds, times, ...)``: send half of the registry's answer, then nothing for ``seconds``
  (a path that hangs mid-body), then reset the connection;
* ``refuse()``: stop listening, and reset open connections.

With ``tls=(cert, key)`` it speaks TLS itself and ``upstream_ca`` verifies the upstream's TLS:
in front of a TLS registry it can still see, and script, every request. buildx speaks plain HTTP
to registries named by a loopback address, so a TLS proxy is reached by a host name that
/etc/hosts points at ::1 (tests/tls_registry.py).

dockerd treats 127.0.0.0/8 registries as insecure (plain HTTP), so ``--registry <proxy.address>``
works for BuildKit's push, ``buildx imagetools`` and buildctl's own registry client alike.
"""

from __future__ import annotations

import re
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import httpx

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"})
MAX_BODY = 1 << 30  # refuse to relay more than this in one body: a runaway test must not fill memory
CHUNK = 1 << 16


@dataclass
class Fault:
    kind: str  # "status" | "drop" | "stall"
    times: int  # how many matching requests get it; counts down
    status: int = 503
    retry_after: str | None = None
    method: str | None = None  # e.g. "PUT"; None matches any
    path: str = ""  # a regular expression searched in the request path; "" matches any
    agent: str = ""  # ... in the User-Agent: whose requests (buildkit, docker, buildx, python-httpx)
    seconds: float = 0.0  # stall: how long the connection stays silent

    def matches(self, method: str, path: str, agent: str) -> bool:
        return (not self.method or self.method == method) and bool(re.search(self.path, path)
                                                                   and re.search(self.agent, agent))

    def take(self, method: str, path: str, agent: str) -> bool:
        if self.times <= 0 or not self.matches(method, path, agent):
            return False
        self.times -= 1
        return True


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    outcome: str  # "forwarded 201", "injected 503", "dropped request", "dropped response"
    agent: str = ""


class FaultProxy:
    def __init__(self, upstream: str = "127.0.0.1:5000", *, lifetime: float = 300.0, max_connections: int = 64,
                 idle_timeout: float = 30.0, tls: tuple[Path, Path] | None = None,
                 upstream_ca: Path | None = None, host: str = "127.0.0.1") -> None:
        self.upstream = upstream
        self.host = host
        self.seen: list[Seen] = []
        self._faults: list[Fault] = []
        self._expired: Fault | None = None
        self._tls: ssl.SSLContext | None = None
        if tls is not None:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(*tls)
        self._lock = threading.Lock()
        self._closed = threading.Event()  # ends stalls early
        self._slots = threading.BoundedSemaphore(max_connections)
        self._connections: set[socket.socket] = set()
        self._idle_timeout = idle_timeout
        scheme, verify = ("https", ssl.create_default_context(cafile=str(upstream_ca))) if upstream_ca else ("http", True)
        self._http = httpx.Client(base_url=f"{scheme}://{upstream}", timeout=60.0, follow_redirects=False,
                                  verify=verify)
        self._server: _Server | None = None
        self.port = 0
        self._listen()
        self._timer = threading.Timer(lifetime, self.close)  # the bound on a forgotten proxy
        self._timer.daemon = True
        self._timer.start()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ------------------------------------------------------------------ scripting faults

    def fail(self, status: int, *, times: int, method: str | None = None, path: str = "", agent: str = "",
             retry_after: str | None = None) -> Fault:
        return self._add(Fault("status", times, status, retry_after, method, path, agent))

    def drop(self, *, times: int, method: str | None = None, path: str = "", agent: str = "") -> Fault:
        return self._add(Fault("drop", times, method=method, path=path, agent=agent))

    def stall(self, seconds: float, *, times: int, method: str | None = None, path: str = "",
              agent: str = "") -> Fault:
        return self._add(Fault("stall", times, method=method, path=path, agent=agent, seconds=seconds))

    def expire_login(self, *, method: str | None = None, path: str = "", renewable: bool = True) -> Fault:
        """``renewable=False``: logging in again does not help (the credentials were revoked)."""
        fault = Fault("expired" if renewable else "revoked", times=0, status=401, method=method, path=path)
        with self._lock:
            self._expired = fault
        return fault

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def refuse(self) -> None:
        """Stop listening and reset every open connection: the registry is down."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            _reset(conn)

    def count(self, outcome_prefix: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.outcome.startswith(outcome_prefix))

    def close(self) -> None:
        self._closed.set()
        self._timer.cancel()
        self.refuse()
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _listen(self) -> None:
        family = socket.getaddrinfo(self.host, None, proto=socket.IPPROTO_TCP)[0][0]  # a name may be ::1
        server = type("_FamilyServer", (_Server,), {"address_family": family})((self.host, self.port), _Handler)
        server.proxy = self
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name=f"fault-proxy-{self.port}", daemon=True).start()
        self._server = server

    def _fault_for(self, method: str, path: str, *, agent: str, authorized: bool) -> Fault | None:
        with self._lock:
            expired = self._expired
            if expired is not None:
                if authorized and method == "GET" and path == "/v2/" and expired.times:
                    self.seen.append(Seen(method, path, "login seen", agent))
                    if expired.kind == "expired":
                        self._expired = None  # a fresh login after the expiry was noticed: the session is back
                elif expired.matches(method, path, agent):
                    expired.times += 1  # counts the 401s served
                    return expired
            return next((f for f in self._faults if f.take(method, path, agent)), None)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold up refuse()
    proxy: FaultProxy

    def process_request(self, request, client_address):
        if not self.proxy._slots.acquire(blocking=False):
            _reset(request)  # over the connection bound: refuse this one
            request.close()
            return
        with self.proxy._lock:
            self.proxy._connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-request is what this proxy is for; no tracebacks

    def shutdown_request(self, request):
        with self.proxy._lock:
            known = request in self.proxy._connections
            self.proxy._connections.discard(request)
        super().shutdown_request(request)
        if known:
            self.proxy._slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.proxy._idle_timeout
        if self.server.proxy._tls is not None:  # the handshake runs in this connection's thread
            self.request.settimeout(self.timeout)
            self.request = self.server.proxy._tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self) -> None:
        super().finish()
        if self.server.proxy._tls is not None:
            self.request.close()

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def handle(self) -> None:
        # containerd tries TLS first even for insecure registries and falls back to plain HTTP
        # only when the answer looks like HTTP: answer a ClientHello (0x16) as Go's server does.
        try:
            first = b"" if self.server.proxy._tls else self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":
            self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            return
        super().handle()

    def do_any(self) -> None:
        proxy = self.server.proxy
        path = self.path.split("?", 1)[0]
        fault = proxy._fault_for(self.command, path, agent=self.headers.get("User-Agent", ""),
                                 authorized="Authorization" in self.headers)
        if fault is not None and fault.kind not in ("drop", "stall"):
            self._discard_body()
            code = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}.get(fault.status, "UNAVAILABLE")
            body = b'{"errors":[{"code":"%s","message":"injected by the test fault proxy"}]}' % code.encode()
            # Noted before it is sent: a client that gives up on this answer at once (and the test that
            # then counts it) must find it counted, not race the handler thread to its last line.
            self._note(f"injected {fault.status}")
            self.send_response(fault.status)
            if fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            if fault.status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="fault-proxy"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            return
        length = self._body_length()
        if fault is not None and fault.kind == "drop" and length:  # cut the upload half-way
            self.rfile.read(length // 2)
            self._note("dropped request")
            self._abort()
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if length is not None:
            headers.append(("Content-Length", str(length)))
        content = self._body_chunks(length) if length else None
        request = proxy._http.build_request(self.command, self.path, headers=headers, content=content)
        try:
            response = proxy._http.send(request, stream=True)
        except httpx.HTTPError:
            self._note("upstream unreachable")
            self._abort()
            return
        try:
            self._relay(response, fault=fault)
        finally:
            response.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_any

    def _note(self, outcome: str) -> None:
        path = self.path.split("?", 1)[0]
        self.server.proxy._record(Seen(self.command, path, outcome, self.headers.get("User-Agent", "")))

    def _relay(self, response: httpx.Response, *, fault: Fault | None) -> None:
        no_body = self.command == "HEAD" or response.status_code in (204, 304)
        declared = response.headers.get("Content-Length")
        body = b"" if no_body or declared is not None else response.read()  # chunked: reframe it
        self.send_response_only(response.status_code)
        for k, v in response.headers.multi_items():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        if declared is not None:
            self.send_header("Content-Length", declared)
        elif not no_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if no_body:
            self._note(f"forwarded {response.status_code}")
            return
        if declared is None:
            self.wfile.write(body)
        elif fault is not None:
            half, sent = int(declared) // 2, 0
            for chunk in response.iter_raw(CHUNK):
                self.wfile.write(chunk[: max(0, half - sent)])
                sent += len(chunk)
                if sent >= half:
                    break
            if fault.kind == "stall":
                self.wfile.flush()
                self._note("stalled response")
                self.server.proxy._closed.wait(fault.seconds)  # silent; ends early when the proxy closes
            else:
                self._note("dropped response")
            self._abort()
            return
        else:
            for chunk in response.iter_raw(CHUNK):
                self.wfile.write(chunk)
        self._note(f"forwarded {response.status_code}")

    def _body_length(self) -> int | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = self._read_chunked()
            self._buffered = data
            return len(data)
        self._buffered = None
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        length = int(value)
        if length > MAX_BODY:
            raise ValueError(f"request body of {length} bytes is over the proxy's bound")
        return length

    def _body_chunks(self, length: int) -> Iterator[bytes]:
        if self._buffered is not None:
            yield self._buffered
            return
        left = length
        while left > 0:
            chunk = self.rfile.read(min(CHUNK, left))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            left -= len(chunk)
            yield chunk

    def _read_chunked(self) -> bytes:
        parts, total = [], 0
        while True:
            size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise ValueError("chunked request body is over the proxy's bound")
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _discard_body(self) -> None:
        length = self._body_length()
        if length and self._buffered is None:
            for _ in self._body_chunks(length):
                pass

    def _abort(self) -> None:
        self.close_connection = True
        _reset(self.connection)
        self.connection.close()  # with SO_LINGER 0: the peer gets a TCP RST


def _reset(conn: socket.socket) -> None:
    """Arm a TCP RST for the close (SO_LINGER 0), as a crashed peer or a broken path sends, and wake
    the connection's thread (shutdown, not close: that thread still owns the descriptor)."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # already closed

"""Real git remotes for tests/test_gitops.py: a bare repository on disk, and the same served over
smart HTTP (``git http-backend`` as CGI behind wsgiref) with Basic authentication."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

REG = "127.0.0.1:5000/voting-app"
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "seed", "GIT_AUTHOR_EMAIL": "seed@localhost",
    "GIT_COMMITTER_NAME": "seed", "GIT_COMMITTER_EMAIL": "seed@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def deployment(name: str, tag: str = "41", newline: str = "\n") -> str:
    """A commented Deployment: container ``name`` of REG/name, plus a toolbox sidecar of REG."""
    lines = [f"# {name}: image set by buildctl", "apiVersion: apps/v1", "kind: Deployment",
             f"metadata: {{name: {name}}}", "spec:", "  template:", "    spec:", "      containers:",
             f"        - name: {name}", f"          image: {REG}/{name}:{tag}",
             "        - name: toolbox", f"          image: {REG}/toolbox:{tag}", ""]  # fmt: skip
    return newline.join(lines)


def make_remote(where: Path, files: Mapping[str, str], *, branch: str = "main") -> Path:
    """A bare repository whose ``branch`` holds ``files`` (written byte-exact) in one commit."""
    seed, bare = where / "seed", where / "remote.git"
    git("init", "--quiet", "--initial-branch", branch, str(seed))
    for path, text in files.items():
        (seed / path).parent.mkdir(parents=True, exist_ok=True)
        (seed / path).write_bytes(text.encode())
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "seed", cwd=seed)
    git("clone", "--quiet", "--bare", str(seed), str(bare))
    return bare


def log(bare: Path, branch: str = "main", *paths: str) -> list[str]:
    """Full commit messages on ``branch`` (newest first), optionally only those touching ``paths``."""
    out = git("log", "--format=%B%x00", branch, "--", *paths, cwd=bare)
    return [m.strip() for m in out.split("\x00") if m.strip()]


def show(bare: Path, branch: str, path: str) -> bytes:
    return subprocess.run(["git", "show", f"{branch}:{path}"], cwd=bare, check=True, capture_output=True).stdout


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


class GitHttp:
    """WSGI app running ``git http-backend``; every request must carry Basic auth with ``token``."""

    def __init__(self, project_root: Path, token: str) -> None:
        self.root, self.token = project_root, token
        self.requests: list[tuple[str, str, bool]] = []  # (method, path?query, authorized)

    def __call__(self, environ, start_response):
        scheme, _, credentials = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        try:
            _, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:
            password = ""
        ok = scheme == "Basic" and password == self.token
        self.requests.append((environ["REQUEST_METHOD"], f"{environ['PATH_INFO']}?{environ['QUERY_STRING']}", ok))
        if not ok:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="gitops"'), ("Content-Length", "0")])
            return [b""]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        cgi_env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": environ["REQUEST_METHOD"], "PATH_INFO": environ["PATH_INFO"],
            "QUERY_STRING": environ.get("QUERY_STRING", ""), "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "buildctl", "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": environ.get("HTTP_GIT_PROTOCOL", ""),
            "HTTP_CONTENT_ENCODING": environ.get("HTTP_CONTENT_ENCODING", ""),
        }  # fmt: skip
        out = subprocess.run(["git", "http-backend"], input=body, env=cgi_env, capture_output=True, check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in head.decode().splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name.lower() != "content-length":
                headers.append((name, value.strip()))
        start_response(status, [*headers, ("Content-Length", str(len(payload)))])
        return [payload]


@contextmanager
def serve_wsgi(app) -> Iterator[str]:
    """Serve a WSGI ``app`` on an ephemeral 127.0.0.1 port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_http(project_root: Path, token: str) -> Iterator[tuple[str, GitHttp]]:
    """Serve ``project_root`` over smart HTTP with Basic auth: yields (base URL, app)."""
    app = GitHttp(project_root, token)
    with serve_wsgi(app) as url:
        yield url, app


class CmdlineWatcher:
    """Polls /proc/*/cmdline while running: what ``ps`` would show other users of the machine."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if proc.name.isdigit():
                    try:
                        self.seen.add((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
                    except OSError:
                        pass  # the process exited meanwhile

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

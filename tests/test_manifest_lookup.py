"""The tests' "is this tag there?" helper: absence only on the registry's own 404 manifest unknown."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers.cli import REGISTRY
from tests.helpers.manifest_lookup import LookupError_, manifest_digest


@contextmanager
def answering(status: int, body: bytes = b"") -> Iterator[tuple[str, list[int]]]:
    """A loopback server answering every GET with ``status``; yields its base URL and a hit counter."""
    hits: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            hits.append(status)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [401, 403, 429])
def test_an_auth_or_rate_answer_is_an_error_not_absence(status: int) -> None:
    with answering(status) as (base, _), pytest.raises(LookupError_, match=f"HTTP {status}"):
        manifest_digest(f"{base}/v2/x/manifests/1")


def test_a_registry_500_is_asked_again_then_an_error() -> None:
    with answering(500) as (base, hits), pytest.raises(LookupError_, match="HTTP 500"):
        manifest_digest(f"{base}/v2/x/manifests/1")
    assert len(hits) == 4


def test_a_404_without_manifest_unknown_is_not_absence() -> None:
    # A proxy's or web server's 404 (wrong path, wrong host) says nothing about the tag.
    with answering(404, b"<html>not found</html>") as (base, _), pytest.raises(LookupError_, match="404 without"):
        manifest_digest(f"{base}/v2/x/manifests/1")


def test_manifest_unknown_is_absence() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}).encode()
    with answering(404, body) as (base, _):
        assert manifest_digest(f"{base}/v2/x/manifests/1") is None


@pytest.mark.engine
def test_the_real_registry_says_unknown_for_a_tag_never_pushed() -> None:
    assert manifest_digest(f"http://{REGISTRY}/v2/buildctl/base/manifests/never-pushed-tag") is None
    assert manifest_digest(f"http://{REGISTRY}/v2/buildctl/base/manifests/bookworm-1").startswith("sha256:")

"""The registry clients' TLS context: CA certificates loaded by the first TLS connection, or beside
start-up for a release to a TLS registry, and unreadable CA settings as one clear error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from buildctl.errors import UsageError
from buildctl.registry import tls
from buildctl.registry.client import RegistryClient, RetryPolicy
from tests.helpers.cli import run_cli

FAST = RetryPolicy(attempts=1, total_seconds=5, initial_wait=0.01, max_wait=0.05)


@pytest.fixture(autouse=True)
def fresh_contexts(monkeypatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls._context.cache_clear()
    yield
    tls._context.cache_clear()


@pytest.fixture
def tcp_listener() -> Iterator[str]:
    """A loopback port that accepts connections and says nothing: a TLS client's handshake would wait."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.engine
def test_a_local_registry_is_used_without_loading_any_ca() -> None:
    with RegistryClient(retry=FAST) as client:
        client.ping("127.0.0.1:5000")
        client.get_manifest("127.0.0.1:5000/buildctl/base:bookworm-1")
    assert tls.tls_context().cert_store_stats()["x509_ca"] == 0


def test_the_preloaded_context_is_the_one_clients_use() -> None:
    tls.preload()
    context = tls.tls_context()
    context.load_certificates()  # waits for the preload rather than loading the CAs again
    assert context is tls.tls_context() and tls._context.cache_info().misses == 1
    assert context.cert_store_stats()["x509_ca"] > 0  # certifi's CAs


def test_a_tls_connection_loads_the_certificates_first(tcp_listener: str) -> None:
    """The handshake with a silent server times out, but only after the CAs were loaded for it."""
    with RegistryClient(retry=FAST, scheme="https", timeout=0.5) as client:
        with pytest.raises(Exception):
            client.ping(tcp_listener)
    assert tls.tls_context().cert_store_stats()["x509_ca"] > 0


def test_unreadable_ca_settings_are_one_clear_error_at_the_first_tls_connection(monkeypatch, tmp_path,
                                                                               tcp_listener: str) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    expected = r"^cannot load the CA certificates of SSL_CERT_FILE=.*missing\.pem .*No such file or directory$"
    with pytest.raises(UsageError, match=expected):
        tls.tls_context().load_certificates()
    with RegistryClient(retry=FAST, scheme="https", timeout=5) as client, pytest.raises(UsageError, match=expected):
        client.ping(tcp_listener)  # not "unreachable": the settings are what is wrong
    tls._try_load()  # the side thread's call: nothing raised, nothing printed
    # The preload thread of a release that stops early (here: no services.yaml) prints no traceback.
    result = run_cli("build", "-c", "nowhere/services.yaml", env={"SSL_CERT_FILE": str(tmp_path / "missing.pem")})
    assert result.code == 2 and "Traceback" not in result.stderr and "Exception in thread" not in result.stderr

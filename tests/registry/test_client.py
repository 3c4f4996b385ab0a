"""RegistryClient against real registries: the stack's, and registry processes with Basic/Bearer auth."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildctl.errors import OperationError
from buildctl.inspect.layers import LayerCache, scan_layer
from buildctl.inspect.verify import verify_image
from buildctl.registry.auth import is_loopback, parse_challenge
from buildctl.registry.client import RegistryClient, RegistryCredentials, RetryPolicy
from buildctl.registry.wire import DigestMismatchError, DigestReader, parse_retry_after
from tests.helpers.elf import elf_for
from tests.helpers.registry import PASSWORD, UPSTREAM, USER, FrontServer, free_port
from tests.registry.conftest import REPO

FAST = RetryPolicy(attempts=3, total_seconds=10, initial_wait=0.01, max_wait=0.05)
GOOD = RegistryCredentials(USER, PASSWORD)
WRONG = RegistryCredentials(USER, "not-the-password")


@pytest.fixture
def client() -> Iterator[RegistryClient]:
    with RegistryClient(retry=FAST) as c:
        yield c


# ------------------------------------------------------------------ the stack's registry (anonymous)


@pytest.mark.engine
def test_manifests_blobs_and_head(image: str, client: RegistryClient) -> None:
    by_tag = client.get_manifest(f"{UPSTREAM}/{REPO}:1")
    assert by_tag.digest == image and by_tag.is_index
    by_digest = client.get_manifest(f"{UPSTREAM}/{REPO}@{image}")
    assert by_digest == by_tag
    head = client.head_manifest(f"{UPSTREAM}/{REPO}:1")
    assert head is not None and (head.digest, head.size) == (image, len(by_tag.content))
    assert client.head_manifest(f"{UPSTREAM}/{REPO}:missing") is None
    assert client.find_manifest(f"{UPSTREAM}/{REPO}:1") == by_tag  # one GET: what HEAD then GET read
    assert client.find_manifest(f"{UPSTREAM}/{REPO}:missing") is None
    with pytest.raises(OperationError, match="does not exist"):  # get_manifest still refuses what is missing
        client.get_manifest(f"{UPSTREAM}/{REPO}:missing")
    amd64 = next(m for m in by_tag.json()["manifests"] if m["platform"]["architecture"] == "amd64")
    manifest = client.get_manifest(f"{UPSTREAM}/{REPO}@{amd64['digest']}")
    assert manifest.media_type == "application/vnd.oci.image.manifest.v1+json" and not manifest.is_index
    config = json.loads(client.get_blob(f"{UPSTREAM}/{REPO}", manifest.json()["config"]["digest"]))
    assert config["architecture"] == "amd64" and config["config"]["Entrypoint"] == ["/app"]
    (layer,) = manifest.json()["layers"]
    table = client.stream_blob(f"{UPSTREAM}/{REPO}", layer["digest"], scan_layer)
    assert table.entries["/app"].head[:20] == elf_for("amd64")[:20]


@pytest.mark.engine
def test_unknown_blob_names_it(client: RegistryClient) -> None:
    digest = "sha256:" + "0" * 64
    with pytest.raises(OperationError, match=f"^blob {digest} of {UPSTREAM}/{REPO} not found"):
        client.get_blob(f"{UPSTREAM}/{REPO}", digest)


@pytest.mark.engine
def test_https_override_is_used(image: str) -> None:
    with RegistryClient(scheme="https", retry=FAST) as c, pytest.raises(OperationError, match="unreachable"):
        c.get_manifest(f"{UPSTREAM}/{REPO}:1")  # the stack's registry speaks plain HTTP only


# ------------------------------------------------------------------ failures and retries


def test_unreachable_registry_is_retried_then_reported(client: RegistryClient, caplog) -> None:
    port = free_port()  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="buildctl.registry.client"), pytest.raises(OperationError) as err:
        client.get_manifest(f"127.0.0.1:{port}/app:1")
    assert str(err.value).startswith(f"registry 127.0.0.1:{port} unreachable (ConnectError")
    assert "gave up after at most 3 attempts" in str(err.value)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith(f"manifest 127.0.0.1:{port}/app:1: ConnectError")
    assert "(attempt 1 of 3 failed)" in messages[0] and "(attempt 2 of 3 failed)" in messages[1]


@pytest.mark.engine
def test_503_with_retry_after_is_waited_out(image: str, client: RegistryClient, caplog) -> None:
    front = FrontServer(lambda n, path: (503, {"Retry-After": "1"}) if n == 1 else None)
    try:
        start = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="buildctl.registry.client"):
            manifest = client.get_manifest(f"{front.address}/{REPO}:1")
        assert manifest.digest == image
        assert time.monotonic() - start >= 1.0  # honoured, not the 0.01 s backoff
        (record,) = caplog.records
        assert "HTTP 503, Retry-After 1s; retrying in 1.0s (attempt 1 of 3 failed)" in record.getMessage()
    finally:
        front.close()


def test_persistent_503_gives_up(client: RegistryClient) -> None:
    front = FrontServer(lambda n, path: (503, {"Retry-After": "0"}))
    try:
        with pytest.raises(OperationError, match=r"answered HTTP 503 \(gave up after at most 3 attempts"):
            client.get_manifest(f"{front.address}/{REPO}:1")
        assert front.count == 3
    finally:
        front.close()


def test_client_errors_are_not_retried(client: RegistryClient) -> None:
    front = FrontServer(lambda n, path: (401, {"WWW-Authenticate": 'Basic realm="x"'}))
    try:
        with pytest.raises(OperationError, match=r"requires authentication \(HTTP 401\)"):
            client.get_manifest(f"{front.address}/{REPO}:1")
        assert front.count == 1
    finally:
        front.close()


def test_credentials_never_go_to_a_plain_http_realm() -> None:
    challenge = 'Bearer realm="http://auth.example.invalid/token",service="x",scope="repository:a:pull"'
    front = FrontServer(lambda n, path: (401, {"WWW-Authenticate": challenge}))
    try:
        with RegistryClient(credentials={front.address: GOOD}, retry=FAST) as c, \
                pytest.raises(OperationError, match=r"over plain HTTP \(auth.example.invalid\); refusing"):
            c.get_manifest(f"{front.address}/a:1")
    finally:
        front.close()


# ------------------------------------------------------------------ authentication, real registries


def _no_secret_in(text: str) -> None:
    assert PASSWORD not in text
    assert "Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5" not in text  # base64 of the password, as in a Basic header


@pytest.mark.engine
def test_basic_auth(basic_registry: str, image: str, caplog) -> None:
    ref = f"{basic_registry}/{REPO}:1"
    with RegistryClient(retry=FAST) as anonymous, pytest.raises(OperationError, match=r"requires authentication"):
        anonymous.get_manifest(ref)
    with RegistryClient(credentials={basic_registry: WRONG}, retry=FAST) as wrong, \
            pytest.raises(OperationError, match=rf"^registry {basic_registry} rejected the credentials \(HTTP 401\)"):
        wrong.get_manifest(ref)
    with caplog.at_level(logging.DEBUG), RegistryClient(credentials={basic_registry: GOOD}, retry=FAST) as good:
        assert good.get_manifest(ref).digest == image
    _no_secret_in(caplog.text)


@pytest.mark.engine
def test_bearer_token_flow(bearer_registry, image: str, tmp_path: Path, caplog) -> None:
    address, tokens = bearer_registry
    ref = f"{address}/{REPO}:1"
    with RegistryClient(retry=FAST) as anonymous, \
            pytest.raises(OperationError, match=rf"^registry {address} refused anonymous access \(token endpoint"):
        anonymous.get_manifest(ref)
    with RegistryClient(credentials={address: WRONG}, retry=FAST) as wrong, pytest.raises(OperationError) as err:
        wrong.get_manifest(ref)
    assert str(err.value) == f"registry {address} refused user 'alice' (token endpoint answered HTTP 401)"
    tokens.requests.clear()
    with caplog.at_level(logging.DEBUG), RegistryClient(credentials={address: GOOD}, retry=FAST) as good:
        v = verify_image(ref, platforms=["linux/amd64", "linux/arm64"], client=good, layers=LayerCache(tmp_path))
    assert v.ok and v.index_digest == image, v.checks
    # One token for the repository, reused for the index, manifests, configs and layers.
    assert tokens.requests == [{"service": "buildctl-test-registry", "scope": f"repository:{REPO}:pull"}]
    _no_secret_in(caplog.text)


# ------------------------------------------------------------------ pure parts


def test_credentials_repr_hides_password() -> None:
    assert repr(GOOD) == "RegistryCredentials(username='alice', password='***')"
    assert PASSWORD not in str(GOOD)


@pytest.mark.parametrize(("header", "scheme", "params"), [
    ('Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io",'
     'scope="repository:voting-app/vote:pull"', "bearer",
     {"realm": "https://myacr.azurecr.io/oauth2/token", "service": "myacr.azurecr.io",
      "scope": "repository:voting-app/vote:pull"}),
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:samalba/my-app:pull,push"', "bearer",
     {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
      "scope": "repository:samalba/my-app:pull,push"}),
    ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
    ("Basic realm=plain, charset=UTF-8", "basic", {"realm": "plain", "charset": "UTF-8"}),
])
def test_parse_challenge(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None and (challenge.scheme, dict(challenge.params)) == (scheme, params)
    assert parse_challenge("") is None


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1:5000", True), ("127.1.2.3", True), ("localhost:5000", True), ("[::1]:5000", True), ("::1", True),
    ("10.0.0.1:5000", False), ("myacr.azurecr.io", False), ("localhost.example.com", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < parse_retry_after(future) <= 30
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_digest_reader_rejects_other_bytes() -> None:
    good = DigestReader(iter([b"ab", b"c"]), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert io.BufferedReader(good).read(1) == b"a"
    good.verify()  # the unread rest still counts
    with pytest.raises(DigestMismatchError, match="arrived as sha256:ba78"):
        DigestReader(iter([b"abc"]), "sha256:" + "0" * 64).verify()

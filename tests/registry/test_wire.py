"""buildctl.registry.wire: what a hostile or sloppy registry's bytes and headers turn into.
Pure: real httpx responses built in memory, bodies as chunk iterators (some endless)."""

from __future__ import annotations

import email.utils
import hashlib
import io
import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from buildctl import interrupts
from buildctl.errors import OperationError
from buildctl.references import parse_reference
from buildctl.registry.bounds import Deadline, LimitError
from buildctl.registry.wire import (
    DOCKER_LIST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    DigestMismatchError,
    DigestReader,
    TransientStatusError,
    media_type_from_body,
    parse_retry_after,
    read_capped,
    reason,
    refuse_length,
    sha256_digest,
    status_error,
)

REF = parse_reference("reg.example:5000/team/app:1")
ABC = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def never_again(chunks: list[bytes]) -> Iterator[bytes]:
    """The chunks, then a failure if anyone asks for more: proves a reader stopped in time."""
    yield from chunks
    pytest.fail("read past the point where it should have stopped")


def test_sha256_digest_and_accept() -> None:
    assert sha256_digest(b"") == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert sha256_digest(b"abc") == ABC
    assert MANIFEST_ACCEPT.split(", ")[:2] == [OCI_INDEX, DOCKER_LIST]  # indexes first: never a single platform


# ------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0), (" 7 ", 7.0), ("120", 120.0), ("", None), (None, None), ("-1", None), ("1.5", None), ("1e3", None),
    ("soon", None), ("Mon, 99 Foo 2020 00:00:00 GMT", None), ("Sun, 06 Nov 1994 25:49:37 GMT", None),
    # dates in the past (all three HTTP date formats, RFC 9110 5.6.7): no wait
    ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0), ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0), ("Sun Nov  6 08:49:37 1994", 0.0),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_retry_after_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 < parse_retry_after(when) <= 90


@pytest.mark.parametrize("value", ["\u00b2", "1\u00b9"])
def test_retry_after_with_superscript_digits_is_ignored(value: str) -> None:
    assert parse_retry_after(value) is None


# ------------------------------------------------------------------ DigestReader


def test_digest_reader_small_reads_across_chunks_and_empty_chunks() -> None:
    data = b"0123456789" * 5
    reader = DigestReader(iter([b"", data[:3], b"", b"", data[3:31], data[31:]]), digest(data), size=len(data))
    buffered = io.BufferedReader(reader, buffer_size=4)
    out = b"".join(iter(lambda: buffered.read(3), b""))
    assert out == data and reader.received == len(data)
    reader.verify()


def test_digest_reader_size_is_exact() -> None:
    DigestReader(iter([b"ab", b"c"]), ABC, size=3).verify()
    with pytest.raises(LimitError, match=rf"^blob {ABC} is larger than the 2 bytes its descriptor says$"):
        DigestReader(iter([b"ab", b"c"]), ABC, size=2).verify()


def test_digest_reader_stops_at_the_first_chunk_past_size() -> None:
    reader = DigestReader(never_again([b"x" * 10, b"x"]), "sha256:" + "0" * 64, size=10)
    with pytest.raises(LimitError, match="larger than the 10 bytes"):
        io.BufferedReader(reader).read()
    endless = DigestReader(itertools.repeat(b"y" * 4096), "sha256:" + "0" * 64, size=1 << 20)
    with pytest.raises(LimitError):
        endless.verify()  # the unread rest is bounded too
    assert endless.received == (1 << 20) + 4096


def test_digest_reader_zero_size_and_empty_body() -> None:
    empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    DigestReader(iter([]), empty, size=0).verify()
    with pytest.raises(LimitError):
        DigestReader(iter([b"\0"]), empty, size=0).verify()


@pytest.mark.parametrize("claimed", [ABC.upper().replace("SHA256", "sha256"), "sha512:" + ABC[7:], ABC[7:], ABC + "00"])
def test_digest_reader_compares_exactly(claimed: str) -> None:
    with pytest.raises(DigestMismatchError, match=f"^blob {claimed} arrived as {ABC}$"):
        DigestReader(iter([b"abc"]), claimed).verify()


def test_digest_reader_verify_hashes_what_the_consumer_left() -> None:
    reader = DigestReader(iter([b"a", b"b", b"c"]), "sha256:" + "1" * 64)
    assert reader.read(1) == b"a"
    with pytest.raises(DigestMismatchError):
        reader.verify()
    assert reader.received == 3


def test_digest_reader_ends_a_drip_fed_body_on_time() -> None:
    reader = DigestReader(itertools.repeat(b"z"), "sha256:" + "0" * 64, deadline=Deadline(0.2, what="layer"))
    start = time.monotonic()
    with pytest.raises(LimitError, match=r"^layer: deadline of 0.2 s exceeded"):
        reader.verify()
    assert time.monotonic() - start < 2


def test_digest_reader_stops_on_interrupt() -> None:
    reader = DigestReader(iter([b"abc"]), ABC, deadline=Deadline(60))
    interrupts.interrupted.set()
    try:
        with pytest.raises(KeyboardInterrupt):
            reader.read(1)
    finally:
        interrupts.interrupted.clear()
    assert reader.received == 0


# ------------------------------------------------------------------ read_capped, refuse_length


def test_read_capped_boundary() -> None:
    assert read_capped(iter([b"ab", b"cd"]), cap=4, what="manifest", deadline=None) == b"abcd"
    assert read_capped(iter([]), cap=0, what="manifest", deadline=None) == b""
    with pytest.raises(LimitError, match=r"^manifest of x is larger than 3 bytes \(limit\)$"):
        read_capped(never_again([b"ab", b"cd"]), cap=3, what="manifest of x", deadline=None)


def test_read_capped_ends_an_endless_body() -> None:
    with pytest.raises(LimitError, match="larger than 65536 bytes"):
        read_capped(itertools.repeat(b"{" * 1000), cap=65536, what="error body", deadline=None)


def test_read_capped_ends_endless_empty_chunks_on_time() -> None:
    with pytest.raises(LimitError, match="deadline of 0.1 s exceeded"):
        read_capped(itertools.repeat(b""), cap=10, what="manifest", deadline=Deadline(0.1))


@pytest.mark.parametrize(("length", "refused"), [
    ("1025", True), ("99999999999999999999", True), ("1024", False), ("0", False), ("", False),
    ("-1", False), ("1e9", False), ("10, 10", False), ("abc", False),
])
def test_refuse_length(length: str, refused: bool) -> None:
    response = httpx.Response(200, headers={"Content-Length": length} if length else {})
    if refused:
        with pytest.raises(LimitError, match=rf"^config is {int(length)} bytes \(Content-Length\); the limit is 1024$"):
            refuse_length(response, 1024, "config")
    else:
        refuse_length(response, 1024, "config")  # left to read_capped, which counts the real bytes


# ------------------------------------------------------------------ reason, media types


@pytest.mark.parametrize(("exc", "text"), [
    (TransientStatusError(503, 1.5), "HTTP 503, Retry-After 1.5s"),
    (TransientStatusError(429, 120.0), "HTTP 429, Retry-After 120s"),
    (TransientStatusError(502, 0.0), "HTTP 502, Retry-After 0s"),
    (TransientStatusError(504, None), "HTTP 504"),
    (httpx.ReadTimeout("timed out"), "ReadTimeout: timed out"),
    (httpx.RemoteProtocolError(""), "RemoteProtocolError"),
])
def test_reason(exc: BaseException, text: str) -> None:
    assert reason(exc) == text


@pytest.mark.parametrize(("body", "media_type"), [
    (b'{"mediaType": "application/vnd.oci.image.manifest.v1+json"}', OCI_MANIFEST),
    (b'{"manifests": []}', OCI_INDEX),
    (b'{"mediaType": null, "manifests": []}', OCI_INDEX),
    (b'{"mediaType": "' + DOCKER_LIST.encode() + b'", "manifests": []}', DOCKER_LIST),
    (b'{"mediaType": 5, "manifests": []}', None),
    (b'{"mediaType": ["x"]}', None), (b"{}", None), (b"[]", None), (b'"manifests"', None), (b"null", None),
    (b"", None), (b"<html>", None), (b"\xff\xff", None), (b'{"manifests": [] ', None),
    (b'\xef\xbb\xbf{"manifests": []}', OCI_INDEX),  # a UTF-8 BOM is tolerated (the digest covers it anyway)
])
def test_media_type_from_body(body: bytes, media_type: str | None) -> None:
    assert media_type_from_body(body) == media_type


def test_media_type_from_a_deep_body_is_a_limit() -> None:
    with pytest.raises(LimitError, match="^manifest nests JSON deeper than 64 levels"):
        media_type_from_body(b'{"manifests": ' + b"[" * 100 + b"]" * 100 + b"}")


# ------------------------------------------------------------------ status_error


def answered(status: int, body: bytes = b"", *, authorization: str | None = None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization else {}
    request = httpx.Request("GET", "https://reg.example:5000/v2/team/app/manifests/1", headers=headers)
    return httpx.Response(status, content=body, request=request)


def errors(*items: str) -> bytes:
    return ('{"errors": [' + ", ".join(items) + "]}").encode()


@pytest.mark.parametrize(("response", "what", "message", "hint"), [
    (answered(403, errors('{"code": "DENIED", "message": "nope"}')), "blob b",
     "registry reg.example:5000 denied access (HTTP 403) to blob b", None),
    (answered(404, errors('{"code": "NAME_UNKNOWN"}')), "blob b",
     "repository reg.example:5000/team/app does not exist (wanted blob b)", None),
    (answered(404, errors('{"code": "MANIFEST_UNKNOWN"}')), "tag t",
     "manifest unknown: reg.example:5000/team/app:1 does not exist in reg.example:5000", None),
    (answered(404), "manifest of x", "manifest unknown: reg.example:5000/team/app:1 does not exist in reg.example:5000",
     None),
    (answered(404, b"<html>not found</html>"), "blob b", "blob b not found in reg.example:5000 (HTTP 404)", None),
    (answered(400, errors('{"code": "A", "message": "first"}', '{"code": "B"}', '{"message": "second"}')), "tag t",
     "tag t: registry reg.example:5000 answered HTTP 400: first; second", None),
])
def test_status_error_messages(response: httpx.Response, what: str, message: str, hint: str | None) -> None:
    error = status_error(response, REF, what)
    assert isinstance(error, OperationError) and (error.message, error.hint) == (message, hint)


@pytest.mark.parametrize("body", [
    b"", b"null", b"[1, 2]", b'"errors"', b'{"errors": "boom"}', b'{"errors": {"code": "X"}}', b'{"errors": [1, "x"]}',
    b'{"errors": null}', b"[" * 5000, b'{"errors": [{"code": "X", "message": ""}]}',
])
def test_status_error_survives_any_body(body: bytes) -> None:
    assert status_error(answered(500, body), REF, "blob b").message == "blob b: registry reg.example:5000 answered HTTP 500"


@pytest.mark.parametrize("code", ['["NAME_UNKNOWN"]', '{"a": 1}'])
def test_status_error_with_an_unhashable_code(code: str) -> None:
    error = status_error(answered(400, errors(f'{{"code": {code}, "message": "m"}}')), REF, "blob b")
    assert error.message == "blob b: registry reg.example:5000 answered HTTP 400: m"


def test_status_error_message_stays_one_line() -> None:
    body = errors('{"message": "bad\\nbuildctl: release 1 verified and tagged\\u001b[2K"}')
    message = status_error(answered(400, body), REF, "blob b").message
    assert "\n" not in message and "\x1b" not in message

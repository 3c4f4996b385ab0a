"""buildctl.jsonsafe: JSON from outside, nesting and numbers bounded, refused as a JSONDecodeError with a line;
files read only when regular and small enough."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from buildctl import jsonsafe


@pytest.mark.parametrize("doc", [
    "[" * 100_000 + "]" * 100_000,  # RecursionError in json.loads
    '{"a":\n' * 65 + "1" + "}" * 65,
    b'{"config": ' + b"[" * 70 + b"]" * 70 + b"}",
    "[" * 70,  # not even valid: refused for depth first, without recursing
])
def test_too_deep_is_a_decode_error(doc: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        jsonsafe.loads(doc)
    assert isinstance(info.value, jsonsafe.JSONTooDeep)
    assert info.value.msg == f"nested deeper than {jsonsafe.MAX_DEPTH} levels"


def test_the_line_is_where_the_limit_was_crossed() -> None:
    with pytest.raises(jsonsafe.JSONTooDeep) as info:
        jsonsafe.loads('{"a":\n' * 70 + "1" + "}" * 70)
    assert info.value.lineno == jsonsafe.MAX_DEPTH + 1


@pytest.mark.parametrize("doc", [
    '{"s": "' + "[" * 10_000 + '"}',  # brackets inside strings do not count
    '{"s": "\\"[[[[", "t": ["]]]]"]}',  # nor after an escaped quote
    "[" * 64 + "]" * 64,
    b'{"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"platform": {"os": "linux"}}]}',
])
def test_within_the_bound_it_is_json_loads(doc: str | bytes) -> None:
    assert jsonsafe.loads(doc) == json.loads(doc)


def test_invalid_json_stays_invalid_json() -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        jsonsafe.loads('{"a": }')
    assert not isinstance(info.value, jsonsafe.JSONTooDeep)


@pytest.mark.parametrize("doc", [
    '{"n": ' + "1" * 100_000 + "}",  # ValueError in json.loads (int_max_str_digits), quadratic below it
    '[1, 2,\n -' + "9" * 101 + "]",
    "[0." + "5" * 101 + "]",
    "[1e" + "0" * 101 + "]",
    b'{"size": ' + b"7" * 101 + b"}",
])
def test_a_number_too_long_is_a_decode_error(doc: str | bytes) -> None:
    with pytest.raises(json.JSONDecodeError) as info:
        jsonsafe.loads(doc)
    assert isinstance(info.value, jsonsafe.JSONNumberTooLong) and isinstance(info.value, jsonsafe.JSONOutOfBounds)
    assert info.value.msg == f"a number of more than {jsonsafe.MAX_DIGITS} digits"


def test_the_line_of_a_long_number() -> None:
    with pytest.raises(jsonsafe.JSONNumberTooLong) as info:
        jsonsafe.loads('{\n"a": 1,\n"b": ' + "2" * 500 + "}")
    assert (info.value.lineno, info.value.colno) == (3, 6)


@pytest.mark.parametrize("doc", [
    '{"digest": "sha256:' + "1" * 64 + '", "blob": "' + "7" * 10_000 + '"}',  # digits inside strings are text
    '{"size": ' + "9" * 100 + "}",  # exactly the bound
    "[" + ", ".join(["12345678901234567890"] * 1000) + "]",
])
def test_numbers_within_the_bound_and_digits_in_strings(doc: str) -> None:
    assert jsonsafe.loads(doc) == json.loads(doc)


def test_the_scan_stays_linear() -> None:
    doc = "[" + ",".join(["9" * 100] * 20_000) + "]"  # 2 MB of numbers just under the bound
    start = time.monotonic()
    assert len(jsonsafe.loads(doc)) == 20_000
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("doc", ['"' + '\\"' * 2_000_000, b'{"a": "' + b'\\"' * 2_000_000, '"x\\'],
                         ids=["escaped-quotes", "bytes", "ends-in-a-backslash"])
def test_an_unterminated_string_is_scanned_once(doc: str | bytes) -> None:
    """A failed string match was retried from every quote inside it: '"\\"\\"…' of 80 KB took 46 s
    (quadratic: a 4 MiB manifest from a registry, hours). Now linear, and invalid JSON as before."""
    start = time.monotonic()
    with pytest.raises(json.JSONDecodeError, match="Unterminated string"):
        jsonsafe.loads(doc)
    assert time.monotonic() - start < 2


def test_read_file_refuses_what_is_not_a_regular_file_and_what_is_too_large(tmp_path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(jsonsafe.NotARegularFile) as info:
            jsonsafe.read_file(path, max_bytes=10)
        assert not stat.S_ISREG(info.value.mode)
    regular = tmp_path / "r.json"
    regular.write_bytes(b"x" * 11)
    with pytest.raises(jsonsafe.FileTooLarge):
        jsonsafe.read_file(regular, max_bytes=10)
    assert jsonsafe.read_file(regular, max_bytes=11) == b"x" * 11
    with pytest.raises(FileNotFoundError):
        jsonsafe.read_file(tmp_path / "missing", max_bytes=10)


DEEP = b"[" * 100_000 + b"]" * 100_000


def test_every_reader_of_registry_json_answers_a_deep_document_without_crashing() -> None:
    """Issue #24: a claim manifest, a token's JWT claims and an attestation envelope, all from a
    registry, went to json.loads: RecursionError, exit 3 (the tag list: test_guard.py)."""
    import base64

    from buildctl.registry import access, claim_docs
    from buildctl.signing import attestation

    assert claim_docs.parse_claim("team/app", "buildctl-claim-x", DEEP) is None
    payload = base64.urlsafe_b64encode(DEEP).decode().rstrip("=")
    assert access._granted_actions(f"e30.{payload}.sig", "team/app") is None
    assert attestation._statement(DEEP.decode()) is None
    envelope = json.dumps({"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(DEEP).decode()})
    assert attestation._statement(envelope) is None


def test_the_fast_measure_agrees_with_the_token_scan() -> None:
    """bounds_error measures at C speed first (a cached layer table: ~20,000 arrays and strings)
    and scans token by token only for a document it cannot pass; the two must agree on every
    document, strings holding brackets, quotes and digits included."""
    import random

    pieces = ["[", "]", "{", "}", '"', '\\"', "\\", ",", "1", "9" * 60, "9" * 101, '"[["', '"]}"', "x", ":"]
    rng = random.Random(20)
    for _ in range(3000):
        doc = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        depth = rng.choice([2, 3, 64])
        for form in (doc, doc.encode()):
            exact = jsonsafe._first_bounds_error(form, max_depth=depth)
            assert type(jsonsafe.bounds_error(form, max_depth=depth)) is type(exact), form
            if jsonsafe._within_bounds(form, max_depth=depth):
                assert exact is None, form


def test_a_large_table_is_measured_fast() -> None:
    doc = json.dumps({"format": 5, "entries": [[f"usr/lib/file{i}", "f", 420, "", "f0VMRgIBAQ"] for i in range(50_000)]})
    start = time.monotonic()
    assert jsonsafe.bounds_error(doc) is None and jsonsafe.bounds_error(doc.encode()) is None
    assert time.monotonic() - start < 0.5  # the token loop took ~1 s here

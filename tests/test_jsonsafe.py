"""buildctl.jsonsafe: JSON from outside, nesting bounded, refused as a JSONDecodeError with a line."""

from __future__ import annotations

import json

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

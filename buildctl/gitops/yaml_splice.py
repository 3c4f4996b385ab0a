"""Surgery on YAML *text* guided by PyYAML nodes: replace a scalar, add or remove a mapping key.

Each operation returns a ``Splice`` (offsets into the original text, and what goes there) built
from the nodes' ``start_mark``/``end_mark``; ``apply_splices`` applies a batch. The text around a
splice is never touched, so comments, quoting, indentation and line endings survive — unlike a
load/dump round trip, which rewrites the whole file.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from itertools import pairwise

import yaml
from yaml.nodes import MappingNode, ScalarNode

from buildctl.errors import ConfigError, OperationError


@dataclass(frozen=True)
class Splice:
    start: int
    end: int
    text: str


def render_scalar(value: str, style: str | None) -> str:
    """``value`` as a YAML scalar in ``style`` (None or "" = plain — PyYAML and libyaml differ —
    unless plain would not be a string)."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if not style and not any(c in value for c in ",[]{}#\"'") and _reads_back(value):
        return value
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


@functools.lru_cache(maxsize=1024)  # one release writes the same reference into many files
def _reads_back(plain: str) -> bool:
    """True if ``plain`` unquoted loads as this very string (``42``, ``1.10``, ``yes`` do not)."""
    try:
        return yaml.safe_load(plain) == plain
    except yaml.YAMLError:
        return False


def replace_scalar(text: str, node: ScalarNode, value: str, *, path: str) -> Splice:
    if node.style in ("|", ">"):
        raise ConfigError(
            "cannot replace a block scalar (| or >); write the value on one line",
            file=path, line=node.start_mark.line + 1,
        )  # fmt: skip
    start, rendered = value_start(text, node), render_scalar(value, node.style)
    if start == node.end_mark.index and text[start - 1 : start] == ":":
        rendered = " " + rendered  # an empty value (`tag:`): `tag:"1"` would be one plain scalar
    return Splice(start, node.end_mark.index, rendered)


def value_start(text: str, node: ScalarNode) -> int:
    """Where the scalar itself starts: a node's start_mark includes an ``&anchor`` or ``!tag``.
    (``text`` is passed in: libyaml's marks carry no buffer.)"""
    i, end = node.start_mark.index, node.end_mark.index
    while i < end:
        if text[i] in " \t\r\n":
            i += 1
        elif text[i] in "&!":
            while i < end and text[i] not in " \t\r\n":
                i += 1
        else:
            break
    return i


def insert_keys(text: str, mapping: MappingNode, pairs: list[tuple[str, str]], nl: str) -> Splice:
    last = mapping.value[-1][1].end_mark.index
    if mapping.flow_style:
        return Splice(last, last, "".join(f", {k}: {render_scalar(v, None)}" for k, v in pairs))
    indent = " " * mapping.value[0][0].start_mark.column
    body = "".join(f"{indent}{k}: {render_scalar(v, None)}{nl}" for k, v in pairs)
    if text[last - 1] == "\n":  # the value (a block scalar) ends with its line
        return Splice(last, last, body)
    eol = text.find("\n", last)  # after the last entry's line, past any trailing comment
    if eol == -1:  # the file ends on that line without a newline: keep it that way
        return Splice(len(text), len(text), nl + body[: -len(nl)])
    return Splice(eol + 1, eol + 1, body)


def delete_key(text: str, mapping: MappingNode, key: str, *, path: str) -> Splice:
    pairs = mapping.value
    i = next(n for n, (k, _) in enumerate(pairs) if k.value == key)
    k_start, v_end = pairs[i][0].start_mark.index, pairs[i][1].end_mark.index
    if mapping.flow_style:
        if i > 0:
            return Splice(pairs[i - 1][1].end_mark.index, v_end, "")
        if len(pairs) > 1:
            return Splice(k_start, pairs[i + 1][0].start_mark.index, "")
    else:
        line_start = text.rfind("\n", 0, k_start) + 1
        eol = text.find("\n", v_end)
        line_end = len(text) if eol == -1 else eol + 1
        rest = text[v_end:line_end].strip()
        if not text[line_start:k_start].strip() and (not rest or rest.startswith("#")):
            if eol == -1 and line_start > 0:  # the last line, without newline: keep it that way
                line_start -= 2 if text[line_start - 2 : line_start] == "\r\n" else 1
            return Splice(line_start, line_end, "")
        if i + 1 < len(pairs):  # `- digest: x` starts a sequence item: the next key moves up
            return Splice(k_start, pairs[i + 1][0].start_mark.index, "")
    raise ConfigError(
        f"cannot remove `{key}` from this mapping; remove it by hand",
        file=path, line=pairs[i][0].start_mark.line + 1,
    )  # fmt: skip


def apply_splices(text: str, splices: list[Splice]) -> str:
    for a, b in pairwise(splices):
        if a.end > b.start:  # never expected: would mean two targets share bytes
            raise OperationError(f"overlapping YAML edits at offsets {a.start} and {b.start}")
    for s in reversed(splices):
        text = text[: s.start] + s.text + text[s.end :]
    return text

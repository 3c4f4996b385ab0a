"""JSON from outside buildctl (release records, registry manifests, image configs): nesting bounded.

``json.loads`` recurses once per level: a document nested a few thousand levels deep raises
RecursionError (issue #14: `--record` and an image config exited 3 with one), and one nested a
few hundred deep is accepted but then overflows whatever walks it recursively. ``loads`` measures
the depth first, in one linear regex pass that skips strings, and refuses beyond ``MAX_DEPTH``
with a ``json.JSONDecodeError`` subclass: callers that already report invalid JSON report this
too, with its line.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A release record is 5 levels deep, an OCI index or image config 4-6; 64 leaves room.
MAX_DEPTH = 64

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_TOKENS_BYTES = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset('[{') | frozenset(b"[{")
_CLOSERS = frozenset(']}') | frozenset(b"]}")


class JSONTooDeep(json.JSONDecodeError):
    """Valid or not, the document nests deeper than allowed (``msg`` says how deep)."""


def nesting_error(doc: str | bytes, *, max_depth: int = MAX_DEPTH) -> JSONTooDeep | None:
    """The error for ``doc`` if it nests deeper than ``max_depth`` arrays/objects, else None."""
    tokens = _TOKENS_BYTES if isinstance(doc, (bytes, bytearray)) else _TOKENS
    depth = 0
    for match in tokens.finditer(doc):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > max_depth:
                text = doc if isinstance(doc, str) else bytes(doc[: match.start()]).decode("utf-8", "replace")
                return JSONTooDeep(f"nested deeper than {max_depth} levels", text, min(match.start(), len(text)))
        elif first in _CLOSERS:
            depth -= 1
    return None


def loads(doc: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(doc)``, refusing (JSONTooDeep, a JSONDecodeError) what nests past ``max_depth``."""
    if error := nesting_error(doc, max_depth=max_depth):
        raise error
    try:
        return json.loads(doc)
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no caller ever sees one
        raise JSONTooDeep(f"nested deeper than {max_depth} levels", doc if isinstance(doc, str) else "", 0) from None

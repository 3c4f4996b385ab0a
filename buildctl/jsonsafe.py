"""JSON from outside buildctl (release records, registry manifests, image configs): bounded.

``json.loads`` recurses once per level: a document nested a few thousand levels deep raises
RecursionError (issue #14: `--record` and an image config exited 3 with one), and one nested a
few hundred deep is accepted but then overflows whatever walks it recursively. An integer of more
than 4,300 digits raises a plain ValueError (CPython's int_max_str_digits), and converting one
below that costs quadratic time. ``loads`` measures both first, in one linear regex pass that
skips strings, and refuses beyond ``MAX_DEPTH`` levels or ``MAX_DIGITS`` digits in a row with a
``json.JSONDecodeError`` subclass: callers that already report invalid JSON report this too, with
its line. ``read_file`` reads a file that must be regular and at most ``max_bytes`` long, so a
FIFO never blocks and /dev/zero is never read to the end of memory (issue #24).
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

# A release record is 5 levels deep, an OCI index or image config 4-6; 64 leaves room.
MAX_DEPTH = 64
# The longest number in a record, manifest or config is a size or a timestamp (19 digits).
MAX_DIGITS = 100

# A string ends at its closing quote or, unterminated, at the end of the document: otherwise a
# failed match would be retried from every quote inside it ('"\"\"\"…': quadratic, 80 KB took
# 46 s). Past an unterminated string the document is invalid anyway; json.loads says where.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]|(?<![0-9])[0-9]{%d}' % (MAX_DIGITS + 1), re.DOTALL)
_TOKENS_BYTES = re.compile(_TOKENS.pattern.encode(), re.DOTALL)
_OPENERS = frozenset('[{') | frozenset(b"[{")
_CLOSERS = frozenset(']}') | frozenset(b"]}")
_DIGITS = frozenset("0123456789") | frozenset(b"0123456789")


class JSONOutOfBounds(json.JSONDecodeError):
    """Valid or not, the document is beyond what buildctl reads (``msg`` says how)."""


class JSONTooDeep(JSONOutOfBounds):
    """The document nests deeper than allowed."""


class JSONNumberTooLong(JSONOutOfBounds):
    """A number in the document has more digits in a row than allowed."""


class NotARegularFile(ValueError):
    """``read_file`` was given a folder, FIFO, device or socket; ``mode`` is its ``st_mode``."""

    def __init__(self, mode: int) -> None:
        super().__init__("not a regular file")
        self.mode = mode


class FileTooLarge(ValueError):
    """``read_file``'s file holds more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


def bounds_error(doc: str | bytes, *, max_depth: int = MAX_DEPTH) -> JSONOutOfBounds | None:
    """The error for ``doc`` if it nests deeper than ``max_depth`` arrays/objects or holds a
    number of more than MAX_DIGITS digits, else None."""
    tokens = _TOKENS_BYTES if isinstance(doc, (bytes, bytearray)) else _TOKENS
    depth = 0
    for match in tokens.finditer(doc):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > max_depth:
                return _error(JSONTooDeep, f"nested deeper than {max_depth} levels", doc, match.start())
        elif first in _CLOSERS:
            depth -= 1
        elif first in _DIGITS:
            return _error(JSONNumberTooLong, f"a number of more than {MAX_DIGITS} digits", doc, match.start())
    return None


def _error(kind: type[JSONOutOfBounds], msg: str, doc: str | bytes, position: int) -> JSONOutOfBounds:
    text = doc if isinstance(doc, str) else bytes(doc[:position]).decode("utf-8", "replace")
    return kind(msg, text, min(position, len(text)))


def loads(doc: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(doc)``, refusing (a JSONDecodeError) what nests past ``max_depth`` or holds a
    number too long to convert safely."""
    if error := bounds_error(doc, max_depth=max_depth):
        raise error
    try:
        return json.loads(doc)
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no caller ever sees one
        raise JSONTooDeep(f"nested deeper than {max_depth} levels", doc if isinstance(doc, str) else "", 0) from None


def read_file(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of ``path``, which must be a regular file (NotARegularFile) of at most
    ``max_bytes`` (FileTooLarge); OSError as ``open`` raises it. Never blocks: O_NONBLOCK opens a
    FIFO without waiting for a writer, and the type is checked on the opened file, not the name."""
    try:
        mode = os.stat(path).st_mode  # a socket cannot be opened at all: say what it is
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise NotARegularFile(mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):  # replaced since the stat
            raise NotARegularFile(opened.st_mode)
        if opened.st_size > max_bytes:
            raise FileTooLarge(max_bytes)
        data = handle.read(max_bytes + 1)  # it may have grown since the fstat
    if len(data) > max_bytes:
        raise FileTooLarge(max_bytes)
    return data

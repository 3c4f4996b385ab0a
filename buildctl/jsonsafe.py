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
from itertools import accumulate
from pathlib import Path
from typing import Any

# A release record is 5 levels deep, an OCI index or image config 4-6; 64 leaves room.
MAX_DEPTH = 64
# The longest number in a record, manifest or config is a size or a timestamp (19 digits).
MAX_DIGITS = 100

# A string ends at its closing quote or, unterminated, at the end of the document: otherwise a
# failed match would be retried from every quote inside it ('"\"\"\"…': quadratic, 80 KB took
# 46 s). Past an unterminated string the document is invalid anyway; json.loads says where.
_STRING = r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)'
_TOKENS = re.compile(_STRING + r'|[\[\]{}]|(?<![0-9])[0-9]{%d}' % (MAX_DIGITS + 1), re.DOTALL)
_TOKENS_BYTES = re.compile(_TOKENS.pattern.encode(), re.DOTALL)
_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)  # _STRING, unrolled: ~2x faster
_STRINGS_BYTES = re.compile(_STRINGS.pattern.encode(), re.DOTALL)
_LONG_NUMBER = re.compile(r"[0-9]{%d}" % (MAX_DIGITS + 1))
_LONG_NUMBER_BYTES = re.compile(_LONG_NUMBER.pattern.encode())
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_NOT_BRACKET_BYTES = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1} | {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
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
    if _within_bounds(doc, max_depth=max_depth):
        return None
    return _first_bounds_error(doc, max_depth=max_depth)


def _within_bounds(doc: str | bytes, *, max_depth: int) -> bool:
    """True only if ``_first_bounds_error`` would find nothing, measured at C speed: a layer table
    read back from the verification cache holds ~20,000 strings and arrays, and the token loop
    below spent ~0.1 s of Python on each (issue #20). The strings go first (one regex pass), then
    everything but the brackets; what is left is the very bracket sequence the token loop counts,
    so its running depth is the same. Removing the strings can join two digit runs (``1"x"2``):
    that only sends a document to the exact scan, never lets one past it."""
    if isinstance(doc, (bytes, bytearray)):
        # Without a backslash every quote opens or closes a string: split is ~3x faster than the regex
        outside = b"".join(doc.split(b'"')[0::2]) if b"\\" not in doc else _STRINGS_BYTES.sub(b"", doc)
        if _LONG_NUMBER_BYTES.search(outside):
            return False
        brackets = outside.translate(None, _NOT_BRACKET_BYTES)
    else:
        outside = "".join(doc.split('"')[0::2]) if "\\" not in doc else _STRINGS.sub("", doc)
        if _LONG_NUMBER.search(outside):
            return False
        brackets = _NOT_BRACKETS.sub("", outside)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) <= max_depth


def _first_bounds_error(doc: str | bytes, *, max_depth: int) -> JSONOutOfBounds | None:
    """The first thing past the bounds, in document order, with its position."""
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

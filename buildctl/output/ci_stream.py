"""The one writer between buildctl and a CI log: every line on stdout and stderr, whoever writes it
(rich, click, logging, tracebacks, JSON), reaches Azure Pipelines or GitHub Actions as data.

The agents act on text no matter where it came from:

- the Azure agent on ``##vso[`` *anywhere* in a line (``Command.TryParse`` uses ``IndexOf``), and
  its log viewer on ``##[`` formatting commands (``##[group]``, ``##[error]``);
- the GitHub runner on ``::`` at the start of a line after leading white space
  (``ActionCommand.TryParseV2`` trims first) and on the legacy ``##[`` form anywhere (``TryParse``).

Both read a line with .NET ``ReadLine`` (``\\r`` ends a line too) and compare with culture-aware
``IndexOf``/``StartsWith``, which skip zero-width and control characters: a marker is found here
after dropping those, case-insensitively, width-folded (NFKC) — over-matching only costs an escape.

A marker is broken by writing its first character as a JSON-style escape: ``##vso[`` becomes
``\\u0023#vso[``, a leading ``::`` becomes ``\\u003a:``. ``#`` and ``:`` only ever occur inside
strings in JSON, and ``\\#``/``\\:`` are no JSON escapes, so a JSON document stays valid and decodes
to exactly the same data; a person reads the escape as what it is.

buildctl's own commands (``ci.py``: variables, outputs, groups) are ``Command`` lines, the only
text written past the neutraliser.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import threading
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from typing import TextIO

_MARKER = re.compile(r"##(?:vso)?\[")  # on the skeleton: lower-cased, NFKC, ignorables dropped
_LINE_END = re.compile(r"(\r\n|\r|\n)")  # .NET ReadLine's line ends
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINE_ENDS = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]")
# Whole-text fast path (ASCII, no control but line ends: nothing to skip or fold).
_TEXT_MARKER = re.compile(r"##(?:vso)?\[", re.IGNORECASE)
_TEXT_LEADING = re.compile(r"[\r\n] *(:):")  # and the same at the very start: _TEXT_FIRST
_TEXT_FIRST = re.compile(r" *(:):")
_LOOSE_MARKER = re.compile(r"#\W*#\W*(?:v\W*s\W*o\W*)?\[")  # a superset of what the skeleton finds
# Characters a culture-aware .NET comparison may skip: controls, formats, unassigned, marks...
_IGNORABLE = ("C", "M")
# ...and the five letters and punctuation marks ICU's root collation ignores entirely (.NET on
# Linux compares with ICU): found by searching "#X#vso[" for "##vso[" with usearch for every code
# point (tests/output/test_ci_stream.py does it again where libicu is installed).
_IGNORED_LETTERS = frozenset("\u0640\u07fa\u180a\u1cd3\ufe73")  # tatweel, lajanyalan, nirugu, nihshvasa, tail fragment
_DROP_IGNORED_LETTERS = str.maketrans(dict.fromkeys(map(ord, _IGNORED_LETTERS)))


class Command(str):
    """A line buildctl writes on purpose as a CI logging command (its data already escaped)."""


def in_ci(environ: Mapping[str, str]) -> bool:
    """Under Azure Pipelines (``TF_BUILD``) or GitHub Actions (``GITHUB_ACTIONS``), whatever the value:
    neutralising a line that needed none costs nothing."""
    return bool(environ.get("TF_BUILD") or environ.get("GITHUB_ACTIONS"))


def _significant(ch: str) -> str:
    """``ch`` as the agents' comparisons see it: "" when skipped, else width-folded and lower-cased."""
    if unicodedata.category(ch)[0] in _IGNORABLE or ch in _IGNORED_LETTERS:
        return ""
    return unicodedata.normalize("NFKC", ch).casefold()


def _marker_starts(line: str) -> set[int]:
    """Indices in ``line`` of the first ``#`` of each ``##vso[`` / ``##[``."""
    if line.isascii() and not _ASCII_CONTROL.search(line):
        return {m.start() for m in _MARKER.finditer(line.lower())}  # the common case: no folding to undo
    if not _LOOSE_MARKER.search(unicodedata.normalize("NFKD", line.translate(_DROP_IGNORED_LETTERS)).casefold()):
        return set()  # cheap: no marker even with anything but letters and digits skipped
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(line):
        seen = _significant(ch)
        chars.append(seen)
        origin.extend([i] * len(seen))
    return {origin[m.start()] for m in _MARKER.finditer("".join(chars))}


def _leading_colon(line: str) -> int | None:
    """Index in ``line`` of the first ``:`` when the line starts with ``::`` after white space (and
    skipped characters), as the GitHub runner's ``TrimStart``/``StartsWith`` read it."""
    stripped = line.lstrip()
    head = stripped[:1]
    if not head or (head != ":" and head.isascii() and head.isprintable() and line[:len(line) - len(stripped)].isascii()):
        return None  # the common case: ASCII white space, then an ordinary character
    found: list[tuple[str, int]] = []
    for i, ch in enumerate(line):
        seen = _significant(ch)
        if not seen or (not found and seen.isspace()):
            continue
        found.extend((c, i) for c in seen)
        if len(found) >= 2:
            break
    return found[0][1] if "".join(c for c, _ in found[:2]) == "::" else None


def neutralise_line(line: str, *, line_start: bool = True) -> str:
    """``line`` (no line break in it) with every CI command marker broken; anything else unchanged.
    ``line_start=False``: text that goes after text of ours on a line (a leading ``::`` is inert there)."""
    positions = _marker_starts(line) if "#" in line or not line.isascii() else set()
    if line_start and (colon := _leading_colon(line)) is not None:
        positions.add(colon)
    return _escape_at(line, positions)


def _escape_at(text: str, positions: set[int]) -> str:
    """``text`` with the characters at ``positions`` written as ``\\uXXXX``."""
    if not positions:
        return text
    out, last = [], 0
    for i in sorted(positions):
        out += [text[last:i], f"\\u{ord(text[i]):04x}"]
        last = i + 1
    return "".join([*out, text[last:]])


def neutralise(text: str, *, line_start: bool = True) -> str:
    """Every line of ``text`` neutralised; its line breaks kept."""
    if text.isascii() and not _CONTROL_BUT_LINE_ENDS.search(text):  # one pass over a 100,000-line diff
        positions = {m.start() for m in _TEXT_MARKER.finditer(text)}
        if line_start:
            positions.update(m.start(1) for m in _TEXT_LEADING.finditer(text))
            if first := _TEXT_FIRST.match(text):
                positions.add(first.start(1))
        return _escape_at(text, positions)
    parts = _LINE_END.split(text)
    parts[::2] = [neutralise_line(p, line_start=line_start) for p in parts[::2]]
    return "".join(parts)


class NeutralisingWriter(io.TextIOBase):
    """A text stream that writes whole lines, neutralised, to ``stream``; a line is held until it ends
    (or until ``drain``), since a marker may be split across writes."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending = ""
        self._lock = threading.RLock()  # progress lines come from worker threads

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            data = self._pending + text
            end = max(data.rfind("\n"), data.rfind("\r"))  # a line is held until it ends
            if end < 0:
                self._pending = data
            else:
                self._pending = data[end + 1:]
                self.stream.write(neutralise(data[:end + 1]))
        return len(text)

    def command(self, line: Command) -> None:
        """One of buildctl's own logging commands, verbatim, on a line of its own (a held partial
        line is ended first: the agents read a command only at a line's start)."""
        with self._lock:
            if self._pending:
                self.drain()
                self.stream.write("\n")
            self.stream.write(line + "\n")

    def drain(self) -> None:
        """Write a held partial line: at exit, or before a command (which ends the line first).
        Nothing written later may continue that line, or a marker could be completed across it."""
        with self._lock:
            if self._pending:
                self.stream.write(neutralise_line(self._pending))
                self._pending = ""

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)


def write_lines(stream: TextIO, lines: Iterable[str]) -> None:
    """Lines for a CI log: ``Command`` lines as they are, every other line neutralised."""
    for line in lines:
        if isinstance(line, Command):
            if isinstance(stream, NeutralisingWriter):
                stream.command(line)
            else:
                stream.write(line + "\n")
        else:
            stream.write(neutralise(line) + "\n")
    stream.flush()


@contextlib.contextmanager
def neutralised(environ: Mapping[str, str]) -> Iterator[None]:
    """For the length of the block, under CI, ``sys.stdout`` and ``sys.stderr`` neutralise every line."""
    if not in_ci(environ) or isinstance(sys.stdout, NeutralisingWriter):
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = NeutralisingWriter(saved[0]), NeutralisingWriter(saved[1])
    try:
        yield
    finally:
        for writer in (sys.stdout, sys.stderr):
            if isinstance(writer, NeutralisingWriter):
                writer.drain()
                with contextlib.suppress(Exception):
                    writer.flush()
        sys.stdout, sys.stderr = saved

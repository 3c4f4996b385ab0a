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
# Characters a culture-aware .NET comparison may skip: controls, formats, unassigned, marks.
_IGNORABLE = ("C", "M")


class Command(str):
    """A line buildctl writes on purpose as a CI logging command (its data already escaped)."""


def in_ci(environ: Mapping[str, str]) -> bool:
    """Under Azure Pipelines (``TF_BUILD``) or GitHub Actions (``GITHUB_ACTIONS``), whatever the value:
    neutralising a line that needed none costs nothing."""
    return bool(environ.get("TF_BUILD") or environ.get("GITHUB_ACTIONS"))


def _skeleton(line: str) -> tuple[str, list[int]]:
    """The line as the agents' comparisons see it, and for each of its characters the index in ``line``."""
    if line.isascii() and not _ASCII_CONTROL.search(line):
        return line.lower(), list(range(len(line)))
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(line):
        if unicodedata.category(ch)[0] in _IGNORABLE:
            continue
        folded = unicodedata.normalize("NFKC", ch).casefold()
        chars.append(folded)
        origin.extend([i] * len(folded))
    return "".join(chars), origin


def _suspect(line: str) -> bool:
    """Cheap test: could the line hold a marker at all? (``#`` or ``:``, plain or as a look-alike.)"""
    return "#" in line or ":" in line or not line.isascii()


def neutralise_line(line: str, *, line_start: bool = True) -> str:
    """``line`` (no line break in it) with every CI command marker broken; anything else unchanged.
    ``line_start=False``: text that goes after text of ours on a line (a leading ``::`` is inert there)."""
    if not _suspect(line):
        return line
    skeleton, origin = _skeleton(line)
    positions = {origin[m.start()] for m in _MARKER.finditer(skeleton)}
    stripped = skeleton.lstrip()
    if line_start and stripped.startswith("::"):
        positions.add(origin[len(skeleton) - len(stripped)])
    if not positions:
        return line
    return "".join(f"\\u{ord(ch):04x}" if i in positions else ch for i, ch in enumerate(line))


def neutralise(text: str, *, line_start: bool = True) -> str:
    """Every line of ``text`` neutralised; its line breaks kept."""
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
            parts = _LINE_END.split(self._pending + text)
            self._pending = parts.pop()
            if parts:
                parts[::2] = [neutralise_line(p) for p in parts[::2]]
                self.stream.write("".join(parts))
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
        """Write a held partial line (at exit, or before a command)."""
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

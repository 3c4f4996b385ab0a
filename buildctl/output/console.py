"""The one console buildctl prints with, and the one place styling is applied.

Data (names, tags, paths, build args, check details, registry messages) is never parsed: the
console reads no Rich markup, no ``:emoji:`` codes and highlights nothing, so ``[prod]``,
``[/bold]`` and ``:warning:`` print as typed. Styles come only from ``styled`` with a role; text
is assembled from pieces with ``line``, where every piece is plain text.
"""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console
from rich.text import Text

# Role -> Rich style: the only styles buildctl uses.
STYLES = {"ok": "green", "fail": "red", "warn": "yellow", "info": "cyan", "strong": "bold", "dim": "dim"}
NOT_A_TERMINAL_WIDTH = 160  # CI logs and pipes without COLUMNS: tables get room, not 80 squeezed columns

# Control characters other than tab and newline would move the cursor, recolour or erase a terminal
# line (ESC), or hide what precedes them (CR); bidirectional overrides, embeddings, isolates and
# marks reorder what a terminal or browser shows ("pass \u202eliaf" reads "pass fail": Trojan
# Source, CVE-2021-42574), and line/paragraph separators break a line where no newline is: data
# shows them all as escapes.
_INVISIBLE = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_CONTROL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_INVISIBLE}]")
_TEXT_CONTROL = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_INVISIBLE}]|\\r(?!\\n)")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr). Width: ``COLUMNS`` when set, else the terminal's; not a
    terminal and no ``COLUMNS``: NOT_A_TERMINAL_WIDTH (Rich would assume 80)."""
    stream = sys.stderr if stderr else sys.stdout
    width = None if _columns() or stream.isatty() else NOT_A_TERMINAL_WIDTH
    return Console(stderr=stderr, width=_columns() or width, soft_wrap=True, markup=False, emoji=False,
                   highlight=False)


def _columns() -> int | None:
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def visible(value: object) -> str:
    """``value`` as text with control characters (but tab and newline) written as ``\\xNN``, bidi
    controls and line separators as ``\\uNNNN``."""
    return _CONTROL.sub(_escape, str(value))


def visible_text(text: str) -> str:
    """Many lines of data (a diff) for writing straight to the stream: like ``visible``, but a CRLF
    line end stays one (a manifest's own line ends), and one regex pass for 100,000 lines."""
    return _TEXT_CONTROL.sub(_escape, text)


def data(value: object) -> Text:
    """Text from outside, as it is (controls made visible): never markup."""
    return Text(visible(value))


def styled(value: object, role: str) -> Text:
    return Text(visible(value), style=STYLES[role])


def line(*parts: object) -> Text:
    """One printable text from pieces: ``Text`` pieces keep their style, anything else is data."""
    out = Text()
    for part in parts:
        out.append_text(part if isinstance(part, Text) else data(part))
    return out

"""Data shown as text: control characters, bidi controls and line separators written as escapes,
so a name, tag, log line or registry message cannot move the cursor, recolour, erase or reorder
what a terminal or a CI log shows. Without Rich (output/console.py styles; this only escapes):
the error handler and the plain progress lines need this at start-up, before the console."""

from __future__ import annotations

import re

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


def visible(value: object) -> str:
    """``value`` as text with control characters (but tab and newline) written as ``\\xNN``, bidi
    controls and line separators as ``\\uNNNN``."""
    return _CONTROL.sub(_escape, str(value))


def visible_text(text: str) -> str:
    """Many lines of data (a diff) for writing straight to the stream: like ``visible``, but a CRLF
    line end stays one (a manifest's own line ends), and one regex pass for 100,000 lines."""
    return _TEXT_CONTROL.sub(_escape, text)

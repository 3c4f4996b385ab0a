"""The one console buildctl prints with, and the one place styling is applied.

Data (names, tags, paths, build args, check details, registry messages) is never parsed: the
console reads no Rich markup, no ``:emoji:`` codes and highlights nothing, so ``[prod]``,
``[/bold]`` and ``:warning:`` print as typed. Styles come only from ``styled`` with a role; text
is assembled from pieces with ``line``, where every piece is plain text.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.text import Text

from buildctl.output.visible import visible

# Role -> Rich style: the only styles buildctl uses.
STYLES = {"ok": "green", "fail": "red", "warn": "yellow", "info": "cyan", "strong": "bold", "dim": "dim"}
NOT_A_TERMINAL_WIDTH = 160  # CI logs and pipes without COLUMNS: tables get room, not 80 squeezed columns


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

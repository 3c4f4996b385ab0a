"""Live progress of a release: one row per service x platform, with state and elapsed time.

On a terminal a rich live table (output/live_progress.py); elsewhere (CI logs) one plain line per
state change; nothing with --quiet. Progress goes to stderr so stdout stays the result (or the JSON
document).

The plain lines need no Rich (~40 ms of imports): a release in CI loads it once its first build's
process runs, for the table it prints at the end, beside the builds instead of before them or after
the last one (issue #20).
"""

from __future__ import annotations

import importlib
import sys
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from buildctl.model import Phase, Progress
from buildctl.output.progress_rows import Rows
from buildctl.output.visible import visible


RENDERER = "buildctl.output.render"  # what prints the release's table (cli.py)


class Display(Protocol):
    """What the release reports progress to, for the length of a ``with`` block."""

    def __call__(self, service: str, platform: str, progress: Progress) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(self, *exc: object) -> None: ...


class QuietDisplay:
    def __call__(self, service: str, platform: str, progress: Progress) -> None:
        return None

    def __enter__(self) -> QuietDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class PlainDisplay(Rows):
    def __init__(self, services, *, stream=None) -> None:
        super().__init__(services)
        self.stream = stream or sys.stderr
        self.printed: dict[tuple[str, str], Phase] = {}
        self.warmed = False

    def __call__(self, service: str, platform: str, state: Progress) -> None:
        # A build's process runs, or (nothing to build) the checks read the registry: the machine waits on them.
        if (state.step is not None or state.phase is Phase.VERIFYING) and not self.warmed:
            self.warmed = True
            threading.Thread(target=lambda: importlib.import_module(RENDERER).warm(), name="warm-renderer",
                             daemon=True).start()
        # A CI log wants phases, not every cached step: "building step 3/5" is not a new line.
        changed = self.update(service, platform, state)
        phase = state.phase
        for key in changed:
            if self.printed.get(key) == phase:
                continue
            self.printed[key] = phase
            self.stream.write(visible(f"[{time.monotonic() - self.started:6.1f}s] {key[0]} {key[1]}: {state}") + "\n")
            self.stream.flush()

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def make_display(services: Sequence[tuple[str, Sequence[str]]], *, quiet: bool, plain: bool | None = None) -> Display:
    """The right display for where we run: quiet, plain (not a TTY / CI) or live."""
    if quiet:
        return QuietDisplay()
    if plain is None:
        plain = not sys.stderr.isatty()
    if plain:
        return PlainDisplay(services)
    from buildctl.output.live_progress import LiveDisplay

    return LiveDisplay(services)

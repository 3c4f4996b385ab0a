"""Live progress of a release: one row per service x platform, with state and elapsed time.

On a terminal a rich live table; elsewhere (CI logs) one plain line per state change; nothing
with --quiet. Progress goes to stderr so stdout stays the result (or the JSON document).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from buildctl.model import Phase, Progress
from buildctl.output.console import console as make_console
from buildctl.output.console import data, styled, visible


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


class _Rows:
    """Shared state: (service, platform) -> [progress, started]."""

    def __init__(self, services: Sequence[tuple[str, Sequence[str]]]) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.rows: dict[tuple[str, str], list] = {
            (svc, platform): [Progress(Phase.QUEUED), None] for svc, platforms in services for platform in platforms
        }

    def update(self, service: str, platform: str, state: Progress) -> list[tuple[str, str]]:
        """Apply; return the rows whose state changed."""
        changed = []
        with self.lock:
            for (svc, plat), row in self.rows.items():
                if svc != service or (platform and plat != platform):
                    continue
                if row[0].phase is Phase.FAILED and state.phase is not Phase.FAILED:
                    continue
                if row[0] != state:
                    row[0] = state
                    row[1] = row[1] or time.monotonic()
                    changed.append((svc, plat))
        return changed

    def elapsed(self, key: tuple[str, str]) -> float:
        started = self.rows[key][1]
        return time.monotonic() - started if started else 0.0


class PlainDisplay(_Rows):
    def __init__(self, services, *, stream=None) -> None:
        super().__init__(services)
        self.stream = stream or sys.stderr
        self.printed: dict[tuple[str, str], Phase] = {}

    def __call__(self, service: str, platform: str, state: Progress) -> None:
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


class LiveDisplay(_Rows):
    def __init__(self, services, *, console: Console | None = None) -> None:
        super().__init__(services)
        self.live = Live(console=console or make_console(stderr=True), refresh_per_second=4, transient=False,
                         get_renderable=self.table)

    def table(self) -> Table:
        table = Table("service", "platform", "state", "elapsed", box=None)
        table.columns[0].no_wrap = True
        with self.lock:
            for key, (state, _) in self.rows.items():
                role = ("fail" if state.phase in (Phase.FAILED, Phase.VERIFICATION_FAILED)
                        else "ok" if state.phase in (Phase.VERIFIED, Phase.TAGGED, Phase.REUSED) else "")
                table.add_row(data(key[0]), data(key[1]), styled(state, role) if role else data(state),
                              f"{self.elapsed(key):5.1f}s")
        return table

    def __call__(self, service: str, platform: str, state: Progress) -> None:
        self.update(service, platform, state)

    def __enter__(self) -> LiveDisplay:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()


def make_display(services: Sequence[tuple[str, Sequence[str]]], *, quiet: bool, plain: bool | None = None) -> Display:
    """The right display for where we run: quiet, plain (not a TTY / CI) or live."""
    if quiet:
        return QuietDisplay()
    if plain is None:
        plain = not sys.stderr.isatty()
    return PlainDisplay(services) if plain else LiveDisplay(services)

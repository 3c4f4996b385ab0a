"""The terminal's live progress table (output/progress.py chooses it): Rich, loaded only there."""

from __future__ import annotations

from rich.console import Console
from rich.live import Live
from rich.table import Table

from buildctl.model import Phase, Progress
from buildctl.output.console import console as make_console
from buildctl.output.console import data, styled
from buildctl.output.progress_rows import Rows


class LiveDisplay(Rows):
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

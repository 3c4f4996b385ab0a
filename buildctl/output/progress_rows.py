"""The rows both progress displays show (output/progress.py, output/live_progress.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from buildctl.model import Phase, Progress


class Rows:
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

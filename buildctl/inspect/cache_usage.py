"""How full the verification cache's folder is, without walking it in every process (issue #20).

Eviction needs the folder's total, and walking it costs ~4-8 µs a file: an agent's cache of
4,000 files took 15-35 ms, one of 100,000 would take most of a second. Each process walked it at
its first write, which is the verification of a freshly built image: in the release's tail. Now
a walk leaves a mark (its total and when it ran), and each write adds its size to the mark; a
process that finds a mark younger than WALK_EVERY_SECONDS starts its estimate there, and one that
finds none, or an older one, walks on a side thread. Two processes writing at once each leave
their own count, so the mark errs low by the other's writes until the next walk: the folder may
pass its bound by what concurrent runs write within WALK_EVERY_SECONDS (a process past the bound
walks at once, as before).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from buildctl import jsonsafe, workdir

MARK_NAME = "usage.json"
WALK_EVERY_SECONDS = 600.0
_FUTURE_SLACK = 60.0  # a mark from a clock this far ahead is not trusted (another host's, or a reset clock)


@dataclass(frozen=True)
class CacheFile:
    mtime: float
    size: int
    path: Path


def walk(directory: Path) -> list[CacheFile]:
    """Every file under ``directory`` but the mark: os.scandir's entries, not a Path and a stat
    call each (half the time of os.walk)."""
    found: list[CacheFile] = []
    pending = [str(directory)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                            continue
                        if folder == str(directory) and entry.name == MARK_NAME:
                            continue
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # removed beside us (another process evicting)
                    found.append(CacheFile(info.st_mtime, info.st_size, Path(entry.path)))
        except OSError:
            continue
    return found


@dataclass(frozen=True)
class Usage:
    bytes: int  # what the walk found, plus what was written since (as the last writer counted)
    walked: float  # when the walk ran (seconds since the epoch)


def remembered(directory: Path, *, now: float) -> Usage | None:
    """The mark, when its walk is younger than WALK_EVERY_SECONDS; else None."""
    try:
        mark = jsonsafe.loads(jsonsafe.read_file(directory / MARK_NAME, max_bytes=4096))
    except (OSError, ValueError):
        return None
    if not isinstance(mark, dict):
        return None
    total, walked = mark.get("bytes"), mark.get("walked")
    if not (isinstance(total, int) and not isinstance(total, bool) and total >= 0
            and isinstance(walked, (int, float)) and not isinstance(walked, bool)):
        return None
    if not now - WALK_EVERY_SECONDS < walked <= now + _FUTURE_SLACK:
        return None
    return Usage(total, float(walked))


def remember(directory: Path, usage: Usage) -> None:
    """Leave ``usage`` as the mark (after a walk, and after each write since, keeping the walk's
    time: the mark ages, and the next walk counts what concurrent writers overwrote); a read-only
    or full cache keeps none."""
    try:
        workdir.write_whole(directory / MARK_NAME, json.dumps({"bytes": usage.bytes, "walked": usage.walked}).encode())
    except OSError:
        pass

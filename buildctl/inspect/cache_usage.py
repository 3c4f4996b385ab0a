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

import atexit
import json
import os
import threading
import time
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


class FolderBound:
    """The size bound of a cache folder: told of each file written (``wrote``), it keeps an estimate
    of the folder's bytes and deletes the least recently used files once it passes ``max_bytes``."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory, self.max_bytes = directory, max_bytes
        self.estimate: int | None = None  # bytes on disk as of the last walk, plus what was written since
        self.walking: threading.Thread | None = None  # the side walk of a process that found no recent mark
        self._lock = threading.Lock()
        self._evicting = False  # a walk (and eviction) runs: one at a time
        self._walked = 0.0  # when the walk behind the estimate ran (the mark keeps it)
        self._written_during_walk = 0  # bytes written since the running walk began: it may not see them

    def wrote(self, size: int) -> None:
        """A file of ``size`` bytes was written into the folder."""
        with self._lock:
            self._written_during_walk += size
            if self._evicting:
                return  # the walk running adds this to what it finds (errs high, never low)
            if self.estimate is None:
                if (mark := remembered(self.directory, now=time.time())) is None:
                    # No recent walk: one now, beside the release instead of in its tail; the process's
                    # exit waits for it, or a short-lived process would never bound the folder.
                    self._evicting = True
                    self.walking = threading.Thread(target=self._evict_claimed, name="cache-walk", daemon=True)
                    self.walking.start()
                    atexit.register(self.walking.join)
                    return
                self.estimate, self._walked = mark.bytes, mark.walked
            self.estimate += size
            if self.estimate <= self.max_bytes:  # within the bound: no walk (2,000 files: ~30 ms, issue #20)
                remember(self.directory, Usage(self.estimate, self._walked))
                return
            self._evicting = True
        self._evict_claimed()

    def usage(self) -> tuple[int, int]:
        """(files, bytes) the folder holds."""
        files = self.files()
        return len(files), sum(f.size for f in files)

    def files(self) -> list[CacheFile]:
        return walk(self.directory) if self.directory.is_dir() else []

    def evict(self) -> int:
        """Delete least recently used files until the folder fits ``max_bytes``; how many went.
        The total it leaves is the estimate from then on, and the mark a later process starts
        from: each write adds its size, and the folder is walked again only once the estimate
        passes the bound (a file written over counts twice, so the estimate errs high) or the
        mark is old. One eviction at a time, holding no lock while it walks: writes go on beside
        it, and what they wrote is added to what it found (counted twice if it saw them: high,
        never low); an eviction asked for meanwhile is that one."""
        with self._lock:
            if self._evicting:
                return 0
            self._evicting = True
        return self._evict_claimed()

    def _evict_claimed(self) -> int:
        """evict(), for the caller that set ``_evicting``."""
        try:
            with self._lock:
                walked, self._written_during_walk = time.time(), 0
            files = sorted(self.files(), key=lambda f: f.mtime)
            total, removed = sum(f.size for f in files), 0
            with self._lock:
                beside = self._written_during_walk
            for found in files:
                if total + beside <= self.max_bytes:
                    break
                try:
                    found.path.unlink()
                except FileNotFoundError:
                    pass  # another process evicted it: gone all the same
                except OSError:
                    continue
                total -= found.size
                removed += 1
            with self._lock:
                self.estimate, self._walked = total + self._written_during_walk, walked
                remember(self.directory, Usage(self.estimate, walked))
            return removed
        finally:
            with self._lock:
                self._evicting = False

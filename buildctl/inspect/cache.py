"""The verification cache: layer tables by layer digest, verdicts by platform-image manifest digest.

Both are content-addressed, so an entry never goes stale; in memory, and on disk as compact JSON
under ``$XDG_CACHE_HOME/buildctl/layers/`` (never pickle: the directory may be shared). The disk
cache has a size bound (DEFAULT_MAX_BYTES) and evicts the least recently used files first (a read
refreshes a file's mtime). Concurrent requests for one digest load it once; the others wait for it
without giving up their own deadline, and load it themselves if the first loader failed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import cache
from pathlib import Path
from typing import Any

from buildctl import jsonsafe, workdir
from buildctl.inspect import cache_usage
from buildctl.inspect.image_fs import BINPRM_BUF_SIZE, DIR, FILE, HARDLINK, IMPLICIT_DIR, OTHER, SYMLINK, Entry
from buildctl.inspect.image_fs import LayerTable
from buildctl.registry.bounds import Deadline

log = logging.getLogger(__name__)

FORMAT_VERSION = 8  # 2: ELF headers of every ELF file, PT_INTERP, verdicts; 3: a hard link holds its file's entry;
# 4: an ELF file's load alignment (the page sizes it maps on); 5: why the kernel would refuse to load it;
# 6: p_align 0 no longer makes that alignment 1 byte; 7: tar headers and member types read as Go and
# containerd read them (an older table may hold a layer Python read differently); 8: each entry's owner
# (uid, gid) and the whole /etc/passwd and /etc/group, for the User's permissions (users.py)
DEFAULT_MAX_BYTES = 512 << 20
WAIT_POLL = 0.1  # how often a waiting thread looks at its deadline and for an interrupt
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@cache
def shared_entry(kind: str, mode: int, uid: int = 0, gid: int = 0) -> Entry:
    """One Entry object per (kind, mode, owner) for the many plain files and directories: a table
    of 200,000 entries costs its paths, not 200,000 objects."""
    return Entry(kind, mode, uid=uid, gid=gid)


def compact_entry(kind: str, mode: int, target: str = "", head: bytes = b"", interp: str = "",
                  page_align: int = 0, problem: str = "", uid: int = 0, gid: int = 0) -> Entry:
    if kind in (FILE, DIR, IMPLICIT_DIR) and not (target or head or interp or page_align or problem):
        return shared_entry(kind, mode, uid, gid)
    return Entry(kind, mode, target, head, interp, page_align, problem, uid, gid)


def dump_table(table: LayerTable) -> bytes:
    rows = []
    for path, e in table.entries.items():
        row: list[object] = [path, e.kind, e.mode]
        # [path, kind, mode, target, head, interp, page_align, problem, uid, gid]: trailing empty fields
        # left out (most entries are root's: three fields)
        fields = [e.target, base64.b64encode(e.head).decode("ascii"), e.interp, e.page_align, e.problem, e.uid, e.gid]
        while fields and not fields[-1]:
            fields.pop()
        row.extend(fields)
        rows.append(row)
    doc = {"format": FORMAT_VERSION, "entries": rows,
           "whiteouts": sorted(table.whiteouts), "opaque": sorted(table.opaque),
           "texts": {path: base64.b64encode(text).decode("ascii") for path, text in table.texts.items()}}
    return json.dumps(doc, separators=(",", ":")).encode()


def load_table(data: bytes) -> LayerTable:
    """Inverse of dump_table; ValueError when the data is not a table of this format."""
    doc = jsonsafe.loads(data)  # the cache folder may be shared: its files are outside input
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"not a layer table of format {FORMAT_VERSION}")
    entries = {}
    for row in doc["entries"]:
        if type(row) is list and len(row) == 3:  # [path, kind, mode]: most rows, checked in one line (issue #20)
            path, kind, mode = row
            if not (type(path) is str and _NORMAL_PATH.fullmatch(path) and kind in _KINDS
                    and type(mode) is int and 0 <= mode <= 0o7777):
                raise ValueError(f"invalid table entry for {str(path)[:80]!r}")
            entries[path] = shared_entry(kind, mode) if kind in _PLAIN_KINDS else Entry(kind, mode)
            continue
        path, kind, mode, *rest = row
        target = rest[0] if rest else ""
        head = base64.b64decode(rest[1], validate=True) if len(rest) > 1 else b""
        interp = rest[2] if len(rest) > 2 else ""
        page_align = rest[3] if len(rest) > 3 else 0
        problem = rest[4] if len(rest) > 4 else ""
        uid, gid = (rest[5] if len(rest) > 5 else 0), (rest[6] if len(rest) > 6 else 0)
        # As scan_layer makes them: a table from the cache folder (it may be shared) or the registry
        # (shared_tables.py) that is not one is refused whole, never half used.
        if not (_is_path(path) and kind in _KINDS and _is_int(mode) and 0 <= mode <= 0o7777
                and isinstance(target, str) and len(head) <= BINPRM_BUF_SIZE and isinstance(interp, str)
                and _is_int(page_align) and page_align >= 0 and isinstance(problem, str) and _is_int(uid)
                and _is_int(gid) and len(rest) <= 7):
            raise ValueError(f"invalid table entry for {str(path)[:80]!r}")
        entries[path] = compact_entry(kind, mode, target, head, interp, page_align, problem, uid, gid)
    whiteouts, opaque = doc["whiteouts"], doc["opaque"]
    # A whiteout's folder is kept as the tar names it (`dir/.wh..` is "/dir/."): absolute, not normalised.
    if not (isinstance(whiteouts, list) and isinstance(opaque, list)
            and all(isinstance(p, str) and p.startswith("/") for p in whiteouts + opaque)):
        raise ValueError("invalid whiteouts or opaque folders")
    texts = doc["texts"]
    if not (isinstance(texts, dict) and all(_is_path(p) and isinstance(t, str) for p, t in texts.items())):
        raise ValueError("invalid account files")
    return LayerTable(entries, frozenset(whiteouts), frozenset(opaque),
                      {path: base64.b64decode(text, validate=True) for path, text in texts.items()})


_KINDS = frozenset({FILE, DIR, SYMLINK, HARDLINK, OTHER, IMPLICIT_DIR})
_PLAIN_KINDS = frozenset({FILE, DIR, IMPLICIT_DIR})  # compact_entry's shared entries
# What normalize() leaves as it is: "/" or "/a/b", no empty, "." or ".." part, no trailing slash.
# A table has ~13,000 paths; normalize() on each was half its loading time.
_NORMAL_PATH = re.compile(r"/|(?:/(?!\.\.?(?:/|\Z))[^/]+)+", re.DOTALL)


def _is_path(path: object) -> bool:
    return isinstance(path, str) and _NORMAL_PATH.fullmatch(path) is not None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def default_cache_dir() -> Path:
    return workdir.cache_root() / "layers"


class LayerCache:
    """Layer tables (and verdicts) by digest, in memory and (unless ``directory`` is None) on disk."""

    def __init__(self, directory: Path | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._memory: dict[str, LayerTable] = {}
        self._inflight: dict[str, Future[LayerTable]] = {}
        self._verdicts: dict[str, Any] = {}
        self._guard = threading.Lock()
        self.bound = cache_usage.FolderBound(directory, max_bytes=max_bytes) if directory is not None else None
        self.loads = 0  # how many tables were loaded with ``load`` (read from the registry)

    def get(self, digest: str, load: Callable[[], LayerTable], *, deadline: Deadline | None = None) -> LayerTable:
        while True:
            with self._guard:
                table = self._memory.get(digest)
                if table is not None:
                    return table
                pending = self._inflight.get(digest)
                mine = pending is None
                if mine:
                    pending = self._inflight[digest] = Future()
            assert pending is not None
            if mine:
                return self._load(digest, load, pending)
            while True:  # someone else is reading this layer: wait, but not past our deadline
                try:
                    return pending.result(timeout=WAIT_POLL)
                except TimeoutError:
                    if deadline is not None:
                        deadline.check()
                except BaseException:  # noqa: BLE001 - the other loader's failure; try ourselves
                    break

    def has(self, digest: str) -> bool:
        """Whether the table of ``digest`` is at hand, in memory or on disk, without reading it."""
        with self._guard:
            if digest in self._memory:
                return True
        path = self._path(digest)
        return path is not None and path.is_file()

    def _load(self, digest: str, load: Callable[[], LayerTable], pending: Future[LayerTable]) -> LayerTable:
        try:
            table = self._read(digest)
            if table is None:
                self.loads += 1
                table = load()
                self._write_file(self._path(digest), dump_table(table))
            with self._guard:
                self._memory[digest] = table
            pending.set_result(table)
            return table
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        finally:
            with self._guard:
                self._inflight.pop(digest, None)

    # ------------------------------------------------------------------ verdicts

    def verdict(self, key: str) -> Any | None:
        """What ``store_verdict`` stored under ``key`` (``sha256:…/qualifier``), or None."""
        if key in self._verdicts:
            return self._verdicts[key]
        path = self._path(key, "verdicts")
        data = self._read_file(path) if path else None
        try:
            value = jsonsafe.loads(data) if data is not None else None
        except ValueError:
            return None
        if value is not None:
            self._verdicts[key] = value
        return value

    def store_verdict(self, key: str, value: Any) -> None:
        self._verdicts[key] = value
        self._write_file(self._path(key, "verdicts"), json.dumps(value, separators=(",", ":")).encode())

    # ------------------------------------------------------------------ disk

    def _path(self, digest: str, kind: str = "tables") -> Path | None:
        name = digest.split("/", 1)
        if self.directory is None or not _DIGEST_RE.match(name[0]):
            return None  # only well-formed digests become file names
        suffix = "" if len(name) == 1 else "-" + re.sub(r"[^a-z0-9]", "_", name[1].lower())[:80]
        return self.directory / f"v{FORMAT_VERSION}" / kind / f"{name[0].replace(':', '-')}{suffix}.json"

    def _read(self, digest: str) -> LayerTable | None:
        path = self._path(digest)
        data = self._read_file(path) if path else None
        if data is None:
            return None
        try:
            return load_table(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable layer cache file %s: %s", path, exc)
            return None

    def _read_file(self, path: Path | None) -> bytes | None:
        if path is None or not path.is_file():
            return None
        try:
            data = path.read_bytes()
            os.utime(path)  # most recently used: evicted last
            return data
        except OSError as exc:
            log.warning("ignoring unreadable layer cache file %s: %s", path, exc)
            return None

    def _write_file(self, path: Path | None, data: bytes) -> None:
        if path is None or self.bound is None or len(data) > self.max_bytes // 4:
            return  # one table may not push out most of the cache
        try:
            workdir.write_whole(path, data)  # readers never see half a file
        except OSError as exc:
            log.warning("could not write layer cache %s: %s", path, exc)
            return
        self.bound.wrote(len(data))

    def usage(self) -> tuple[int, int]:
        """(files, bytes) the disk cache holds."""
        return self.bound.usage() if self.bound else (0, 0)

    def evict(self) -> int:
        """Delete least recently used files until the cache fits ``max_bytes`` (cache_usage.py)."""
        return self.bound.evict() if self.bound else 0


@cache
def shared_layer_cache() -> LayerCache:
    """The process-wide cache in the default directory."""
    return LayerCache(default_cache_dir())

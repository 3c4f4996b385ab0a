"""Layer tables: one streaming pass over a layer tar, keeping only what entrypoint checks need.

A table holds every member's path, type, mode and link target, plus the first bytes of
executable regular files (enough for ``#!`` lines and ELF headers). Layers are content-addressed,
so a table is cached by layer digest forever: in memory, and on disk as compact JSON under
``$XDG_CACHE_HOME/buildctl/layers/`` (never pickle: the cache directory may be shared).
Whiteouts follow the OCI image spec, "Representing Changes" (``.wh.NAME``, ``.wh..wh..opq``).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import os
import posixpath
import re
import tarfile
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import BinaryIO

from buildctl.errors import OperationError
from buildctl.inspect.image_fs import (
    DIR,
    FILE,
    HARDLINK,
    IMPLICIT_DIR,
    OTHER,
    SYMLINK,
    Entry,
    LayerTable,
    normalize,
)

log = logging.getLogger(__name__)

HEAD_BYTES = 256  # the kernel reads 256 bytes for #! lines (BINPRM_BUF_SIZE); ELF needs 20
FORMAT_VERSION = 1
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _decompressed(stream: BinaryIO) -> BinaryIO:
    """Sniff the compression from magic bytes; media types lie more often than magic does."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if magic == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise OperationError(
                "a layer is zstd-compressed and the zstandard package is not installed",
                hint="pip install zstandard",
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(buffered)  # type: ignore[return-value]
    return buffered


def scan_layer(stream: BinaryIO) -> LayerTable:
    """Read a (gzip/zstd/uncompressed) layer tar once, front to back."""
    entries: dict[str, Entry] = {}
    whiteouts: set[str] = set()
    opaque: set[str] = set()
    try:
        with tarfile.open(fileobj=_decompressed(stream), mode="r|") as tar:
            for member in tar:
                path = normalize(member.name)
                parent, base = posixpath.split(path)
                if base == OPAQUE_MARKER:
                    opaque.add(parent)
                elif base.startswith(WHITEOUT_PREFIX):
                    whiteouts.add(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
                elif path != "/":
                    entries[path] = _entry(tar, member)
                _add_parents(entries, parent)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise OperationError(f"layer is not a readable tar archive: {exc}") from None
    return LayerTable(entries, frozenset(whiteouts), frozenset(opaque))


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry:
    mode = member.mode & 0o7777
    if member.isreg():
        head = b""
        if mode & 0o111:
            extracted = tar.extractfile(member)
            head = extracted.read(HEAD_BYTES) if extracted else b""
        return Entry(FILE, mode, "", head)
    if member.isdir():
        return Entry(DIR, mode)
    if member.issym():
        return Entry(SYMLINK, mode, member.linkname)
    if member.islnk():
        return Entry(HARDLINK, mode, normalize(member.linkname))
    return Entry(OTHER, mode)


def _add_parents(entries: dict[str, Entry], parent: str) -> None:
    """Record directories a tar implies without listing them, so path walks can pass through."""
    while parent != "/" and parent not in entries:
        entries[parent] = Entry(IMPLICIT_DIR)
        parent = posixpath.dirname(parent)


# ---------------------------------------------------------------------------- (de)serialisation


def dump_table(table: LayerTable) -> bytes:
    rows = []
    for path, e in table.entries.items():
        row: list[object] = [path, e.kind, e.mode]
        if e.target or e.head:
            row.append(e.target)
        if e.head:
            row.append(base64.b64encode(e.head).decode("ascii"))
        rows.append(row)
    doc = {"format": FORMAT_VERSION, "entries": rows,
           "whiteouts": sorted(table.whiteouts), "opaque": sorted(table.opaque)}
    return json.dumps(doc, separators=(",", ":")).encode()


def load_table(data: bytes) -> LayerTable:
    """Inverse of dump_table; ValueError when the data is not a table of this format."""
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise ValueError(f"not a layer table of format {FORMAT_VERSION}")
    entries = {}
    for row in doc["entries"]:
        path, kind, mode, *rest = row
        target = rest[0] if rest else ""
        head = base64.b64decode(rest[1]) if len(rest) > 1 else b""
        entries[path] = Entry(kind, mode, target, head)
    return LayerTable(entries, frozenset(doc["whiteouts"]), frozenset(doc["opaque"]))


# ---------------------------------------------------------------------------- cache


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"  # XDG: relative is invalid
    return root / "buildctl" / "layers"


class LayerCache:
    """Layer tables by digest, in memory and (unless ``directory`` is None) on disk.

    Thread-safe; concurrent requests for one digest load it once (the others wait for it).
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, LayerTable] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, digest: str, load: Callable[[], LayerTable]) -> LayerTable:
        table = self._memory.get(digest)
        if table is not None:
            return table
        with self._guard:
            lock = self._locks.setdefault(digest, threading.Lock())
        with lock:
            table = self._memory.get(digest)
            if table is None:
                table = self._read(digest)
                if table is None:
                    table = load()
                    self._write(digest, table)
                self._memory[digest] = table
        return table

    def _path(self, digest: str) -> Path | None:
        if self.directory is None or not _DIGEST_RE.match(digest):
            return None  # only well-formed digests become file names
        return self.directory / f"v{FORMAT_VERSION}" / f"{digest.replace(':', '-')}.json"

    def _read(self, digest: str) -> LayerTable | None:
        path = self._path(digest)
        if path is None or not path.is_file():
            return None
        try:
            return load_table(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable layer cache file %s: %s", path, exc)
            return None

    def _write(self, digest: str, table: LayerTable) -> None:
        path = self._path(digest)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", delete=False) as tmp:
                tmp.write(dump_table(table))
            os.replace(tmp.name, path)  # atomic: readers never see half a file
        except OSError as exc:
            log.warning("could not write layer cache %s: %s", path, exc)


@cache
def shared_layer_cache() -> LayerCache:
    """The process-wide cache in the default directory."""
    return LayerCache(default_cache_dir())

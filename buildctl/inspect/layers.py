"""Layer tables: one streaming pass over a layer tar, keeping only what the checks need.

A table holds every member's path, type, mode, owner and link target, the first bytes of executable
regular files (enough for ``#!`` lines), and for every ELF file its header, PT_INTERP and the
largest page size its PT_LOAD segments map on (found through the program header table; the bytes
in between are skipped, not kept), and the whole of the account files docker reads to resolve the
config's User (users.ACCOUNT_FILES). Whiteouts follow the
OCI image spec, "Representing Changes" (``.wh.NAME``, ``.wh..wh..opq``).

Whatever the layer holds, the scan is bounded (ScanLimits): decompressed bytes, tar entries, the
size of one tar header (pax / GNU long names), path and symlink-target lengths, and the image's
deadline, checked on every read. Every tar header is read as Go's archive/tar (containerd) reads
it, or the layer is refused (tar_headers.py). Memory stays proportional to the entries kept:
tarfile's own member list is emptied as the scan goes.
"""

from __future__ import annotations

import gzip
import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import BinaryIO

from buildctl.errors import OperationError
from buildctl.inspect import elf
from buildctl.inspect.cache import (
    LayerCache,
    compact_entry,
    default_cache_dir,
    dump_table,
    load_table,
    shared_layer_cache,
)
from buildctl.inspect.image_fs import (
    BINPRM_BUF_SIZE,
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
from buildctl.inspect.tar_headers import tarinfo_class
from buildctl.inspect.users import ACCOUNT_FILES, MAX_ACCOUNT_BYTES
from buildctl.registry.bounds import Deadline, LimitError

__all__ = ["HEAD_BYTES", "LayerCache", "ScanLimits", "default_cache_dir", "dump_table", "load_table", "scan_layer",
           "shared_layer_cache"]

HEAD_BYTES = BINPRM_BUF_SIZE  # the kernel reads 256 bytes for #! lines; a shorter head is the whole file
ELF_HEAD_BYTES = 64  # an Elf64_Ehdr; kept for every ELF file
INTERP_UNREADABLE = "\0"  # PT_INTERP exists but lies where a forward-only read cannot reach it
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_SKIPPABLE, ZSTD_SKIPPABLE_MASK = 0x184D2A50, 0xFFFFFFF0  # a zstd stream may open with a skippable frame


@dataclass(frozen=True)
class ScanLimits:
    """What one layer may cost. A real image stays far below each (a Debian base layer: 80 MB
    unpacked, 9,000 entries); a layer over one fails the verification, naming the limit."""

    max_unpacked_bytes: int = 8 << 30
    max_entries: int = 250_000
    max_header_bytes: int = 1 << 20  # one pax / GNU long-name header block
    max_path: int = 4096  # PATH_MAX
    max_link_target: int = 4095  # the longest symlink Linux stores


class _Bounded(io.RawIOBase):
    """The decompressed layer as tarfile reads it: counts bytes and checks the deadline."""

    def __init__(self, stream: BinaryIO, limits: ScanLimits, deadline: Deadline | None, what: str) -> None:
        self._stream, self._limits, self._deadline, self._what = stream, limits, deadline, what
        self.unpacked = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        if self._deadline is not None:
            self._deadline.check()
        data = self._stream.read(len(buffer))
        self.unpacked += len(data)
        if self.unpacked > self._limits.max_unpacked_bytes:
            raise LimitError(f"{self._what} unpacks to more than {self._limits.max_unpacked_bytes} bytes "
                             "(limit: decompressed bytes per layer)")
        buffer[: len(data)] = data
        return len(data)


def _decompressed(stream: BinaryIO) -> BinaryIO:
    """Sniff the compression from magic bytes; media types lie more often than magic does."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[arg-type]
    magic = buffered.peek(4)[:4]
    if magic.startswith(GZIP_MAGIC):
        return _gunzip(buffered)
    # containerd's DetectCompression knows both openings of a zstd stream (archive/compression)
    if magic == ZSTD_MAGIC or (len(magic) == 4 and int.from_bytes(magic, "little") & ZSTD_SKIPPABLE_MASK
                               == ZSTD_SKIPPABLE):
        try:
            import zstandard
        except ImportError:
            raise OperationError(
                "a layer is zstd-compressed and the zstandard package is not installed",
                hint="pip install zstandard",
            ) from None
        return zstandard.ZstdDecompressor().stream_reader(buffered)  # type: ignore[return-value]
    return buffered


def _gunzip(stream: BinaryIO) -> BinaryIO:
    """Inflating is most of a layer scan's CPU (a 87 MB Debian layer: 1.3 s of 2.9 s): ISA-L's
    inflate (the isal package) takes 0.6 s, and while a prefetch runs beside the build every CPU
    second counts. The standard library's gzip where isal has no wheel."""
    try:
        from isal import igzip
    except ImportError:
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return igzip.IGzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]


def scan_layer(stream: BinaryIO, *, limits: ScanLimits = ScanLimits(), deadline: Deadline | None = None,
               what: str = "layer") -> LayerTable:
    """Read a (gzip/zstd/uncompressed) layer tar once, front to back."""
    entries: dict[str, Entry] = {}
    whiteouts: set[str] = set()
    opaque: set[str] = set()
    texts: dict[str, bytes] = {}
    source = io.BufferedReader(_Bounded(_decompressed(stream), limits, deadline, what), buffer_size=1 << 16)
    count = 0
    if not source.peek(1):  # an empty blob: containerd applies it as a layer adding nothing
        return LayerTable(entries)
    try:
        with tarfile.open(fileobj=source, mode="r|", tarinfo=tarinfo_class(limits.max_header_bytes, what)) as tar:
            while (member := tar.next()) is not None:
                tar.members.clear()  # tarfile keeps every TarInfo otherwise: ~1 KB per entry
                count += 1
                if count > limits.max_entries:
                    raise LimitError(f"{what} has more than {limits.max_entries} tar entries (limit)")
                _check_lengths(member, limits, what)
                if member.type not in _UNPACKED_TYPES:
                    raise OperationError(f"{what} has a tar member {member.name[:200]!r} of type {member.type!r}, which "
                                         "containerd does not unpack (unhandled tar header type): a pull of it fails")
                path = normalize(member.name)
                parent, base = posixpath.split(path)
                if base == OPAQUE_MARKER:
                    opaque.add(parent)
                elif base.startswith(WHITEOUT_PREFIX):
                    whiteouts.add(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
                elif path != "/":
                    whole = _account_text(tar, member, path)
                    entry = _entry(tar, member, io.BytesIO(whole) if whole is not None else None)
                    if whole is not None:
                        texts[path] = whole
                    else:  # a later member of the same path replaces what an earlier one held
                        texts.pop(path, None)
                    if entry.kind == HARDLINK and (target := entries.get(entry.target)) and target.kind == FILE:
                        # A hard link is the same inode as a file earlier in this tar: keep its bytes
                        # here, so an upper layer deleting or replacing that path leaves the link be.
                        entry = target
                    entries[path] = entry
                _add_parents(entries, parent)
                if len(entries) > limits.max_entries:  # implied parent directories count too
                    raise LimitError(f"{what} has more than {limits.max_entries} paths (limit: tar entries)")
    except RecursionError:  # a chain of pax headers: tarfile recurses once per header
        raise LimitError(f"{what} chains too many tar extension headers (limit)") from None
    except (tarfile.TarError, OSError, EOFError, UnicodeError) as exc:
        raise OperationError(f"{what} is not a readable tar archive: {exc}") from None
    return LayerTable(entries, frozenset(whiteouts), frozenset(opaque), texts)


def _account_text(tar: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> bytes | None:
    """The whole file when it is one docker reads for the User; read once (a tar stream cannot go
    back), and then scanned like any file from these bytes."""
    if path not in ACCOUNT_FILES or not member.isreg() or member.size > MAX_ACCOUNT_BYTES:
        return None
    extracted = tar.extractfile(member)
    return extracted.read() if extracted is not None else None


# What containerd's applier unpacks (archive/tar.go createTarFile); any other type fails the pull,
# where Python's tarfile reads a contiguous file ('7') or an unknown type as a regular file. Long-name
# and pax headers never reach here (tarfile reads them into the member they describe).
_UNPACKED_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE,
                             tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE))


def _check_lengths(member: tarfile.TarInfo, limits: ScanLimits, what: str) -> None:
    if len(member.name) > limits.max_path:
        raise LimitError(f"{what} has a path of {len(member.name)} characters (limit: {limits.max_path})")
    if len(member.linkname) > limits.max_link_target:
        raise LimitError(f"{what} has a link target of {len(member.linkname)} characters "
                         f"(limit: {limits.max_link_target})")


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo, content: BinaryIO | None = None) -> Entry:
    """``content``: the file's bytes when already read (_account_text), else read from the tar."""
    mode, uid, gid = member.mode & 0o7777, member.uid, member.gid
    if member.isreg():
        executable = bool(mode & 0o111)
        extracted = content or tar.extractfile(member)
        if extracted is None:
            return compact_entry(FILE, mode, uid=uid, gid=gid)
        head = extracted.read(HEAD_BYTES if executable else ELF_HEAD_BYTES)
        if not elf.is_elf(head):
            return compact_entry(FILE, mode, "", head if executable else b"", uid=uid, gid=gid)
        interp, page_align, problem = _program_facts(extracted, head, member.size)
        return Entry(FILE, mode, "", head[:ELF_HEAD_BYTES], interp, page_align, problem, uid, gid)
    if member.isdir():
        return compact_entry(DIR, mode, uid=uid, gid=gid)
    if member.issym():
        return Entry(SYMLINK, mode, member.linkname, uid=uid, gid=gid)
    if member.islnk():
        return Entry(HARDLINK, mode, normalize(member.linkname), uid=uid, gid=gid)
    return Entry(OTHER, mode, uid=uid, gid=gid)


def _program_facts(extracted: BinaryIO, prefix: bytes, file_size: int) -> tuple[str, int, str]:
    """(PT_INTERP, load alignment, why the kernel would refuse to load it) of an ELF file of
    ``file_size`` bytes being read front to back (``prefix``: what was read so far); ("", 0, "")
    for a file that is not ET_EXEC/ET_DYN (objects, core files: never loaded).

    The stream only moves forward: what lies between the program headers and the interpreter
    string is skipped, never kept (the kernel allows PT_INTERP anywhere; glibc's libc.so.6 has it
    past 64 KiB). The tar header gives the file's size, so a table or PT_INTERP past the file's
    end is a definite refusal, not a guess."""
    try:
        layout = elf.parse_layout(prefix)
    except ValueError:
        return "", 0, ""  # not a valid header: the machine check reports it
    if layout.e_type not in (elf.ET_EXEC, elf.ET_DYN):
        return "", 0, ""
    if problem := elf.table_problem(layout, file_size):
        return "", 0, problem
    position = len(prefix)
    if layout.phdrs_end <= elf.MAX_PREFIX:
        prefix += extracted.read(max(layout.phdrs_end - len(prefix), 0))
        position = len(prefix)
        phdrs = prefix[layout.phoff : layout.phdrs_end]
    elif layout.phoff >= position:
        _skip(extracted, layout.phoff - position)
        phdrs = extracted.read(layout.phdrs_end - layout.phoff)
        position = layout.phoff + len(phdrs)
    else:
        return INTERP_UNREADABLE, 0, ""
    align = elf.load_alignment(layout, phdrs)
    where = elf.interp_location(layout, phdrs)
    if where is None:
        return "", align, ""
    offset, size = where
    if problem := elf.interp_problem(offset, size, file_size):
        return "", align, problem
    if offset + size <= len(prefix):
        raw = prefix[offset : offset + size]
    elif offset >= position:
        _skip(extracted, offset - position)
        raw = extracted.read(size)
    else:
        return INTERP_UNREADABLE, align, ""  # before what was read: out of a stream's reach
    if len(raw) != size:
        return "", align, f"its PT_INTERP ends past the end of the file ({file_size} bytes)"
    if not raw.endswith(b"\0"):  # the kernel requires the NUL at p_filesz - 1 (ENOEXEC otherwise)
        return "", align, "its PT_INTERP is not NUL-terminated"
    if not (interp := elf.interp_string(raw)):
        return "", align, "its PT_INTERP is an empty path"
    return interp, align, ""


def _skip(extracted: BinaryIO, count: int) -> None:
    """Move forward ``count`` bytes (a tar stream cannot seek), keeping nothing."""
    while count > 0:
        chunk = extracted.read(min(count, 1 << 16))
        if not chunk:
            return
        count -= len(chunk)


def _add_parents(entries: dict[str, Entry], parent: str) -> None:
    """Record directories a tar implies without listing them, so path walks can pass through."""
    while parent != "/" and parent not in entries:
        entries[parent] = compact_entry(IMPLICIT_DIR, 0o755)
        parent = posixpath.dirname(parent)

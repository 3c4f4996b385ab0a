"""Tar headers read as Go's archive/tar reads them, or the layer is refused.

containerd and docker unpack a layer with Go's archive/tar; the scan reads it with Python's
tarfile, and the two disagree on malformed headers. Each disagreement is a false pass: a size field
opening with a NUL is the real size for Go (parseOctal trims " \\x00" at both ends) and 0 for
Python (nti stops at the first NUL), so Python reads the file's bytes as further members; a block
that is no header, or a zero block followed by data, ends the archive silently for Python
(TarFile.next() swallows a HeaderError past offset 0) where Go fails the pull. So every header
block is checked here, before tarfile parses it, and the layer is refused wherever the two readings
could differ: numeric fields, the ustar prefix, the end of the archive, pax records.

The refusal is an OperationError: tarfile's next() re-raises anything that is not a HeaderError.
"""

from __future__ import annotations

import re
import tarfile

from buildctl.errors import OperationError
from buildctl.registry.bounds import LimitError

__all__ = ["go_numeric", "go_octal", "header_problem", "not_a_header", "pax_problem", "tarinfo_class"]

BLOCK = tarfile.BLOCKSIZE
ZERO_BLOCK = bytes(BLOCK)
# (name, start, end, Go's parser): archive/tar reader.go readHeader; the checksum is parseOctal only
_NUMERIC = (("mode", 100, 108, "numeric"), ("uid", 108, 116, "numeric"), ("gid", 116, 124, "numeric"),
            ("size", 124, 136, "numeric"), ("mtime", 136, 148, "numeric"), ("chksum", 148, 156, "octal"),
            ("devmajor", 329, 337, "numeric"), ("devminor", 337, 345, "numeric"))
_MAGIC_USTAR, _MAGIC_GNU, _VERSION_GNU, _TRAILER_STAR = b"ustar\0", b"ustar ", b" \0", b"tar\0"
_OCTAL = re.compile(rb"[0-7]+")
# digits between padding: both readers take the digits (the fast path for every header a real
# writer makes; a NUL before the digits is what they read differently)
_PLAIN = re.compile(rb" *([0-7]*)[ \0]*")
_PAX_INT = re.compile(r"[+-]?[0-9]+")  # strconv.ParseInt(v, 10, 64); Python's int() takes more (" 1", "1_0")
_PAX_TIME = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?")  # parsePAXTime; Python's float() takes "inf", "1e3"
_PAX_INTS, _PAX_TIMES = ("size", "uid", "gid"), ("mtime", "atime", "ctime")
# keys Python applies from a global header to later members, which Go never does (it hands the
# global header to the caller, and containerd skips it)
_APPLIED = ("path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname")
_PAX_RECORD = re.compile(rb"([1-9][0-9]{0,18}) ")  # a length past 19 digits is past any body; int() of
# thousands of digits raises (sys.int_info.str_digits_check_threshold)


def go_octal(field: bytes) -> int | None:
    """archive/tar parseOctal; None where Go fails the header (ErrHeader)."""
    digits = field.strip(b" \0").split(b"\0", 1)[0]
    if not digits:
        return 0
    return int(digits, 8) if _OCTAL.fullmatch(digits) else None


def go_numeric(field: bytes) -> int | None:
    """archive/tar parseNumeric: base-256 (two's complement) when the first bit is set, else octal."""
    if not field or not field[0] & 0x80:
        return go_octal(field)
    invert = 0xFF if field[0] & 0x40 else 0
    value = 0
    for i, byte in enumerate(field):
        byte ^= invert
        if i == 0:
            byte &= 0x7F
        if value >> 56:
            return None  # overflow
        value = value << 8 | byte
    if value >> 63:
        return None
    return ~value if invert else value


def _python_number(field: bytes) -> int | None:
    try:
        return tarfile.nti(field)
    except tarfile.HeaderError:
        return None


def _go_prefix(buf: bytes) -> bytes:
    """The ustar prefix Go joins to the name: ustar and star headers; GNU ones only when its
    atime/ctime fail to parse (a pre-1.8 Go writer's bug it reads around); never v7."""
    magic, version = buf[257:263], buf[263:265]
    if magic == _MAGIC_USTAR:
        end = 476 if buf[508:512] == _TRAILER_STAR else 500
        return buf[345:end].split(b"\0", 1)[0]
    if magic == _MAGIC_GNU and version == _VERSION_GNU:
        times_bad = any(buf[a] != 0 and go_numeric(buf[a:b]) is None for a, b in ((345, 357), (357, 369)))
        prefix = buf[345:500].split(b"\0", 1)[0]
        return prefix if times_bad and prefix.isascii() else b""
    return b""


def not_a_header(buf: bytes) -> bool:
    """True for a (non-zero, 512-byte) block that is no header to one of the readers: its checksum
    field is no octal number to one of them, or does not match the block."""
    field = buf[148:156]
    python, go = _python_number(field), go_octal(field)
    return python is None or python != go or python not in tarfile.calc_chksums(buf)


def header_problem(buf: bytes) -> str:
    """Why Go and Python could read this header block differently; "" if they read it alike."""
    read = {}
    for name, start, end, parser in _NUMERIC:
        field = buf[start:end]
        if plain := _PLAIN.fullmatch(field):
            read[name] = int(plain.group(1) or b"0", 8)
            continue
        python = _python_number(field)
        go = go_octal(field) if parser == "octal" else go_numeric(field)
        if python is None or go is None or python != go:
            python_reads = "no number" if python is None else python
            go_reads = "no number" if go is None else go
            return (f"its {name} field {field!r} reads as {python_reads} in Python's tarfile and {go_reads} "
                    "in Go's archive/tar")
        read[name] = python
    if read["size"] < 0:
        return f"a negative size ({read['size']})"
    python_prefix = b"" if buf[156:157] in tarfile.GNU_TYPES else buf[345:500].split(b"\0", 1)[0]
    if python_prefix and buf[257:263] == _MAGIC_GNU:  # Go's reading hangs on its atime/ctime fallback
        return f"a prefix field {python_prefix!r} on a GNU header (GNU has none; Go may or may not join it)"
    if python_prefix != _go_prefix(buf):
        return f"a prefix field {python_prefix!r} that Python's tarfile and Go's join to the name differently"
    if buf[156:157] == tarfile.GNUTYPE_SPARSE:
        return "a GNU sparse file (the two readers map its holes differently)"
    return ""


def pax_problem(body: bytes) -> str:
    """Go's parsePAX refuses a record Python's tarfile (3.11) skips or reads around: every record is
    "LENGTH KEY=VALUE\\n", LENGTH counting the whole record."""
    position = 0
    while position < len(body):
        if not (match := _PAX_RECORD.match(body, position)):
            return f"a malformed pax record at byte {position}"
        end = position + int(match.group(1))
        record = body[match.end():end]
        if end > len(body) or not record.endswith(b"\n") or b"=" not in record[:-1]:
            return f"a malformed pax record at byte {position}"
        key, _, value = record[:-1].partition(b"=")
        if not key or b"\0" in key:
            return f"a pax record with an invalid key at byte {position}"
        if key in (b"path", b"linkpath", b"uname", b"gname") and b"\0" in value:
            return f"a pax {key.decode()} holding a NUL, which Go's archive/tar refuses"
        if key.startswith(b"GNU.sparse."):
            return "a GNU sparse file (the two readers map its holes differently)"
        name, text = key.decode("utf-8", "replace"), value.decode("utf-8", "replace")
        pattern = _PAX_INT if name in _PAX_INTS else _PAX_TIME if name in _PAX_TIMES else None
        if pattern is not None and not pattern.fullmatch(text):
            return f"a pax {name} of {text[:40]!r}, which Go's archive/tar refuses"
        # Go parses both into int64 (a time's seconds too); int() of thousands of digits would raise
        if pattern is not None and len(text.partition(".")[0]) > 20:
            return f"a pax {name} out of Go's range ({text[:40]}...)"
        if name in _PAX_INTS and not (0 if name == "size" else -(1 << 63)) <= int(text) < 1 << 63:
            return f"a pax {name} out of Go's range ({text})"
        position = end
    return ""


class _Replay:
    """tar.fileobj with ``data`` (already read) put back in front of it, for tarfile to read again."""

    def __init__(self, inner, data: bytes) -> None:  # type: ignore[no-untyped-def]
        self._inner, self._data = inner, data

    def read(self, size: int) -> bytes:
        head, self._data = self._data[:size], self._data[size:]
        return head + (self._inner.read(size - len(head)) if size > len(head) else b"")

    def tell(self) -> int:
        return self._inner.tell() - len(self._data)


def tarinfo_class(max_header_bytes: int, what: str) -> type[tarfile.TarInfo]:
    """The TarInfo tarfile builds for every member of one layer (``what`` names it in refusals)."""

    def refuse(problem: str) -> OperationError:
        return OperationError(f"{what} has a tar header that containerd (Go's archive/tar) and this "
                              f"check (Python's tarfile) could read differently: {problem}")

    def unreadable(problem: str) -> OperationError:
        # Go's archive/tar fails here; Python's tarfile would end the archive silently past byte 0
        return OperationError(f"{what} is not a readable tar archive: {problem}")

    class CheckedTarInfo(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tar):  # type: ignore[no-untyped-def]
            buf = tar.fileobj.read(BLOCK)
            if len(buf) == BLOCK and buf == ZERO_BLOCK:
                # Go ends the archive at two zero blocks or a zero block and the end of the stream;
                # a zero block and then anything else is ErrHeader (reader.go readHeader).
                after = tar.fileobj.read(BLOCK)
                if after and after != ZERO_BLOCK:
                    raise unreadable("a zero block followed by one that is not (Go: invalid tar header)")
                raise tarfile.EOFHeaderError("end of archive")
            if buf and len(buf) != BLOCK:
                raise unreadable(f"a truncated tar header ({len(buf)} bytes at the end of the stream)")
            try:  # an empty buf: the end (Go: io.EOF)
                obj = cls.frombuf(buf, tar.encoding, tar.errors)
            except tarfile.InvalidHeaderError:  # a field Python cannot read, or the checksum: tarfile's own
                # test, once per header (checking it here too cost ~10 us a member, +12 % of a layer scan)
                if not not_a_header(buf) and (problem := header_problem(buf)):
                    raise refuse(problem) from None
                where = tar.fileobj.tell() - BLOCK
                raise unreadable(f"a block at byte {where} that is no tar header (bad checksum)") from None
            if problem := header_problem(buf):
                raise refuse(problem)
            obj.offset = tar.fileobj.tell() - BLOCK
            return obj._proc_member(tar)

        # tarfile reads a pax / GNU long-name header's whole body into memory before we see the
        # member; refuse an oversized one first (TarInfo._proc_member: CPython's dispatch point).
        def _proc_member(self, tar):  # type: ignore[no-untyped-def]
            if self.type in _LONG_HEADERS and self.size > max_header_bytes:
                raise LimitError(f"{what} has a {self.size}-byte tar header (limit: {max_header_bytes} "
                                 "bytes per pax/long-name header)")
            if self.type not in _PAX_TYPES:
                return super()._proc_member(tar)
            body = tar.fileobj.read(self._block(self.size))
            if problem := pax_problem(body[: self.size]):
                raise refuse(problem)
            inner, tar.fileobj = tar.fileobj, _Replay(tar.fileobj, body)
            try:
                member = super()._proc_member(tar)
            finally:
                tar.fileobj = inner
            if applied := sorted(set(tar.pax_headers) & set(_APPLIED)):
                raise refuse(f"a global pax header setting {', '.join(applied)} (Python applies it to "
                             "later members, Go does not)")
            return member
    return CheckedTarInfo


_PAX_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_LONG_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, *_PAX_TYPES)

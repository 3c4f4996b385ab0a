"""The text of a config file: a regular file, UTF-8, every problem one line with file:line.

Checked before PyYAML sees anything, so nothing blocks (a FIFO passed as -c would wait forever for
a writer), and encoding problems name the line a person can open, not a byte offset.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

from buildctl.errors import ConfigError

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def kind_of(mode: int) -> str:
    """What a non-regular, non-folder file is, in words."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def strerror(exc: OSError) -> str:
    """An OSError in words, without the path (which may be long) it carries."""
    if exc.errno == errno.ELOOP:
        return "a symlink loop (too many levels of symbolic links)"
    return exc.strerror or str(exc)


def read_text(path: Path, shown: str) -> str:
    """The UTF-8 text of ``path``; ConfigError (exit 2) for anything that is not a readable
    regular UTF-8 file."""

    def fail(message: str, line: int | None = None, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=shown, line=line, hint=hint)

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise fail("file not found", hint="pass -c/--config PATH or run from the folder holding services.yaml") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise fail(f"cannot read: {strerror(exc) if isinstance(exc, OSError) else exc}") from None
    if stat.S_ISDIR(mode):
        raise fail("is a folder, not a file", hint=f"pass {shown}/services.yaml")
    if not stat.S_ISREG(mode):
        raise fail(f"not a regular file: it is {kind_of(mode)}")
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it does not wait.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise fail("not a regular file")
            data = handle.read()
    except OSError as exc:
        raise fail(f"cannot read: {strerror(exc)}") from None
    return decode(data, fail)


def _looks_like_utf16(data: bytes) -> bool:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    sample = data[:256 if len(data) >= 256 else len(data) & ~1]
    # ASCII text in UTF-16 has a NUL in every other byte (UTF-8 text has none), and decodes as
    # UTF-16 to printable text; a binary file (-c /bin/ls) has NULs too, but does not.
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if len(sample) < 4 or max(even, odd) * 4 < len(sample):
        return False
    try:
        text = sample.decode("utf-16-le" if odd > even else "utf-16-be")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\t\r\n" for c in text)


def decode(data: bytes, fail) -> str:
    if _looks_like_utf16(data):
        raise fail("the file looks like UTF-16 text; services.yaml must be UTF-8", 1,
                   hint="convert it, e.g. iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise fail(f"not UTF-8: byte 0x{data[exc.start]:02x} at column {column} cannot be decoded; "
                   "save the file as UTF-8", line) from None


def character_problem(text: str, position: int, character: int | str, reason: str) -> tuple[int, str]:
    """(line, message) for PyYAML's ReaderError (a character YAML does not allow) at ``position``."""
    code = character if isinstance(character, int) else ord(character[:1] or "\0")
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    what = "control character" if unicodedata.category(chr(code)) == "Cc" else "character"
    return line, f"not valid YAML: {what} U+{code:04X} at column {column} is not allowed ({reason})"

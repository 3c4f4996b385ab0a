"""The files and folders services.yaml names (contexts, Dockerfiles, TLS files, keys), resolved and
checked so that every way a path can be wrong is one line: missing, a file where a folder belongs
or the reverse, a FIFO, a symlink loop, a name too long for the file system.

``fail(message, at)`` is the loader's: it adds file, line and key.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from buildctl.config.source_text import kind_of, strerror
from buildctl.config.yaml_source import Path_, shorten
from buildctl.errors import ConfigError

Fail = Callable[..., ConfigError]
SHOWN = 80  # a path the user wrote is shown up to this many characters


def resolve(root: Path, rel: str, at: Path_, fail: Fail, *, what: str) -> Path:
    """``root / rel`` with every symlink resolved (it need not exist)."""
    try:
        return (root / rel).resolve()
    except RuntimeError:  # Python 3.11's pathlib: "Symlink loop from ..."
        raise fail(f"{what} {shorten(rel, SHOWN)} cannot be resolved: a symlink loop", at) from None
    except OSError as exc:
        raise fail(f"{what} {shorten(rel, SHOWN)} cannot be resolved: {strerror(exc)}", at) from None


def kind(path: Path, rel: str, at: Path_, fail: Fail, *, what: str) -> str:
    """"missing", "folder", "file" (regular) or what else ``path`` is ("a named pipe (FIFO)"...)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except OSError as exc:  # ELOOP (Python 3.13 resolves loops without raising), ENAMETOOLONG, EACCES
        raise fail(f"{what} {shorten(rel, SHOWN)} cannot be read: {strerror(exc)}", at) from None
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else kind_of(mode)


def folder(root: Path, rel: str, at: Path_, fail: Fail, *, what: str, resolved: Path | None = None) -> Path:
    """The existing folder ``rel`` names."""
    path = resolved or resolve(root, rel, at, fail, what=what)
    found = kind(path, rel, at, fail, what=what)
    shown = shorten(rel, SHOWN)
    if found == "missing":
        raise fail(f"{what} folder {shown} does not exist", at)
    if found == "file":
        raise fail(f"{what} {shown} is a file, not a folder", at)
    if found != "folder":
        raise fail(f"{what} {shown} is {found}, not a folder", at)
    return path


def regular_file(root: Path, rel: str, at: Path_, fail: Fail, *, what: str, resolved: Path | None = None,
                 missing: str = "does not exist", hint: str | None = None) -> Path:
    """The existing regular file ``rel`` names (a FIFO would block whoever reads it)."""
    path = resolved or resolve(root, rel, at, fail, what=what)
    found = kind(path, rel, at, fail, what=what)
    shown = shorten(rel, SHOWN)
    if found == "missing":
        raise fail(f"{what} {shown} {missing}", at, hint=hint)
    if found == "folder":
        raise fail(f"{what} {shown} is a folder, not a file", at)
    if found != "file":
        raise fail(f"{what} {shown} is {found}, not a regular file", at)
    return path

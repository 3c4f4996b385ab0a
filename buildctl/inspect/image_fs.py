"""An image's filesystem as metadata, and how the kernel's path walk finds a program in it.

Pure: ``resolve_path`` and ``find_program`` (and buildctl.inspect.interpreters over them) work
over anything with ``get(path) -> Entry | None`` — a plain dict in tests, a ``LayeredView`` over
layer tables (buildctl.layers) in real use. Paths are absolute and normalised
("/usr/bin/python3"); "/" is always a directory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from buildctl.inspect import elf

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # runc's default
MAX_SYMLINKS = 40  # Linux MAXSYMLINKS
BINPRM_BUF_SIZE = 256  # what the kernel reads of a file for its #! line (include/uapi/linux/binfmts.h)

FILE, DIR, SYMLINK, HARDLINK, OTHER, IMPLICIT_DIR = "f", "d", "l", "h", "o", "i"


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # FILE | DIR | SYMLINK | HARDLINK | OTHER | IMPLICIT_DIR (parent not in the tar)
    mode: int = 0o755
    target: str = ""  # symlink target as written, or hardlink target path (absolute)
    head: bytes = b""  # first bytes of executable regular files, and the ELF header of every ELF file
    interp: str = ""  # an ELF file's PT_INTERP (its program interpreter); "" when statically linked
    page_align: int = 0  # an ELF file's largest page size its PT_LOAD segments map on (elf.load_alignment); 0: none
    problem: str = ""  # why the kernel would refuse to load an ET_EXEC/ET_DYN file (program headers, PT_INTERP)
    uid: int = 0  # the tar header's numeric owner: containerd chowns to it (names in the header are ignored)
    gid: int = 0

    @property
    def is_elf(self) -> bool:
        return self.kind == FILE and elf.is_elf(self.head)

    @property
    def is_dir(self) -> bool:
        return self.kind in (DIR, IMPLICIT_DIR)

    @property
    def executable(self) -> bool:
        return self.kind == FILE and bool(self.mode & 0o111)


ROOT = Entry(DIR)


class FileSystem(Protocol):
    def get(self, path: str) -> Entry | None: ...


@dataclass(frozen=True)
class LayerTable:
    """What one layer tar adds, replaces and deletes."""

    entries: Mapping[str, Entry]
    whiteouts: frozenset[str] = frozenset()  # paths deleted by ``.wh.NAME``
    opaque: frozenset[str] = frozenset()  # directories whose lower contents ``.wh..wh..opq`` hides
    texts: Mapping[str, bytes] = field(default_factory=dict)  # whole files the runtime reads (users.ACCOUNT_FILES)

    def hides(self, path: str) -> bool:
        """Whether this layer deletes ``path`` from the layers below it."""
        if not self.whiteouts and not self.opaque:
            return False  # most layers delete nothing: no parent walk (verification asks per ELF file)
        if path in self.whiteouts:
            return True
        parent = posixpath.dirname(path)
        while parent != "/":
            if parent in self.opaque or parent in self.whiteouts:
                return True
            parent = posixpath.dirname(parent)
        return "/" in self.opaque

    @cached_property
    def hard_links(self) -> tuple[str, ...]:
        """Paths of hard links the scan could not resolve within this layer (their file is below)."""
        return tuple(path for path, entry in self.entries.items() if entry.kind == HARDLINK)

    @cached_property
    def elf_entries(self) -> tuple[tuple[str, Entry, Entry], ...]:
        """(path, entry, ELF content) of every ELF file this layer holds, hard links as their file:
        computed once per table, which every service and image built on the layer shares."""
        found = []
        for path, entry in self.entries.items():
            content = self.entries.get(entry.target) if entry.kind == HARDLINK else entry
            if content is not None and content.is_elf:
                found.append((path, entry, content))
        return tuple(found)


@dataclass(frozen=True)
class LayeredView:
    """The union of layer tables, bottom layer first, as overlayfs would show it.

    ``get`` answers for one path; walk paths with ``resolve_path``, which looks at every component,
    so a directory an upper layer replaced by a file or symlink hides the lower layers' children.
    """

    layers: Sequence[LayerTable]

    def top(self, path: str) -> tuple[int, Entry] | None:
        """The topmost entry for ``path`` as its layer wrote it (a hard link stays one), and that
        layer's index."""
        if path == "/":
            return len(self.layers), ROOT
        implicit = None
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            entry = layer.entries.get(path)
            if entry is not None:
                if entry.kind != IMPLICIT_DIR:
                    # containerd's overlayfs applier makes an unlisted parent a real directory in the
                    # upper layer (archive mkparent, not resolved through lower symlinks): it hides a
                    # lower file or symlink like a listed one would; a lower directory merges, its
                    # entry the one with the real mode (mkparent copies its attributes).
                    return (index, entry) if implicit is None or entry.kind == DIR else implicit
                implicit = implicit or (index, entry)
            elif layer.hides(path):
                break
        return implicit

    def get(self, path: str) -> Entry | None:
        """The entry for ``path``; a hard link is its target's file as of the link's layer (the same
        inode, whatever upper layers do to that path; the layer's own whiteouts only hide below it)."""
        found = self.top(path)
        for _ in range(MAX_SYMLINKS):
            if found is None or found[1].kind != HARDLINK:
                return found[1] if found else None
            index, entry = found
            same = self.layers[index].entries.get(entry.target)
            found = (index, same) if same is not None and same is not entry else \
                LayeredView(self.layers[:index]).top(entry.target)
        return None  # hard links to hard links without end: a crafted tar the extractor refuses


class ResolveError(Exception):
    """The command cannot be found or started; the message says why, naming the path."""


def normalize(path: str) -> str:
    """A tar member name or absolute path -> "/a/b" (no "./", no trailing slash)."""
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def _get(fs: FileSystem, path: str) -> Entry | None:
    entry = fs.get(path)
    if entry is not None and entry.kind == HARDLINK:
        return fs.get(entry.target)  # tar hard links point at a regular file seen earlier
    return entry


def resolve_path(fs: FileSystem, path: str, *, cwd: str = "/") -> tuple[str, Entry]:
    """Follow symlinks in every component, as the kernel's path walk does."""
    pending = list(reversed(posixpath.join(cwd, path).split("/")))
    parts: list[str] = []
    entry = ROOT
    links = 0
    while pending:
        part = pending.pop()
        # Any component after a non-directory is ENOTDIR, "" and "." too: "/app/", "/app/." and a
        # symlink to "ld.so/" name a directory for the kernel, whatever the file is.
        if not entry.is_dir:
            raise ResolveError(f"/{'/'.join(parts)} is not a directory (resolving {path})")
        if part in ("", "."):
            continue
        if part == "..":
            parts = parts[:-1]
            entry = ROOT if not parts else (_get(fs, "/" + "/".join(parts)) or ROOT)
            continue
        candidate = "/" + "/".join([*parts, part])
        found = _get(fs, candidate)
        if found is None:
            raise ResolveError(f"{candidate} does not exist" + (f" (resolving {path})" if candidate != path else ""))
        if found.kind == SYMLINK:
            links += 1
            if links > MAX_SYMLINKS:
                raise ResolveError(f"too many levels of symbolic links resolving {path}")
            if found.target.startswith("/"):
                parts, entry = [], ROOT
            pending.extend(reversed(found.target.split("/")))
            continue
        parts.append(part)
        entry = found
    return "/" + "/".join(parts), entry


def find_program(fs: FileSystem, name: str, *, path_env: str, workdir: str = "/",
                 runs: Callable[[Entry], bool] | None = None, who: str = "") -> tuple[str, Entry]:
    """execvp: a name with a slash is a path (relative to the working directory), else search PATH.
    ``runs``: whether the caller may execute an entry, where only its x bits for ``who`` count
    (an exec by a program without capabilities; users.Account.may_execute); any x bit otherwise."""
    executable = runs or (lambda entry: entry.executable)
    kind = f"executable by {who}" if runs and who else "an executable file"
    if "/" in name:
        real, entry = resolve_path(fs, name, cwd=workdir)
        if not executable(entry):
            raise ResolveError(f"{name} is not {kind}" + (f" ({real})" if real != name else ""))
        return real, entry
    seen_not_executable = None
    for directory in path_env.split(":"):
        candidate = posixpath.join(workdir, directory or ".", name)
        try:
            real, entry = resolve_path(fs, candidate)
        except ResolveError:
            continue
        if executable(entry):  # execvp goes on past EACCES to the next PATH entry
            return real, entry
        seen_not_executable = seen_not_executable or candidate
    if seen_not_executable:
        raise ResolveError(f"{name} found at {seen_not_executable} but it is not {kind}")
    raise ResolveError(f"{name} not found in PATH {path_env}")

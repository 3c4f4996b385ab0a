"""A build context as BuildKit receives it: the files ``.dockerignore`` lets through, each with its
mode, its content digest (regular files) or its link target (symlinks).

The pattern rules are docker-py's (``docker.utils.build.PatternMatcher``, loaded by
ignore_rules.py: Go's filepath.Match plus ``**`` and ``!`` exceptions, as moby/patternmatcher
applies them); the ignore file is read as moby/patternmatcher/ignorefile.ReadAll reads it.
``<Dockerfile>.dockerignore`` beside the Dockerfile wins over the context's ``.dockerignore``, as
in BuildKit's dockerfile frontend.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from buildctl.inputs.ignore_rules import build_module

FILE, DIR, LINK, OTHER = "f", "d", "l", "o"


@dataclass(frozen=True)
class ContextEntry:
    path: str  # relative to the context, POSIX separators
    kind: str  # FILE, DIR, LINK or OTHER
    mode: int  # permission bits (and setuid/setgid/sticky)
    content: str = ""  # sha256 of a regular file, the target of a symlink


def ignore_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file: comments and blank lines out, each cleaned as
    filepath.Clean would, a leading ``/`` dropped, ``!`` kept in front."""
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if not line:
            continue
        line = posixpath.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line[1:].lstrip("/") or "."
        out.append(("!" if invert else "") + line)
    return out


def ignore_file(context: Path, dockerfile: Path) -> Path | None:
    """The ignore file BuildKit applies: ``Dockerfile.dockerignore`` beside the Dockerfile, else
    the context's ``.dockerignore``, else none."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def context_entries(context: Path, dockerfile: Path) -> tuple[ContextEntry, ...]:
    """Every path of ``context`` that a build sees, sorted, with what decides its bytes in a COPY."""
    _, patterns, own = _rules(context, dockerfile)
    included = build_module().exclude_paths(str(context), patterns, dockerfile=own)
    return tuple(sorted((_entry(context, p) for p in included), key=lambda e: e.path))


def seen_by_build(context: Path, dockerfile: Path) -> Callable[[str], bool]:
    """Would a build of ``context`` see the file at this path (POSIX, relative to the context)?
    The rules of ``context_entries``, for paths that need not exist any more (a commit's files)."""
    found, patterns, own = _rules(context, dockerfile)
    if found is None or not patterns:
        return lambda relative: True
    matcher = build_module().PatternMatcher([*patterns, f"!{own}"])  # as exclude_paths: the Dockerfile is always sent
    exceptions = [p.cleaned_pattern for p in matcher.patterns if p.exclusion]
    ignores = {found.relative_to(context).as_posix()} if found.is_relative_to(context) else set()

    def seen(relative: str) -> bool:
        if relative in ignores:  # a changed ignore file changes what is seen: it counts
            return True
        parts = relative.split("/")
        for depth in range(1, len(parts)):  # as PatternMatcher.walk: a matched folder hides all in it...
            folder = "/".join(parts[:depth])
            if matcher.matches(folder) and not any(e.startswith(folder) for e in exceptions):  # ...but !exceptions
                return False
        return not matcher.matches(relative)

    return seen


def _rules(context: Path, dockerfile: Path) -> tuple[Path | None, list[str], str]:
    """The ignore file that applies, its patterns, and the Dockerfile as the context names it."""
    found = ignore_file(context, dockerfile)
    patterns = ignore_patterns(found.read_text(encoding="utf-8", errors="replace")) if found else []
    try:
        own = dockerfile.relative_to(context).as_posix()
    except ValueError:
        own = "Dockerfile"
    return found, patterns, own


def _entry(context: Path, relative: str) -> ContextEntry:
    path = context / relative
    info = os.lstat(path)
    shown = Path(relative).as_posix()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return ContextEntry(shown, LINK, mode, os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ContextEntry(shown, DIR, mode)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return ContextEntry(shown, FILE, mode, digest.hexdigest())
    return ContextEntry(shown, OTHER, mode)

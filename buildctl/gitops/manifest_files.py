"""Reading a manifest file of the GitOps checkout: exactly its bytes, or one clear refusal.

A symlink (or a path through a symlinked folder) is refused: git commits the link, not the file the
edit went to. Errors never show the checkout's (temporary) path. Where GitOps text enters, the alias,
depth and cycle bounds of services.yaml apply.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path, PurePosixPath

import yaml

from buildctl.config.yaml_bounds import check_bounds
from buildctl.errors import ConfigError
from buildctl.gitops.yaml_nodes import fast_loader


@functools.lru_cache(maxsize=64)
def _real(root: Path) -> str:
    return os.path.realpath(root)


def _refuse_links(root: Path, path: str) -> None:
    """Why ``path`` does not lead straight to a file of the repository: outside it, or a symlink."""
    try:
        outside = not (root / path).resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop: named below
        outside = False
    if outside:
        raise ConfigError("manifest path is outside the GitOps repository", file=path)
    here = root
    for part in PurePosixPath(path).parts:
        here = here / part
        if here.is_symlink():
            link = here.relative_to(root).as_posix()
            what = "is a symlink" if link == PurePosixPath(path).as_posix() else f"{link} is a symlink"
            raise ConfigError(f"{what} (to {os.readlink(here)}); list the file itself", file=path)


def read_manifest(root: Path, path: str) -> str:
    """The file's text exactly as stored: bytes decoded as utf-8 (not -sig: a BOM stays), CRLF kept.

    A symlink (or a path through a symlinked folder) is refused: git commits the link, not the file
    the edit went to. Errors never show the checkout's (temporary) path."""
    # One realpath for the usual case (no link on the way); the diagnosis only when it differs.
    file = root / path  # realpath leaves a symlink loop as it is: hence islink too
    if os.path.islink(file) or os.path.realpath(file) != os.path.join(_real(root), os.path.normpath(path)):
        _refuse_links(root, path)
    try:
        data = (root / path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("manifest file does not exist in the GitOps repository", file=path) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=path, hint="list the manifest files in it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read manifest: {exc.strerror or type(exc).__name__}", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", file=path,
                          line=data.count(b"\n", 0, exc.start) + 1, hint="save the file as UTF-8") from None
    # Where GitOps text enters: the alias, depth and cycle bounds of services.yaml apply, so a deep
    # or self-referencing file is one ConfigError, never a RecursionError. Edits of it nest no deeper.
    fast = fast_loader(text)  # libyaml gives up at 1,000 levels: bound again in Python
    for loader in (*([fast] if fast is not None else []), yaml.SafeLoader):
        try:
            check_bounds(text, path, loader)
            break
        except yaml.YAMLError:
            continue  # not YAML at all: compose_documents words that, with its line
    return text

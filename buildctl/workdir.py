"""`.buildctl/` in the project: run records, build logs, the quick start's GitOps repository.

None of it belongs in Git, so the folder carries its own `.gitignore` (`*`, which also ignores
itself, as virtualenv and pytest do): a `git add .` after a release adds nothing from it, whatever
the project's own .gitignore says.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from buildctl import jsonsafe

STATE_DIR = ".buildctl"
_GITIGNORE = "# Written by buildctl: release records, logs and caches stay out of Git.\n*\n"


def state_dir(root: Path) -> Path:
    """``root/.buildctl``, created if needed, with its .gitignore (written once, never replaced)."""
    path = root / STATE_DIR
    path.mkdir(parents=True, exist_ok=True)
    try:
        with (path / ".gitignore").open("x") as file:
            file.write(_GITIGNORE)
    except FileExistsError:
        pass  # ours from an earlier run, or the user's own: leave it
    return path


def run_path(root: Path, run_id: str) -> Path:
    """Where the folder of one run is (nothing is created: the plan names files in it)."""
    return root / STATE_DIR / "runs" / run_id


def run_dir(root: Path, run_id: str) -> Path:
    """The folder of one run (created): its record, build logs and metadata."""
    state_dir(root)
    path = run_path(root, run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_root() -> Path:
    """The user's cache folder for buildctl: ``$XDG_CACHE_HOME/buildctl``, else ``~/.cache/buildctl``
    (a relative XDG_CACHE_HOME is invalid by the XDG spec, and ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "buildctl"


USABLE_BUILDERS = "usable-builders"  # the builders that passed a check as configured (pipeline/builder_check.py)


def has_marks(folder: str) -> bool:
    """Whether ``folder`` of the cache holds any mark (an unreadable one: as if it did)."""
    try:
        with os.scandir(cache_root() / folder) as entries:
            return any(True for _ in entries)
    except FileNotFoundError:
        return False
    except OSError:
        return True


def has_mark(folder: str, name: str) -> bool:
    """Whether the empty file ``name`` is in ``folder`` of the cache (config/valid_marks.py,
    pipeline/builder_check.py: a verdict kept under the digest of what it depends on)."""
    return (cache_root() / folder / name).is_file()


def read_mark(folder: str, name: str, *, max_bytes: int = 64 << 10) -> bytes | None:
    """What that mark holds (``set_mark``'s ``content``), or None when there is none to read (a
    folder, a FIFO or a file past ``max_bytes`` is none: the cache folder is outside input)."""
    try:
        return jsonsafe.read_file(cache_root() / folder / name, max_bytes=max_bytes)
    except (OSError, ValueError):
        return None


def set_mark(folder: str, name: str, *, present: bool = True, content: bytes = b"") -> None:
    """Make (or, not ``present``, remove) that mark, holding ``content`` (written whole: a reader
    never sees half of it); a read-only or full cache just keeps none."""
    path = cache_root() / folder / name
    try:
        if present:
            write_whole(path, content)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def write_whole(path: Path, content: bytes) -> None:
    """``content`` into ``path`` (its folder created) through a temporary file beside it: a reader
    sees the old file or the new one, never half of it. OSError as the writes raise it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Throwaway work (the GitOps clone) goes to memory when the machine has room there: on a CI agent's
# disk each file and folder a checkout creates costs ~0.1-0.3 ms of metadata writes (a 1,000-file
# clone: 0.88 s on disk, 0.05 s in /dev/shm; removing it 0.16 s vs 0.02 s; issue #20).
_MEMORY_FS = "/dev/shm"
_MEMORY_MIN_FREE = 1 << 30  # a container's default 64 MiB /dev/shm is left alone


def scratch_parents() -> tuple[str | None, ...]:
    """Where throwaway folders go, best first: memory (when it is a writable folder with 1 GiB free
    and the user has not chosen with TMPDIR, TEMP or TMP), then Python's temporary folder (``None``).
    A caller whose work fills the memory folder moves on to the next."""
    if any(os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP")):  # the user's choice (tempfile's)
        return (None,)
    try:
        fs = os.statvfs(_MEMORY_FS)
    except OSError:
        return (None,)
    if (fs.f_bavail * fs.f_frsize < _MEMORY_MIN_FREE or not os.path.isdir(_MEMORY_FS)
            or not os.access(_MEMORY_FS, os.W_OK | os.X_OK)):
        return (None,)
    return (_MEMORY_FS, None)


def nearly_full(folder: str) -> bool:
    """Less than 1 MiB or 64 inodes left where ``folder`` is: why a write there failed."""
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return fs.f_bavail * fs.f_frsize < 1 << 20 or (fs.f_files > 0 and fs.f_favail < 64)

"""The per-platform byte checks over an image's final filesystem (all layers, whiteouts applied).

``elf``       the ENTRYPOINT/CMD resolved as the kernel would (PATH, symlinks, ``#!`` lines read
              exactly as binfmt_script reads them) down to ELF files of the platform's machine;
``elf-files`` every ELF file in the image: machine, class (32/64-bit) and byte order;
``interp``    every dynamically linked ELF file: its PT_INTERP resolves inside the image, following
              symlinks, to an executable regular ELF file of the same machine;
``page-size`` (arm64) every ELF file's PT_LOAD segments map on the nodes' page size
              (``verify.page_size``); at 4 KiB, files that would not map on 16 or 64 KiB are a warning.
Files matching ``allow_foreign`` (fnmatch globs on absolute paths; ``*`` also matches ``/``) are
exempt from ``elf-files`` and ``interp``, and the detail says which were. eBPF objects
(EM_BPF) run in the kernel's VM, not on the CPU: counted, never foreign.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from buildctl.inspect import elf
from buildctl.inspect.image_fs import (
    Entry,
    LayeredView,
    LayerTable,
    ResolveError,
    normalize,
    resolve_path,
)
from buildctl.inspect.interpreters import resolve_command
from buildctl.inspect.layers import INTERP_UNREADABLE
from buildctl.inspect.results import Check, CheckStatus
from buildctl.inspect.users import UserError, image_account
from buildctl.platforms import ElfMachine

NO_COMMAND = "no ENTRYPOINT/CMD; architecture of the bytes not checked"
EXAMPLES = 3  # offenders named per kind of problem


def expected_machine(platform: str) -> ElfMachine | None:
    os_name, _, arch = platform.partition("/")
    return elf.expected_for(arch.partition("/")[0]) if os_name == "linux" else None


def working_dir(config: Mapping[str, Any]) -> str:
    """The image config's WorkingDir (normalised; "/" when unset), where the entrypoint runs."""
    return normalize((config.get("config") or {}).get("WorkingDir") or "/")


def check_entrypoint(platform: str, view: LayeredView, config: Mapping[str, Any]) -> Check:
    """Resolve the entrypoint in ``view`` and compare every ELF on the way with ``platform``."""
    expected = expected_machine(platform)
    if expected is None:
        return Check(platform, "elf", CheckStatus.SKIP, f"no ELF machine known for {platform}; not checked")
    settings = config.get("config") or {}
    argv: list[str] = []
    for key in ("Entrypoint", "Cmd"):
        value = settings.get(key) or []
        if not (isinstance(value, list) and all(isinstance(arg, str) for arg in value)):
            # The OCI config says an array of strings: docker (containerd) refuses the config ("cannot
            # unmarshal string into ... Entrypoint of type []string"); list("/app") would run "/".
            what = "a string" if isinstance(value, str) else f"{json.dumps(value)[:60]}"
            return Check(platform, "elf", CheckStatus.FAIL, f"{key} is {what}, not an array of strings")
        argv += value
    if not argv:
        return Check(platform, "elf", CheckStatus.SKIP, NO_COMMAND)
    env = dict(item.partition("=")[::2] for item in settings.get("Env") or [])
    workdir = working_dir(config)
    user = settings.get("User") or ""
    try:  # docker resolves the User before it starts anything: its message is the start's failure
        account = image_account(view, user) if isinstance(user, str) else None
    except UserError as exc:
        return Check(platform, "elf", CheckStatus.FAIL, f"cannot start as User {json.dumps(user)}: {exc}")
    try:
        resolution = resolve_command(view, argv, path_env=env.get("PATH"), workdir=workdir, account=account)
    except ResolveError as exc:
        return Check(platform, "elf", CheckStatus.FAIL, f"cannot start {json.dumps(argv[0])}: {exc}")
    wrong = [f"{path} is {ident.describe()}, expected {expected.name}"
             for path, ident in resolution.binaries if not expected.matches(ident)]
    if wrong:  # the kernel checks e_machine first (elf_check_arch): the most telling reason
        return Check(platform, "elf", CheckStatus.FAIL, "; ".join(wrong))
    if resolution.refused:
        refused = "; ".join(f"{path} cannot be executed: {why}" for path, why in resolution.refused)
        return Check(platform, "elf", CheckStatus.FAIL, f"cannot start {json.dumps(argv[0])}: {refused}")
    chain = " -> ".join(resolution.chain)
    return Check(platform, "elf", CheckStatus.PASS, f"{chain}: {resolution.binaries[-1][1].describe()}")


def indexed(table: LayerTable) -> LayerTable:
    """``table``, what visible_elf_files reads of it (its ELF files, its hard links: cached on it)
    computed now: the prefetch does it beside the builds, not after them (~30 ms of CPU for a Debian
    base's two platforms, issue #20). Stored as cached_property stores it, but not through its
    lock: on Python 3.11 that is one lock for every table (python/cpython#87634), and a niced
    prefetch thread holding it would keep verification waiting for another table's list."""
    found = vars(table)
    for name in ("elf_entries", "hard_links"):
        if name not in found:  # two threads may both compute it: the same value
            found[name] = getattr(type(table), name).func(table)
    return table


def visible_elf_files(view: LayeredView) -> list[tuple[str, Entry]]:
    """Every ELF file of the final filesystem, sorted by path; hard links count as the file."""
    found: dict[str, Entry] = {}
    dir_ok: dict[str, bool] = {}

    def parents_are_dirs(path: str) -> bool:
        parent = posixpath.dirname(path)
        if parent == "/":
            return True
        if parent not in dir_ok:
            top = view.get(parent)
            dir_ok[parent] = (top is None or top.is_dir) and parents_are_dirs(parent)
        return dir_ok[parent]

    for layer in reversed(view.layers):
        for path, entry, content in layer.elf_entries:
            if path not in found and view.get(path) is entry and parents_are_dirs(path):  # topmost, not hidden
                found[path] = content
        for path in layer.hard_links:  # to a lower layer's file: that file, even if deleted or replaced since
            if path not in found and parents_are_dirs(path):
                content = view.get(path)  # whatever is topmost at the path: this link, or what hid it
                if content is not None and content.is_elf:
                    found[path] = content
    return sorted(found.items())


def _allowed(path: str, patterns: Sequence[str]) -> str | None:
    return next((p for p in patterns if fnmatch.fnmatchcase(path, p)), None)


def _examples(paths: Sequence[str]) -> str:
    return ", ".join(paths[:EXAMPLES]) + (", …" if len(paths) > EXAMPLES else "")


def _allowed_note(used: Mapping[str, list[str]]) -> str:
    if not used:
        return ""
    shown = "; ".join(f"{pattern}: {_examples(paths)}" for pattern, paths in used.items())
    return f"; {sum(map(len, used.values()))} foreign allowed by verify.allow_foreign ({shown})"


def check_elf_files(platform: str, files: Sequence[tuple[str, Entry]], allow_foreign: Sequence[str]) -> Check:
    expected = expected_machine(platform)
    if expected is None:
        return Check(platform, "elf-files", CheckStatus.SKIP, f"no ELF machine known for {platform}; not checked")
    wrong: dict[str, list[str]] = defaultdict(list)
    used: dict[str, list[str]] = defaultdict(list)
    for path, entry in files:
        try:
            ident = elf.parse_ident(entry.head)
            elf.parse_layout(entry.head)
        except ValueError as exc:
            what = f"invalid ({exc})"
        else:
            if expected.matches(ident) or ident.machine == elf.EM_BPF:
                if not entry.problem:
                    continue
                what = f"not loadable ({entry.problem})"  # ET_EXEC/ET_DYN neither the kernel nor ld.so loads
            else:
                what = ident.describe()
        if (pattern := _allowed(path, allow_foreign)) is not None:  # e.g. test fixtures: never run here
            used[pattern].append(path)
            continue
        wrong[what].append(path)
    total = len(files)
    if wrong:
        parts = [f"{len(paths)} of {total} ELF files are {what}, e.g. {_examples(paths)}"
                 for what, paths in sorted(wrong.items(), key=lambda kv: -len(kv[1]))]
        return Check(platform, "elf-files", CheckStatus.FAIL, "; ".join(parts) + f" (expected {expected.name})"
                     + _allowed_note(used))
    if not total:
        return Check(platform, "elf-files", CheckStatus.PASS, "no ELF files")
    files_word = "ELF file" if total == 1 else "ELF files"
    return Check(platform, "elf-files", CheckStatus.PASS, f"{total} {files_word}, all {expected.name}" + _allowed_note(used))


def _interp_problem(view: LayeredView, interp: str, expected: ElfMachine, workdir: str) -> tuple[str, str]:
    """(problem or "", where it resolved) for one PT_INTERP path; a relative one from ``workdir``."""
    if interp == INTERP_UNREADABLE:
        return "PT_INTERP before their program headers, out of a forward-only read's reach (not read)", ""
    try:
        real, entry = resolve_path(view, interp, cwd=workdir)
    except ResolveError as exc:
        where = "" if interp.startswith("/") else f" from WorkingDir {workdir}"
        return f"{interp}, which does not resolve{where} ({exc})", ""
    shown = interp if real == interp else f"{interp} -> {real}"
    if not entry.executable:
        return f"{shown}, which is not an executable file", real
    if not elf.is_elf(entry.head):
        return f"{shown}, which is not an ELF file", real
    try:
        ident = elf.parse_ident(entry.head)
    except ValueError as exc:
        return f"{shown}, which is not a valid ELF file ({exc})", real
    if not expected.matches(ident):
        return f"{shown}, which is {ident.describe()}, not {expected.name}", real
    if why := elf.exec_problem(entry.head, entry.problem):  # fs/binfmt_elf.c load_elf_interp refuses it
        return f"{shown}, which the kernel cannot load as a program interpreter ({why})", real
    return "", shown


def check_interp(platform: str, view: LayeredView, files: Sequence[tuple[str, Entry]],
                 allow_foreign: Sequence[str], *, workdir: str = "/") -> Check:
    """Every PT_INTERP resolves to a loader the kernel can use. A relative one is opened from the
    working directory of whoever runs the file (fs/binfmt_elf.c: open_exec): resolved from the
    image's WorkingDir, and a warning, since any other directory breaks it."""
    expected = expected_machine(platform)
    if expected is None:
        return Check(platform, "interp", CheckStatus.SKIP, f"no ELF machine known for {platform}; not checked")
    users: dict[str, list[str]] = defaultdict(list)
    for path, entry in files:
        if entry.interp and _allowed(path, allow_foreign) is None:
            users[entry.interp].append(path)
    if not users:
        return Check(platform, "interp", CheckStatus.PASS, "no dynamically linked ELF files")
    bad, good, unread, relative = [], [], [], []
    for interp, paths in sorted(users.items(), key=lambda kv: -len(kv[1])):
        problem, shown = _interp_problem(view, interp, expected, workdir)
        if interp == INTERP_UNREADABLE:
            files_word = "ELF files have their" if len(paths) != 1 else "ELF file has its"
            unread.append(f"{len(paths)} {files_word} {problem}, e.g. {_examples(paths)}")
        elif problem:
            verb = "files need" if len(paths) != 1 else "file needs"
            bad.append(f"{len(paths)} dynamically linked ELF {verb} {problem}, e.g. {_examples(paths)}")
        else:
            good.append(f"{len(paths)} via {shown}")
            if not interp.startswith("/"):
                relative.append(f"{len(paths)} with the relative PT_INTERP {interp}, which the kernel opens from the "
                                f"caller's working directory (here from WorkingDir {workdir}), e.g. {_examples(paths)}")
    if bad:
        return Check(platform, "interp", CheckStatus.FAIL, "; ".join(bad + unread + relative))
    detail = f"{sum(map(len, users.values()))} dynamically linked ELF files"
    detail += f": {', '.join(good)} ({expected.name})" if good else ""  # all unread: no loader to name
    if unread or relative:
        return Check(platform, "interp", CheckStatus.WARN, detail + "; " + "; ".join(unread + relative))
    return Check(platform, "interp", CheckStatus.PASS, detail)


# arm64 kernels come with 4, 16 or 64 KiB pages (Raspberry Pi 5 and Apple-silicon Linux: 16 KiB; RHEL
# and other distributions on Ampere: 64 KiB); a binary linked for 4 KiB pages cannot be mapped on the
# larger ones (e.g. https://github.com/vgteam/vg/issues/3705). amd64 kernels always use 4 KiB pages.
PAGE_SIZE_ARCHES = frozenset({"arm64"})
LARGEST_PAGE = max(elf.PAGE_SIZES.values())
SMALLEST_PAGE = min(elf.PAGE_SIZES.values())


def _page_groups(groups: Mapping[int, list[str]], total: int, consequence: Callable[[int], str]) -> list[str]:
    return [f"{len(paths)} of {total} ELF files have PT_LOAD segments aligned to {elf.describe_size(align)}, "
            f"e.g. {_examples(paths)}: {consequence(align)}" for align, paths in sorted(groups.items())]


def check_page_size(platform: str, files: Sequence[tuple[str, Entry]], allow_foreign: Sequence[str],
                    page_size: int) -> Check | None:
    """Whether every loadable ELF file of the platform's machine maps on ``page_size`` pages; None
    for platforms whose kernels have one page size."""
    expected = expected_machine(platform)
    if expected is None or platform.split("/")[1] not in PAGE_SIZE_ARCHES:
        return None
    aligns: dict[str, int] = {}
    for path, entry in files:
        if entry.page_align and _allowed(path, allow_foreign) is None:
            try:
                if expected.matches(elf.parse_ident(entry.head)):
                    aligns[path] = entry.page_align
            except ValueError:
                continue  # elf-files reports it
    pages = elf.describe_size(page_size)
    if not aligns:
        return Check(platform, "page-size", CheckStatus.PASS, "no loadable ELF files")
    small: dict[int, list[str]] = defaultdict(list)
    for path, align in aligns.items():
        if align < LARGEST_PAGE:
            small[align].append(path)
    failing = {align: paths for align, paths in small.items() if align < page_size}
    total = len(aligns)
    if failing:
        parts = _page_groups(failing, total, lambda _: f"they cannot be mapped on {pages} pages")
        setting = next(name for name, size in elf.PAGE_SIZES.items() if size == page_size)
        return Check(platform, "page-size", CheckStatus.FAIL, "; ".join(parts) + f" (verify.page_size: {setting})")
    if page_size == SMALLEST_PAGE and small:
        larger = [size for size in elf.PAGE_SIZES.values() if size > SMALLEST_PAGE]
        parts = _page_groups(small, total, lambda align: "they fail on arm64 kernels with " + " or ".join(
            elf.describe_size(size) for size in larger if size > align) + " pages")
        return Check(platform, "page-size", CheckStatus.WARN, "; ".join(parts) + " (Raspberry Pi 5, Apple silicon: "
                     "16 KiB; some Ampere servers: 64 KiB); verify.page_size 16k or 64k makes this an error")
    files_word = "ELF file maps" if total == 1 else "ELF files map"
    detail = f"{total} {files_word} on {pages} pages"
    if small:
        narrow = [path for paths in small.values() for path in paths]
        detail += f" ({len(narrow)} not on {elf.describe_size(LARGEST_PAGE)}, e.g. {_examples(sorted(narrow))})"
    return Check(platform, "page-size", CheckStatus.PASS, detail)

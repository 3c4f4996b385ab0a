"""Synthetic ELF headers and layer tars for tests/test_elf.py, test_imagefs.py, test_layers.py, test_verify.py,
and real arm64 executables cross-compiled with the stack's aarch64-linux-gnu-gcc (scripts/stack.sh).

Real ELF identification headers built with struct (the layout of the System V ABI's Elf32_Ehdr /
Elf64_Ehdr, Elf32_Phdr / Elf64_Phdr); they are never executed, only read.
"""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.helpers.tools import need

# Go/OCI architecture -> (e_machine, ELF class, byte order) a real binary for it has.
MACHINES = {
    "amd64": (62, 2, "<"),
    "arm64": (183, 2, "<"),
    "arm": (40, 1, "<"),
    "386": (3, 1, "<"),
    "ppc64le": (21, 2, "<"),
    "s390x": (22, 2, ">"),
    "riscv64": (243, 2, "<"),
}


def make_elf(machine: int, *, elf_class: int = 2, order: str = "<") -> bytes:
    """A static executable for ``machine`` the kernel could load: its ELF header (52 or 64 bytes)
    and a program header table of no entries' worth of PT_LOAD — one PT_NULL entry (the kernel
    wants at least one program header, inside the file)."""
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1, 0]) + bytes(8)
    if elf_class == 2:
        rest = struct.pack(order + "HHIQQQIHHHHHH", 2, machine, 1, 0x400078, 64, 0, 0, 64, 56, 1, 64, 0, 0)
        table = struct.pack(order + "IIQQQQQQ", 0, 0, 0, 0, 0, 0, 0, 0)
    else:
        rest = struct.pack(order + "HHIIIIIHHHHHH", 2, machine, 1, 0x8054, 52, 0, 0, 52, 32, 1, 40, 0, 0)
        table = struct.pack(order + "IIIIIIII", 0, 0, 0, 0, 0, 0, 0, 0)
    return ident + rest + table


def elf_with_loads(segments: Sequence[tuple[int, int, int]], *, machine: int = 183, elf_class: int = 2,
                   order: str = "<", e_type: int = 2) -> bytes:
    """An executable whose program header table holds one PT_LOAD per (p_offset, p_vaddr, p_align)."""
    wide = elf_class == 2
    header_len, entry_len = (64, 56) if wide else (52, 32)
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1, 0]) + bytes(8)
    count = len(segments)
    if wide:
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", e_type, machine, 1, 0x400000, header_len, 0, 0,
                                     header_len, entry_len, count, 64, 0, 0)
        table = b"".join(struct.pack(order + "IIQQQQQQ", 1, 5, off, vaddr, vaddr, 0x10, 0x10, align)
                         for off, vaddr, align in segments)
    else:
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", e_type, machine, 1, 0x8000, header_len, 0, 0,
                                     header_len, entry_len, count, 40, 0, 0)
        table = b"".join(struct.pack(order + "IIIIIIII", 1, off, vaddr, vaddr, 0x10, 0x10, 5, align)
                         for off, vaddr, align in segments)
    return header + table


def crafted_elf(*, interp: bytes | None = None, interp_size: int | None = None, phnum: int | None = None,
            phentsize: int = 56, phoff: int = 64, e_type: int = 2, machine: int = 183, cut: int | None = None) -> bytes:
    """A 64-bit LE executable: PT_LOAD (64 KiB aligned) and, with ``interp``, a PT_INTERP holding it
    (``interp_size``: its p_filesz); ``cut``: the file truncated to that many bytes."""
    tail = interp or b""
    table_end = phoff + 56 * (2 if interp is not None else 1)
    phdrs = [struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, 0x1000, 0x1000, 0x10000)]
    if interp is not None:
        size = len(tail) if interp_size is None else interp_size
        phdrs.append(struct.pack("<IIQQQQQQ", 3, 4, table_end, table_end, table_end, size, size, 1))
    count = len(phdrs) if phnum is None else phnum
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, phoff, 0, 0, 64, phentsize, count, 64, 0, 0)
    data = header + bytes(phoff - 64) + b"".join(phdrs) + tail
    return data if cut is None else data[:cut]


# exit(0) by syscall, without libc: all the cross compiler needs is itself (no libc6-dev-arm64-cross).
EXIT_SOURCE = """
void _start(void) {
    register long nr __asm__("x8") = 93;  /* __NR_exit */
    register long status __asm__("x0") = 0;
    __asm__ volatile("svc #0" : : "r"(nr), "r"(status));
    for (;;) {}
}
static const char data[] = "buildctl page-size probe";
const char *keep = data;
"""


def cross_compile_arm64(directory: Path, *, max_page_size: int) -> bytes:
    """A static arm64 executable linked with ``-z max-page-size=max_page_size`` (deterministic bytes)."""
    gcc = need("aarch64-linux-gnu-gcc")
    source = directory / "exit.c"
    source.write_text(EXIT_SOURCE)
    out = directory / f"exit-{max_page_size}"
    subprocess.run([gcc, "-static", "-nostdlib", "-ffreestanding", "-O2", "-s", "-Wl,--build-id=none",
                    "-Wl,-z,noseparate-code", f"-Wl,-z,max-page-size={max_page_size}", "-o", str(out), str(source)],
                   check=True, capture_output=True, timeout=120)
    return out.read_bytes()


def elf_for(arch: str) -> bytes:
    machine, elf_class, order = MACHINES[arch]
    return make_elf(machine, elf_class=elf_class, order=order)


# A layer member: (name, kind, data-or-target, mode); kind is "f", "d", "l" (symlink) or "h" (hard link).
Member = tuple[str, str, bytes | str, int]


def make_tar(members: Iterable[Member]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, payload, mode in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "f":
                data = payload if isinstance(payload, bytes) else payload.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"d": tarfile.DIRTYPE, "l": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            info.linkname = payload if isinstance(payload, str) else ""
            tar.addfile(info)
    return out.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)

"""Synthetic ELF headers and layer tars for tests/test_elf.py, test_imagefs.py, test_layers.py, test_verify.py.

Real ELF identification headers built with struct (the layout of the System V ABI's Elf32_Ehdr /
Elf64_Ehdr); they are never executed, only read.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from collections.abc import Iterable

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
    """A complete ELF header (52 or 64 bytes) of an executable for ``machine``."""
    ident = b"\x7fELF" + bytes([elf_class, 1 if order == "<" else 2, 1, 0]) + bytes(8)
    if elf_class == 2:
        rest = struct.pack(order + "HHIQQQIHHHHHH", 2, machine, 1, 0x400078, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    else:
        rest = struct.pack(order + "HHIIIIIHHHHHH", 2, machine, 1, 0x8054, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    return ident + rest


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

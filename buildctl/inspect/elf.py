"""Just enough ELF to tell which machine a binary runs on: the 20-byte identification header.

Reference: the System V ABI, "ELF Header" (e_ident, e_machine), and linux/include/uapi/linux/elf-em.h
for the machine numbers. Pure functions over bytes; no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from buildctl.platforms import ARCHES, CLASS_32, CLASS_64, DATA_BE, DATA_LE, ElfMachine

ELF_MAGIC = b"\x7fELF"
HEADER_LEN = 20  # e_ident (16) + e_type (2) + e_machine (2)


EM_386 = 3
EM_MIPS = 8
EM_PPC64 = 21
EM_S390 = 22
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

# e_machine -> (constant name, the name `uname -m` / `file` users know)
MACHINE_NAMES: dict[int, tuple[str, str]] = {
    EM_386: ("EM_386", "i386"),
    EM_MIPS: ("EM_MIPS", "mips"),
    EM_PPC64: ("EM_PPC64", "ppc64"),
    EM_S390: ("EM_S390", "s390x"),
    EM_ARM: ("EM_ARM", "arm"),
    EM_X86_64: ("EM_X86_64", "x86-64"),
    EM_AARCH64: ("EM_AARCH64", "aarch64"),
    EM_RISCV: ("EM_RISCV", "riscv64"),
    EM_LOONGARCH: ("EM_LOONGARCH", "loongarch64"),
}


@dataclass(frozen=True)
class ElfIdent:
    """The machine-identifying part of an ELF header."""

    elf_class: int  # CLASS_32 | CLASS_64
    data: int  # DATA_LE | DATA_BE
    machine: int  # e_machine

    @property
    def bits(self) -> int:
        return 64 if self.elf_class == CLASS_64 else 32

    @property
    def endian(self) -> str:
        return "LE" if self.data == DATA_LE else "BE"

    def describe(self) -> str:
        """E.g. ``x86-64 (EM_X86_64)``; class and byte order are added when they are unusual."""
        const, common = MACHINE_NAMES.get(self.machine, (f"e_machine {self.machine}", "unknown"))
        for arch in ARCHES.values():
            if arch.elf.matches(self):
                return f"{arch.elf.name} ({const})"
        return f"{common} ({const}, {self.bits}-bit {self.endian})"


def is_elf(head: bytes) -> bool:
    return head.startswith(ELF_MAGIC)


def parse_ident(head: bytes) -> ElfIdent:
    """Parse the first bytes of a file; raise ValueError if they are not a valid ELF header."""
    if not is_elf(head):
        raise ValueError("not an ELF file (no \\x7fELF magic)")
    if len(head) < HEADER_LEN:
        raise ValueError(f"truncated ELF header ({len(head)} bytes)")
    elf_class, data = head[4], head[5]
    if elf_class not in (CLASS_32, CLASS_64):
        raise ValueError(f"invalid ELF class {elf_class}")
    if data not in (DATA_LE, DATA_BE):
        raise ValueError(f"invalid ELF data encoding {data}")
    (machine,) = struct.unpack_from("<H" if data == DATA_LE else ">H", head, 18)
    return ElfIdent(elf_class, data, machine)


def expected_for(architecture: str) -> ElfMachine | None:
    """What binaries of the OCI ``architecture`` carry (platforms.ARCHES), or None if unknown."""
    arch = ARCHES.get(architecture)
    return arch.elf if arch else None

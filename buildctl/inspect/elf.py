"""Just enough ELF to tell which machine a binary runs on (the 20-byte identification header) and
which program interpreter it asks for (PT_INTERP, found through the program header table).

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


# ---------------------------------------------------------------------------- program headers

ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
PT_INTERP = 3
EM_BPF = 247  # eBPF objects run in the kernel's VM, on no CPU: never foreign
MAX_INTERP = 4096  # PATH_MAX: the kernel refuses a longer PT_INTERP (fs/binfmt_elf.c)
MAX_PREFIX = 64 << 10  # program headers kept in one piece up to here (the kernel's cap on their size)


@dataclass(frozen=True)
class ElfLayout:
    """Where in the file the program header table is (from the ELF header)."""

    ident: ElfIdent
    e_type: int
    phoff: int
    phentsize: int
    phnum: int

    @property
    def phdrs_end(self) -> int:
        return self.phoff + self.phentsize * self.phnum


def parse_layout(head: bytes) -> ElfLayout:
    """The ELF header (52 or 64 bytes); ValueError when it is not one."""
    ident = parse_ident(head)
    order = "<" if ident.data == DATA_LE else ">"
    if ident.elf_class == CLASS_64:
        if len(head) < 64:
            raise ValueError(f"truncated ELF header ({len(head)} bytes)")
        e_type, phoff, phentsize, phnum = struct.unpack_from(order + "H", head, 16) + \
            struct.unpack_from(order + "Q", head, 32) + struct.unpack_from(order + "HH", head, 54)
    else:
        if len(head) < 52:
            raise ValueError(f"truncated ELF header ({len(head)} bytes)")
        e_type, phoff, phentsize, phnum = struct.unpack_from(order + "H", head, 16) + \
            struct.unpack_from(order + "I", head, 28) + struct.unpack_from(order + "HH", head, 42)
    return ElfLayout(ident, e_type, phoff, phentsize, phnum)


def interp_location(layout: ElfLayout, phdrs: bytes) -> tuple[int, int] | None:
    """(offset, size) of the PT_INTERP string, read from the program header table ``phdrs``
    (the file's bytes from e_phoff on); None for a statically linked file or a table cut short."""
    order = "<" if layout.ident.data == DATA_LE else ">"
    wide = layout.ident.elf_class == CLASS_64
    need = phdr_size(layout)
    if layout.phentsize < need:
        return None
    for i in range(layout.phnum):
        at = i * layout.phentsize
        if at + need > len(phdrs):
            return None
        (p_type,) = struct.unpack_from(order + "I", phdrs, at)
        if p_type != PT_INTERP:
            continue
        if wide:
            offset, filesz = struct.unpack_from(order + "Q", phdrs, at + 8)[0], struct.unpack_from(order + "Q", phdrs, at + 32)[0]
        else:
            offset, filesz = struct.unpack_from(order + "I", phdrs, at + 4)[0], struct.unpack_from(order + "I", phdrs, at + 16)[0]
        return offset, filesz
    return None


PN_XNUM = 0xFFFF  # e_phnum of extended numbering (the count in section 0): core files only, never exec'd
ET_NAMES = {ET_REL: "a relocatable object (ET_REL)", ET_CORE: "a core dump (ET_CORE)"}


def phdr_size(layout: ElfLayout) -> int:
    """The size of one program header of the file's class (Elf32_Phdr / Elf64_Phdr)."""
    return 56 if layout.ident.elf_class == CLASS_64 else 32


def table_problem(layout: ElfLayout, file_size: int) -> str:
    """Why the kernel (fs/binfmt_elf.c load_elf_phdrs) and ld.so (dl-load.c) refuse the program
    header table of an ET_EXEC/ET_DYN file of ``file_size`` bytes; "" when they do not."""
    need = phdr_size(layout)
    if layout.phentsize != need:
        return f"e_phentsize is {layout.phentsize}, not {need} (the size of an Elf{layout.ident.bits}_Phdr)"
    if layout.phnum == 0:
        return "it has no program headers (e_phnum 0)"
    if need * layout.phnum > MAX_PREFIX:
        xnum = "; 0xffff is PN_XNUM, extended numbering, which only core files use" if layout.phnum == PN_XNUM else ""
        return f"e_phnum {layout.phnum} makes a program header table over 64 KiB, which the kernel refuses{xnum}"
    if layout.phdrs_end > file_size:
        return f"its program header table ends at byte {layout.phdrs_end}, past the end of the file ({file_size} bytes)"
    return ""


def interp_problem(offset: int, size: int, file_size: int) -> str:
    """Why the kernel (fs/binfmt_elf.c load_elf_binary) refuses a PT_INTERP at ``offset`` of
    ``size`` bytes before reading it; "" when it reads it."""
    if size < 2 or size > MAX_INTERP:
        return f"its PT_INTERP is {size} byte{'s' if size != 1 else ''} long (the kernel accepts 2 to {MAX_INTERP})"
    if offset + size > file_size:
        return f"its PT_INTERP ends at byte {offset + size}, past the end of the file ({file_size} bytes)"
    return ""


def exec_problem(head: bytes, problem: str) -> str:
    """Why execve (or the kernel loading a program interpreter) refuses this ELF file: its header
    (``head``: at least the ELF header) or its recorded ``problem``; "" when neither stops it."""
    try:
        layout = parse_layout(head)
    except ValueError as exc:
        return str(exc)
    if layout.e_type not in (ET_EXEC, ET_DYN):
        return f"it is {ET_NAMES.get(layout.e_type, f'of ELF type {layout.e_type}')}, not an executable"
    return problem


def interp_string(raw: bytes) -> str:
    """PT_INTERP's bytes -> the path the kernel opens (up to the NUL it requires)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------- page size

PT_LOAD = 1
KIB = 1024
PAGE_SIZES = {"4k": 4 * KIB, "16k": 16 * KIB, "64k": 64 * KIB}  # what arm64 kernels are built with
_UNBOUNDED = 1 << 63  # a segment whose offset and address are congruent on every page size


def _lowest_bit(value: int) -> int:
    """The largest power of two dividing ``value`` (``value`` > 0)."""
    return value & -value


def load_alignment(layout: ElfLayout, phdrs: bytes) -> int:
    """The largest page size on which every PT_LOAD segment of the file can be mapped; 0 when the
    table holds no PT_LOAD (or is cut short).

    A segment maps on pages of P bytes when P divides its p_align (glibc's ld.so: "ELF load command
    alignment not page-aligned") and p_offset ≡ p_vaddr (mod P) (the kernel's mmap of the segment,
    fs/binfmt_elf.c elf_map, and ld.so: "ELF load command address/offset not page-aligned").
    p_align 0 means "no alignment" (gABI): only the congruence limits such a segment (the kernel maps
    it so, and ld.so's ``p_align & (pagesize - 1)`` test is 0). p_align 1, "no alignment" to the gABI
    too, fails that test on every page size in glibc's ld.so as bookworm's 2.36 and older have it,
    so it stays 1 byte: at worst a false failure of an odd library, never a library passed that
    ld.so refuses.
    """
    order = "<" if layout.ident.data == DATA_LE else ">"
    wide = layout.ident.elf_class == CLASS_64
    need = phdr_size(layout)
    if layout.phentsize < need:
        return 0
    word_mask = (1 << (64 if wide else 32)) - 1
    best = 0
    for i in range(layout.phnum):
        at = i * layout.phentsize
        if at + need > len(phdrs):
            return 0
        (p_type,) = struct.unpack_from(order + "I", phdrs, at)
        if p_type != PT_LOAD:
            continue
        if wide:
            offset, vaddr = struct.unpack_from(order + "QQ", phdrs, at + 8)
            (align,) = struct.unpack_from(order + "Q", phdrs, at + 48)
        else:
            offset, vaddr = struct.unpack_from(order + "II", phdrs, at + 4)
            (align,) = struct.unpack_from(order + "I", phdrs, at + 28)
        skew = (vaddr - offset) & word_mask
        segment = min(_lowest_bit(align) if align else _UNBOUNDED, _lowest_bit(skew) if skew else _UNBOUNDED)
        best = segment if not best else min(best, segment)
    return best


def describe_size(size: int) -> str:
    """4096 -> ``4 KiB``; sizes below 1 KiB in bytes."""
    if size >= KIB and size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes" if size != 1 else "1 byte"

"""One platform type: parse, normalise, match and print ``os/arch[/variant]``, and one table of
what each architecture is called elsewhere (``uname -m``, the QEMU binfmt handler, the ELF header).

Normalisation follows containerd's ``platforms.Normalize``
(https://github.com/containerd/platforms/blob/main/database.go): ``aarch64`` = ``arm64``,
``arm64/v8`` = ``arm64``, ``amd64/v1`` = ``amd64``, ``arm`` = ``arm/v7``, ``x86_64`` = ``amd64``.
buildctl verifies ELF binaries, so it supports Linux only, and only the architectures and variants
below: anything else is refused with the list rather than built and never checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# ELF header values (System V ABI "ELF Header"; linux/include/uapi/linux/elf-em.h).
CLASS_32, CLASS_64 = 1, 2
DATA_LE, DATA_BE = 1, 2


@dataclass(frozen=True)
class ElfMachine:
    """What a binary for an architecture carries in its ELF header."""

    machine: int  # e_machine
    elf_class: int  # CLASS_32 | CLASS_64
    data: int  # DATA_LE | DATA_BE
    name: str  # the name `file` and `uname -m` users know, e.g. aarch64

    def matches(self, ident) -> bool:
        """``ident`` (anything with machine, elf_class and data: inspect.elf.ElfIdent) is this machine's."""
        return (ident.machine, ident.elf_class, ident.data) == (self.machine, self.elf_class, self.data)


@dataclass(frozen=True)
class Arch:
    name: str  # OCI/Go architecture, e.g. arm64
    machines: tuple[str, ...]  # `uname -m` spellings (and Debian's), first = the kernel's
    qemu: str  # binfmt_misc handler name of qemu-user-static
    elf: ElfMachine
    variants: tuple[str, ...] = ("",)  # accepted variants after normalisation; first = default


ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch("amd64", ("x86_64", "x86-64"), "qemu-x86_64", ElfMachine(62, CLASS_64, DATA_LE, "x86-64"),
         ("", "v2", "v3", "v4")),
    Arch("arm64", ("aarch64", "armv8l"), "qemu-aarch64", ElfMachine(183, CLASS_64, DATA_LE, "aarch64")),
    Arch("arm", ("armv7l", "armhf", "armel"), "qemu-arm", ElfMachine(40, CLASS_32, DATA_LE, "arm"),
         ("v7", "v6", "v5")),
    Arch("386", ("i686", "i386", "i586"), "qemu-i386", ElfMachine(3, CLASS_32, DATA_LE, "i386")),
    Arch("ppc64le", ("ppc64le",), "qemu-ppc64le", ElfMachine(21, CLASS_64, DATA_LE, "ppc64le")),
    Arch("ppc64", ("ppc64",), "qemu-ppc64", ElfMachine(21, CLASS_64, DATA_BE, "ppc64")),
    Arch("s390x", ("s390x",), "qemu-s390x", ElfMachine(22, CLASS_64, DATA_BE, "s390x")),
    Arch("riscv64", ("riscv64",), "qemu-riscv64", ElfMachine(243, CLASS_64, DATA_LE, "riscv64")),
    Arch("mips64le", ("mips64le",), "qemu-mips64el", ElfMachine(8, CLASS_64, DATA_LE, "mips64le")),
    Arch("loong64", ("loongarch64",), "qemu-loongarch64", ElfMachine(258, CLASS_64, DATA_LE, "loongarch64")),
)}  # fmt: skip
SUPPORTED_OS = ("linux",)
_ALIASES = {alias: arch.name for arch in ARCHES.values() for alias in arch.machines}


class PlatformError(ValueError):
    """Text that is not a supported platform; the message says what is."""


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    arch: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64/v8`` -> linux/arm64; PlatformError for malformed or unsupported text.
        Blanks around the text are dropped; inside it (``linux/ arm64``) they are refused, as
        containerd's parser refuses them, rather than quietly read as another platform."""
        written = text.strip() if isinstance(text, str) else ""
        parts = written.split("/") if written else []
        if any(c.isspace() for c in written):
            raise PlatformError(f"invalid platform {text!r}: it contains whitespace; expected os/arch[/variant], "
                                "e.g. linux/arm64")
        if len(parts) not in (2, 3) or not all(parts):
            raise PlatformError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7")
        platform = cls.of(*parts)
        if platform.os not in SUPPORTED_OS:
            raise PlatformError(f"unsupported platform {text!r}: buildctl verifies Linux (ELF) images only")
        arch = ARCHES.get(platform.arch)
        if arch is None:
            raise PlatformError(f"unsupported platform {text!r}: architecture {parts[1]!r} is not one of "
                                f"{', '.join(ARCHES)}")
        if platform.variant not in arch.variants:
            named = [v for v in arch.variants if v]
            allowed = f"one of {', '.join(named)}" if named else "none"
            raise PlatformError(f"unsupported platform {text!r}: {arch.name} has no variant {parts[2]!r} "
                                f"(variants: {allowed})")
        return platform

    @classmethod
    def of(cls, os_name: str, architecture: str, variant: str | None = None) -> Platform:
        """Normalise without judging: what an image's config or a builder reports, whatever it is."""
        arch = architecture.strip().lower()
        arch = _ALIASES.get(arch, arch)
        variant = (variant or "").strip().lower()
        if variant.isdigit():
            variant = "v" + variant
        if architecture.lower() == "armel" and not variant:
            variant = "v6"
        if arch == "arm64" and variant == "v8":
            variant = ""
        elif arch == "amd64" and variant == "v1":
            variant = ""
        elif arch == "arm" and not variant:
            variant = "v7"
        return cls(os_name.strip().lower(), arch, variant)

    @classmethod
    def of_machine(cls, machine: str, *, os_name: str = "linux") -> Platform:
        """The platform of a `uname -m` / `docker info` Architecture, e.g. x86_64 -> linux/amd64."""
        return cls.of(os_name, machine)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)

    @property
    def info(self) -> Arch | None:
        return ARCHES.get(self.arch)

    def same_arch(self, other: Platform) -> bool:
        """Runs natively on ``other``'s machine (no emulation): same os and architecture."""
        return (self.os, self.arch) == (other.os, other.arch)


def parse_list(values: Sequence[str]) -> tuple[str, ...]:
    """What ``--platform`` takes, as buildx does: each value a comma list (``linux/amd64,linux/arm64``),
    the option repeatable. Every item through Platform.parse; normal forms, in order; an empty item
    or the same platform twice is a PlatformError naming it."""
    seen: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                raise PlatformError(f"empty platform in {value!r}: expected a comma list such as "
                                    "linux/amd64,linux/arm64")
            normal = str(Platform.parse(item))
            if normal in seen:
                raise PlatformError(f"duplicate platform {item.strip()!r} (the same as {seen[normal]!r})")
            seen[normal] = item.strip()
    return tuple(seen)


def names(*, variants: bool = True) -> tuple[str, ...]:
    """Every supported platform in its normal form (for completion and messages)."""
    out = []
    for arch in ARCHES.values():
        for variant in arch.variants if variants else arch.variants[:1]:
            out += [str(Platform(os_name, arch.name, variant)) for os_name in SUPPORTED_OS]
    return tuple(out)


def normalize(text: str) -> str:
    """``text`` in its normal form, e.g. ``linux/arm64/v8`` -> ``linux/arm64``; lenient (never raises
    on an unknown architecture: builders and registries report platforms we do not build)."""
    parts = text.strip().split("/")
    return str(Platform.of(*parts)) if len(parts) in (2, 3) and all(parts) else text.strip()


def missing(requested: tuple[str, ...], supported: tuple[str, ...]) -> tuple[str, ...]:
    """The requested platforms that none of ``supported`` matches, in order."""
    have = {normalize(p) for p in supported}
    return tuple(p for p in requested if normalize(p) not in have)


def foreign(platforms: tuple[str, ...], native: str) -> tuple[str, ...]:
    """The platforms that need emulation on a ``native`` machine."""
    home = Platform.of(*native.split("/"))
    return tuple(p for p in platforms if not Platform.of(*p.split("/")).same_arch(home))

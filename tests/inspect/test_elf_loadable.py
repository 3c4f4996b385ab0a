"""ELF files of the right machine that the kernel would still refuse to load (fs/binfmt_elf.c
load_elf_binary / load_elf_phdrs, and glibc's dl-load.c for libraries): a program header table of
the wrong entry size, none, over 64 KiB (PN_XNUM), or past the file's end; a PT_INTERP that is not
2..4096 bytes, past the file's end, not NUL-terminated or empty; an entrypoint or loader that is an
object or core file. Crafted bytes (struct) through scan_layer, the cache and the checks; pure."""

from __future__ import annotations

import io
import pytest

from buildctl.inspect import elf
from buildctl.inspect.elf_checks import check_elf_files, check_entrypoint, check_interp, visible_elf_files
from buildctl.inspect.image_fs import LayeredView
from buildctl.inspect.layers import dump_table, load_table, scan_layer
from buildctl.inspect.results import CheckStatus
from tests.helpers.elf import crafted_elf as crafted
from tests.helpers.elf import elf_for, make_tar

ARM = "linux/arm64"
PASS, FAIL = CheckStatus.PASS, CheckStatus.FAIL
LOADER = "/lib/ld-linux-aarch64.so.1"


GOOD = crafted(interp=LOADER.encode() + b"\0")
STATIC = crafted()


def view(*layers: list) -> LayeredView:
    return LayeredView([scan_layer(io.BytesIO(make_tar(members))) for members in layers])


def run(fs: LayeredView, command: str | None = "/app") -> dict:
    files = visible_elf_files(fs)
    config = {"config": {"Entrypoint": [command]}} if command else {}
    return {c.name: (c.status, c.detail) for c in (check_entrypoint(ARM, fs, config), check_elf_files(ARM, files, ()),
                                                   check_interp(ARM, fs, files, ()))}


def with_loader(app: bytes, mode: int = 0o755) -> LayeredView:
    return view([(LOADER.lstrip("/"), "f", STATIC, 0o755), ("app", "f", app, mode)])


def test_well_formed_binaries_pass() -> None:
    got = run(with_loader(GOOD))
    assert got["elf"] == (PASS, "/app: aarch64 (EM_AARCH64)")
    assert got["elf-files"] == (PASS, "2 ELF files, all aarch64")
    assert got["interp"][0] is PASS
    static_pie = crafted(e_type=elf.ET_DYN)  # ET_DYN without PT_INTERP: runs without a loader
    library = crafted(e_type=elf.ET_DYN)  # a shared library: no PT_INTERP, no loader wanted
    got = run(view([("app", "f", static_pie, 0o755), ("usr/lib/libx.so", "f", library, 0o644)]))
    assert [status for status, _ in got.values()] == [PASS, PASS, PASS]
    assert got["interp"][1] == "no dynamically linked ELF files"


REFUSED = {
    "pn-xnum": (crafted(phnum=0xFFFF), "e_phnum 65535 makes a program header table over 64 KiB, which the kernel "
                                       "refuses; 0xffff is PN_XNUM, extended numbering, which only core files use"),
    "no-phdrs": (crafted(phnum=0), "it has no program headers (e_phnum 0)"),
    "phentsize": (crafted(phentsize=64), "e_phentsize is 64, not 56 (the size of an Elf64_Phdr)"),
    "table-past-end": (crafted(phoff=0x100000, cut=64), "its program header table ends at byte 1048632, past the "
                                                         "end of the file (64 bytes)"),
    "table-cut": (crafted(interp=b"/lib/x\0", cut=100), "its program header table ends at byte 176, past the end "
                                                          "of the file (100 bytes)"),
    "interp-no-nul": (crafted(interp=LOADER.encode()), "its PT_INTERP is not NUL-terminated"),
    "interp-too-long": (crafted(interp=b"/" + b"a" * 5000 + b"\0"), "its PT_INTERP is 5002 bytes long (the kernel "
                                                                     "accepts 2 to 4096)"),
    "interp-zero": (crafted(interp=b"", interp_size=0), "its PT_INTERP is 0 bytes long (the kernel accepts 2 to 4096)"),
    "interp-one": (crafted(interp=b"\0"), "its PT_INTERP is 1 byte long (the kernel accepts 2 to 4096)"),
    "interp-past-end": (crafted(interp=b"/lib/ld.so\0", interp_size=64), "its PT_INTERP ends at byte 240, past the "
                                                                         "end of the file (187 bytes)"),
    "interp-empty-path": (crafted(interp=b"\0\0"), "its PT_INTERP is an empty path"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_binary_the_kernel_refuses_fails_naming_file_and_reason(case: str) -> None:
    data, why = REFUSED[case]
    got = run(with_loader(data))
    assert got["elf"] == (FAIL, f'cannot start "/app": /app cannot be executed: {why}')
    assert got["elf-files"] == (FAIL, f"1 of 2 ELF files are not loadable ({why}), e.g. /app (expected aarch64)")
    assert got["interp"][0] is PASS  # named once, by elf-files: not also as an unread PT_INTERP
    table = scan_layer(io.BytesIO(make_tar([("app", "f", data, 0o644)])))
    assert table.entries["/app"].problem == why  # any mode: ld.so refuses a library's table too
    assert load_table(dump_table(table)) == table  # the cache keeps the reason


def test_a_truncated_elf_header_is_invalid() -> None:
    got = run(view([("app", "f", GOOD[:40], 0o755)]))
    assert got["elf"] == (FAIL, 'cannot start "/app": /app cannot be executed: truncated ELF header (40 bytes)')
    assert got["elf-files"] == (FAIL, "1 of 1 ELF files are invalid (truncated ELF header (40 bytes)), e.g. /app "
                                      "(expected aarch64)")


@pytest.mark.parametrize(("e_type", "what"), [(elf.ET_REL, "a relocatable object (ET_REL)"),
                                              (elf.ET_CORE, "a core dump (ET_CORE)"), (7, "of ELF type 7")])
def test_objects_are_fine_files_but_no_entrypoint_and_no_loader(e_type: int, what: str) -> None:
    obj = crafted(e_type=e_type)
    got = run(view([("app", "f", obj, 0o755)]))
    assert got["elf"] == (FAIL, f'cannot start "/app": /app cannot be executed: it is {what}, not an executable')
    assert got["elf-files"] == (PASS, "1 ELF file, all aarch64")  # crt1.o and friends belong in images
    got = run(view([(LOADER.lstrip("/"), "f", obj, 0o755), ("app", "f", GOOD, 0o755)]))
    assert got["interp"] == (FAIL, f"1 dynamically linked ELF file needs {LOADER}, which the kernel cannot load "
                                   f"as a program interpreter (it is {what}, not an executable), e.g. /app")


def test_a_loader_with_a_broken_table_fails_interp() -> None:
    got = run(view([(LOADER.lstrip("/"), "f", crafted(phentsize=32), 0o755), ("app", "f", GOOD, 0o755)]))
    assert got["interp"][0] is FAIL
    assert "which the kernel cannot load as a program interpreter (e_phentsize is 32, not 56" in got["interp"][1]


def test_the_wrong_machine_is_named_before_a_broken_table() -> None:
    foreign = crafted(machine=62, phnum=0)  # the kernel checks e_machine first
    got = run(view([("app", "f", foreign, 0o755)]))
    assert got["elf"] == (FAIL, "/app is x86-64 (EM_X86_64), expected aarch64")
    assert got["elf-files"] == (FAIL, "1 of 1 ELF files are x86-64 (EM_X86_64), e.g. /app (expected aarch64)")


def test_test_helpers_make_loadable_binaries() -> None:
    for arch in ("amd64", "arm64", "arm", "386", "s390x"):
        table = scan_layer(io.BytesIO(make_tar([("bin/x", "f", elf_for(arch), 0o755)])))
        assert table.entries["/bin/x"].problem == ""


def test_a_relative_pt_interp_resolves_from_the_working_directory_and_warns() -> None:
    relative = crafted(interp=b"lib/ld.so\0")
    fs = view([("srv/lib/ld.so", "f", STATIC, 0o755), ("srv/app", "f", relative, 0o755), ("lib/ld.so", "f", STATIC, 0o755)])
    files = visible_elf_files(fs)
    check = check_interp(ARM, fs, files, (), workdir="/srv")
    assert check.status is CheckStatus.WARN
    assert check.detail == ("1 dynamically linked ELF files: 1 via lib/ld.so -> /srv/lib/ld.so (aarch64); 1 with the "
                            "relative PT_INTERP lib/ld.so, which the kernel opens from the caller's working directory "
                            "(here from WorkingDir /srv), e.g. /srv/app")
    missing = check_interp(ARM, fs, files, (), workdir="/opt")
    assert missing.status is FAIL and missing.detail.startswith(
        "1 dynamically linked ELF file needs lib/ld.so, which does not resolve from WorkingDir /opt (/opt does not exist")


def test_allow_foreign_also_exempts_invalid_and_unloadable_files() -> None:
    fixtures = [("usr/share/fixtures/cut", "f", GOOD[:40], 0o644), ("usr/share/fixtures/xnum", "f", REFUSED["pn-xnum"][0],
                                                                      0o644)]
    fs = view(fixtures)
    check = check_elf_files(ARM, visible_elf_files(fs), ("/usr/share/fixtures/*",))
    assert (check.status, check.detail) == (PASS, "2 ELF files, all aarch64; 2 foreign allowed by verify.allow_foreign "
                                                  "(/usr/share/fixtures/*: /usr/share/fixtures/cut, "
                                                  "/usr/share/fixtures/xnum)")
    assert check_elf_files(ARM, visible_elf_files(fs), ()).status is FAIL

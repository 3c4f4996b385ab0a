"""buildctl.inspect.elf_checks over real layer tars (scan_layer): the host's own /bin/true and its
program interpreter, and tiny ELF files built with struct. Wrong machine, wrong class or byte order,
a missing or unusable loader, a #! line to a missing interpreter, layers that hide files, and the
allow_foreign globs. Pure: no registry, no engine.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from buildctl.inspect import elf
from buildctl.inspect.elf_checks import (
    NO_COMMAND,
    check_elf_files,
    check_entrypoint,
    check_interp,
    expected_machine,
    visible_elf_files,
)
from buildctl.inspect.image_fs import LayeredView
from buildctl.inspect.layers import scan_layer
from buildctl.inspect.results import Check, CheckStatus
from buildctl.platforms import ARCHES
from tests.helpers.elf import elf_for, make_elf, make_tar

PASS, FAIL, WARN, SKIP = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.WARN, CheckStatus.SKIP
TRUE = Path("/bin/true").read_bytes()
HOST = next(a for a in ARCHES.values() if a.elf.matches(elf.parse_ident(TRUE)))
HOST_IS = elf.parse_ident(TRUE).describe()  # e.g. "x86-64 (EM_X86_64)"
FOREIGN = "arm64" if HOST.name != "arm64" else "amd64"
FOREIGN_IS = elf.parse_ident(elf_for(FOREIGN)).describe()
INTERP = scan_layer(io.BytesIO(make_tar([("t", "f", TRUE, 0o755)]))).entries["/t"].interp
LOADER = Path(INTERP).resolve().read_bytes() if INTERP else b""
REAL_LOADER = "/usr/lib/loader/" + INTERP.rsplit("/", 1)[-1]
pytestmark = pytest.mark.skipif(not INTERP, reason="/bin/true is statically linked on this host")


def dynamic(arch: str, interp: bytes, *, size: int | None = None) -> bytes:
    """A 64-bit little-endian executable of ``arch`` whose PT_INTERP holds ``interp`` (``size``: p_filesz)."""
    machine = {"arm64": 183, "amd64": 62}[arch]
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    filesz = len(interp) + 1 if size is None else size
    return header + struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, filesz, filesz, 1) + interp + b"\0"


def far_table(interp: bytes) -> bytes:
    """An arm64 executable whose program header table lies at 100,000 and its PT_INTERP at 0x100."""
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, 0, 100_000, 0, 0, 64, 56, 1, 64, 0, 0)
    body = bytearray(100_000)
    body[:64], body[0x100 : 0x100 + len(interp)] = header, interp
    return bytes(body) + struct.pack("<IIQQQQQQ", 3, 4, 0x100, 0, 0, len(interp) + 1, len(interp) + 1, 1)


def view(*layers: list) -> LayeredView:
    return LayeredView([scan_layer(io.BytesIO(make_tar(members))) for members in layers])


def checks(fs: LayeredView, platform: str, config: dict | None = None, allow: tuple[str, ...] = ()) -> dict:
    files = visible_elf_files(fs)
    config = {"config": {"Entrypoint": ["/usr/bin/true"]}} if config is None else config
    entry = check_entrypoint(platform, fs, config)
    return {c.name: (c.status, c.detail)
            for c in (entry, check_elf_files(platform, files, allow), check_interp(platform, fs, files, allow))}


WITH_LOADER = [
    ("usr/bin/true", "f", TRUE, 0o755), ("bin", "l", "usr/bin", 0o777),
    (REAL_LOADER.lstrip("/"), "f", LOADER, 0o755), (INTERP.lstrip("/"), "l", REAL_LOADER, 0o777),
]


# --------------------------------------------------------------------------- the host's real binaries


def test_the_hosts_true_and_its_loader_pass_on_the_hosts_platform():
    got = checks(view(WITH_LOADER), f"linux/{HOST.name}", {"config": {"Cmd": ["true"], "Env": ["PATH=/bin"]}})
    assert got == {
        "elf": (PASS, f"/usr/bin/true: {HOST_IS}"),
        "elf-files": (PASS, f"2 ELF files, all {HOST.elf.name}"),
        "interp": (PASS, f"1 dynamically linked ELF files: 1 via {INTERP} -> {REAL_LOADER} ({HOST.elf.name})"),
    }


def test_the_same_bytes_fail_every_check_on_another_platform():
    expected = ARCHES[FOREIGN].elf.name
    assert checks(view(WITH_LOADER), f"linux/{FOREIGN}") == {
        "elf": (FAIL, f"/usr/bin/true is {HOST_IS}, expected {expected}"),
        "elf-files": (FAIL, f"2 of 2 ELF files are {HOST_IS}, e.g. /usr/bin/true, {REAL_LOADER} (expected {expected})"),
        "interp": (FAIL, (f"1 dynamically linked ELF file needs {INTERP} -> {REAL_LOADER}, which is {HOST_IS}, "
                          f"not {expected}, e.g. /usr/bin/true")),
    }


@pytest.mark.parametrize(("loader", "problem"), [
    (None, "which does not resolve ("),
    ((INTERP.lstrip("/"), "f", LOADER, 0o644), "which is not an executable file"),
    ((INTERP.lstrip("/") + "/", "d", b"", 0o755), "which is not an executable file"),
    ((INTERP.lstrip("/"), "f", b"#!/bin/sh\nexec true\n", 0o755), "which is not an ELF file"),
    ((INTERP.lstrip("/"), "f", elf_for(FOREIGN), 0o755), f"which is {FOREIGN_IS}, not {HOST.elf.name}"),
    ((INTERP.lstrip("/"), "f", b"\x7fELF\x03\x01" + bytes(58), 0o755), "which is not a valid ELF file (invalid ELF class 3)"),
    ((INTERP.lstrip("/"), "l", "/nowhere/ld.so", 0o777), "which does not resolve (/nowhere does not exist"),
    ((INTERP.lstrip("/"), "l", INTERP, 0o777), "which does not resolve (too many levels of symbolic links"),
    ((INTERP.lstrip("/"), "l", "/usr/bin/true/", 0o777), "which does not resolve (/usr/bin/true is not a directory"),
], ids=["missing", "not-executable", "directory", "script", "foreign", "invalid", "dangling", "loop", "slash"])
def test_a_loader_the_kernel_could_not_use_fails_interp_only(loader, problem):
    members = [("usr/bin/true", "f", TRUE, 0o755), *([loader] if loader else [])]
    got = checks(view(members), f"linux/{HOST.name}")
    assert got["elf"] == (PASS, f"/usr/bin/true: {HOST_IS}")  # the entrypoint's own machine is right
    status, detail = got["interp"]
    assert status is FAIL and detail.startswith(f"1 dynamically linked ELF file needs {INTERP}")
    assert problem in detail and detail.endswith("e.g. /usr/bin/true")


def test_a_loader_deleted_by_an_upper_layer_is_missing():
    upper = [(INTERP.lstrip("/").rsplit("/", 1)[0] + "/.wh." + INTERP.rsplit("/", 1)[1], "f", b"", 0o644)]
    members = [("usr/bin/true", "f", TRUE, 0o755), (INTERP.lstrip("/"), "f", LOADER, 0o755)]
    assert checks(view(members), f"linux/{HOST.name}")["interp"][0] is PASS
    assert checks(view(members, upper), f"linux/{HOST.name}")["interp"][1].startswith(
        f"1 dynamically linked ELF file needs {INTERP}, which does not resolve ({INTERP} does not exist")


# --------------------------------------------------------------------------- PT_INTERP that cannot be read


def test_an_unreadable_pt_interp_warns_and_a_missing_loader_still_fails():
    # PT_INTERP before a program header table that starts past 64 KiB: a forward-only read has passed it.
    members = [("lib/ld.so", "f", elf_for("arm64"), 0o755), ("bin/good", "f", dynamic("arm64", b"/lib/ld.so"), 0o755),
               ("bin/far", "f", far_table(b"/lib/ld.so"), 0o755), ("bin/far2", "f", far_table(b"/lib/ld.so"), 0o755)]
    assert checks(view(members), "linux/arm64", {})["interp"] == (WARN, (
        "3 dynamically linked ELF files: 1 via /lib/ld.so (aarch64); 2 ELF files have their PT_INTERP before their "
        "program headers, out of a forward-only read's reach (not read), e.g. /bin/far, /bin/far2"))
    members.append(("bin/lost", "f", dynamic("arm64", b"/lib/gone.so"), 0o755))
    status, detail = checks(view(members), "linux/arm64", {})["interp"]
    assert status is FAIL and detail.startswith("1 dynamically linked ELF file needs /lib/gone.so, which does not")
    assert detail.endswith("; 2 ELF files have their PT_INTERP before their program headers, out of a forward-only "
                           "read's reach (not read), e.g. /bin/far, /bin/far2")
    only = checks(view([members[0], members[2]]), "linux/arm64", {})["interp"]
    assert only == (WARN, "1 dynamically linked ELF files; 1 ELF file has its PT_INTERP before their program "
                          "headers, out of a forward-only read's reach (not read), e.g. /bin/far")


# --------------------------------------------------------------------------- every ELF file


def test_offenders_are_grouped_counted_and_named_at_most_three_times():
    members = [(f"x/a{i}", "f", elf_for("amd64"), 0o755) for i in range(1, 5)]
    members += [("x/bad", "f", b"\x7fELF\x02\x09" + bytes(58), 0o644), ("x/r", "f", elf_for("riscv64"), 0o644),
                ("x/ok", "f", elf_for("arm64"), 0o755), ("x/prog.bpf.o", "f", make_elf(247), 0o644),
                ("x/notelf", "f", b"\x7fEL", 0o755)]
    files = visible_elf_files(view(members))
    assert [p for p, _ in files] == ["/x/a1", "/x/a2", "/x/a3", "/x/a4", "/x/bad", "/x/ok", "/x/prog.bpf.o", "/x/r"]
    assert check_elf_files("linux/arm64", files, ()).detail == (
        "4 of 8 ELF files are x86-64 (EM_X86_64), e.g. /x/a1, /x/a2, /x/a3, …; "
        "1 of 8 ELF files are invalid (invalid ELF data encoding 9), e.g. /x/bad; "
        "1 of 8 ELF files are riscv64 (EM_RISCV), e.g. /x/r (expected aarch64)")


def test_ebpf_objects_are_counted_never_foreign():
    files = visible_elf_files(view([("a", "f", make_elf(247), 0o644), ("b", "f", elf_for("arm64"), 0o755)]))
    assert check_elf_files("linux/arm64", files, ()) == Check("linux/arm64", "elf-files", PASS, "2 ELF files, all aarch64")
    assert check_elf_files("linux/arm64", [], ()).detail == "no ELF files"


@pytest.mark.parametrize(("platform", "binary", "what"), [
    ("linux/amd64", make_elf(62, elf_class=1), "x86-64 (EM_X86_64, 32-bit LE)"),        # x32
    ("linux/arm64", make_elf(183, order=">"), "aarch64 (EM_AARCH64, 64-bit BE)"),       # aarch64_be
    ("linux/ppc64le", make_elf(21, order=">"), "ppc64 (EM_PPC64)"),
    ("linux/arm/v7", elf_for("arm64"), "aarch64 (EM_AARCH64)"),
    ("linux/386", elf_for("amd64"), "x86-64 (EM_X86_64)"),
    ("linux/s390x", make_elf(22, order="<"), "s390x (EM_S390, 64-bit LE)"),
])
def test_class_and_byte_order_count_not_only_the_machine(platform, binary, what):
    fs = view([("bin/app", "f", binary, 0o755)])
    assert checks(fs, platform, {"config": {"Entrypoint": ["/bin/app"]}})["elf-files"] == (
        FAIL, f"1 of 1 ELF files are {what}, e.g. /bin/app (expected {expected_machine(platform).name})")


def test_allow_foreign_globs_exempt_matching_files_from_both_checks():
    members = [("usr/bin/app", "f", elf_for("arm64"), 0o755),
               ("opt/vendor/x86/lib/a.so", "f", dynamic("amd64", b"/lib64/ld-linux-x86-64.so.2"), 0o644),
               ("opt/vendor/b.so", "f", elf_for("amd64"), 0o644), ("opt/other.so", "f", elf_for("amd64"), 0o644)]
    fs, platform = view(members), "linux/arm64"
    got = checks(fs, platform, {"config": {"Cmd": ["app"]}}, allow=("/opt/vendor/*.so", "/OPT/*"))
    assert got["elf"] == (PASS, "/usr/bin/app: aarch64 (EM_AARCH64)")
    assert got["elf-files"] == (FAIL, ("1 of 4 ELF files are x86-64 (EM_X86_64), e.g. /opt/other.so (expected aarch64)"
                                       "; 2 foreign allowed by verify.allow_foreign (/opt/vendor/*.so: "
                                       "/opt/vendor/b.so, /opt/vendor/x86/lib/a.so)"))
    assert got["interp"] == (PASS, "no dynamically linked ELF files")  # the exempt file's loader is not asked for
    assert checks(fs, platform, allow=("/opt/*",))["elf-files"][0] is PASS  # `*` also matches `/`


# --------------------------------------------------------------------------- which files are visible


def test_only_files_of_the_final_filesystem_are_checked():
    lower = [("bin/a", "f", elf_for("amd64"), 0o755), ("bin/b", "f", elf_for("amd64"), 0o755),
             ("lib/c", "f", elf_for("amd64"), 0o644), ("opt/d/e", "f", elf_for("amd64"), 0o755),
             ("srv/f", "f", elf_for("amd64"), 0o755), ("h", "f", elf_for("arm64"), 0o755), ("h2", "h", "h", 0o755),
             ("keep", "f", elf_for("amd64"), 0o755)]
    upper = [("bin/.wh.a", "f", b"", 0o644), ("bin/b", "f", b"#!/bin/sh\n", 0o755), ("lib/.wh..wh..opq", "f", b"", 0o644),
             ("opt/d", "f", b"now a file", 0o644), ("srv", "l", "/bin", 0o777), ("new", "f", elf_for("arm64"), 0o755),
             ("keep", "f", elf_for("arm64"), 0o755)]
    files = dict(visible_elf_files(view(lower, upper)))
    assert sorted(files) == ["/h", "/h2", "/keep", "/new"]
    assert files["/h2"] == files["/h"] and elf.parse_ident(files["/keep"].head).machine == 183
    assert check_elf_files("linux/arm64", list(files.items()), ()).status is PASS


def test_a_parent_the_tar_does_not_list_is_a_directory_hiding_a_lower_symlink():
    lower = [("usr/bin/app", "f", elf_for("amd64"), 0o755), ("bin", "l", "usr/bin", 0o777)]
    fs = view(lower, [("bin/app", "f", elf_for("arm64"), 0o755)])  # no "bin/" entry: containerd mkdirs it
    assert [(p, elf.parse_ident(e.head).machine) for p, e in visible_elf_files(fs)] == [("/bin/app", 183),
                                                                                       ("/usr/bin/app", 62)]
    assert checks(fs, "linux/arm64", {"config": {"Entrypoint": ["/bin/app"]}})["elf"][0] is PASS


# --------------------------------------------------------------------------- the entrypoint


PY = [("usr/bin/python3", "f", elf_for("arm64"), 0o755), ("usr/bin/env", "f", elf_for("arm64"), 0o755)]


@pytest.mark.parametrize(("members", "config", "expected"), [
    ([("app/run.sh", "f", b"#!/usr/bin/python3\nprint()\n", 0o755), ("usr/bin/", "d", b"", 0o755)],
     {"Cmd": ["/app/run.sh"]},
     (FAIL, 'cannot start "/app/run.sh": /usr/bin/python3 does not exist')),
    ([("app/run.sh", "f", b"#!/usr/bin/python3\n", 0o755), ("usr/bin/python3", "f", elf_for("amd64"), 0o755)],
     {"Cmd": ["/app/run.sh"]}, (FAIL, "/usr/bin/python3 is x86-64 (EM_X86_64), expected aarch64")),
    ([("app/run", "f", b"#!/usr/bin/env python3\n", 0o755), *PY], {"Entrypoint": ["/app/run"], "Cmd": ["--x"]},
     (PASS, "/app/run -> /usr/bin/env -> /usr/bin/python3: aarch64 (EM_AARCH64)")),
    ([("usr/bin/env", "f", elf_for("amd64"), 0o755), ("usr/bin/python3", "f", elf_for("amd64"), 0o755)],
     {"Entrypoint": ["env", "-u", "X", "python3"]},
     (FAIL, ("/usr/bin/env is x86-64 (EM_X86_64), expected aarch64; /usr/bin/python3 is x86-64 (EM_X86_64), "
             "expected aarch64"))),
    (PY, {"Cmd": ["python3"], "Env": ["LANG=C.UTF-8", "PATH=/opt/bin"]},
     (FAIL, 'cannot start "python3": python3 not found in PATH /opt/bin')),
    ([("srv/run", "f", elf_for("arm64"), 0o755)], {"Cmd": ["./run"], "WorkingDir": "/srv"},
     (PASS, "/srv/run: aarch64 (EM_AARCH64)")),
    ([("srv/run", "f", elf_for("arm64"), 0o644)], {"Cmd": ["/srv/run"]},
     (FAIL, 'cannot start "/srv/run": /srv/run is not an executable file')),
])
def test_the_entrypoint_is_followed_as_the_kernel_would(members, config, expected):
    assert checks(view(members), "linux/arm64", {"config": config})["elf"] == expected


@pytest.mark.parametrize(("config", "detail"), [
    ({"Entrypoint": "/usr/bin/python3"}, "Entrypoint is a string, not an array of strings"),  # not "/", "u", ...
    ({"Entrypoint": ["/usr/bin/env"], "Cmd": "python3"}, "Cmd is a string, not an array of strings"),
    ({"Cmd": ["python3", 3]}, 'Cmd is ["python3", 3], not an array of strings'),
])
def test_an_entrypoint_or_cmd_that_is_no_array_of_strings_fails_saying_so(config, detail):
    assert checks(view(PY), "linux/arm64", {"config": config})["elf"] == (FAIL, detail)


@pytest.mark.parametrize("config", [{}, {"config": None}, {"config": {"Entrypoint": None, "Cmd": []}}])
def test_no_command_is_a_skip_with_a_reason(config):
    assert checks(view(PY), "linux/arm64", config)["elf"] == (SKIP, NO_COMMAND)


@pytest.mark.parametrize("platform", ["linux/mips", "windows/amd64", "darwin/arm64", "linux"])
def test_unknown_platforms_are_skipped_by_every_check(platform):
    got = checks(view(PY), platform)
    assert got == {name: (SKIP, f"no ELF machine known for {platform}; not checked")
                   for name in ("elf", "elf-files", "interp")}


@pytest.mark.parametrize(("platform", "name"), [
    ("linux/amd64", "x86-64"), ("linux/arm64", "aarch64"), ("linux/arm64/v8", "aarch64"), ("linux/arm/v7", "arm"),
    ("linux/arm/v6", "arm"), ("linux/386", "i386"), ("linux/ppc64le", "ppc64le"), ("linux/s390x", "s390x"),
])
def test_expected_machine(platform, name):
    assert expected_machine(platform).name == name




def test_an_indexed_table_holds_its_elf_files_and_links_without_cached_propertys_lock():
    """elf_checks.indexed, as the prefetch calls it beside the builds: the same lists the properties
    give, stored on the table, and made while another thread holds the class-wide lock that
    cached_property takes on Python 3.11 (python/cpython#87634), so a niced prefetch never holds
    verification of another table up."""
    import threading

    from buildctl.inspect.elf_checks import indexed
    from buildctl.inspect.image_fs import LayerTable

    table = scan_layer(io.BytesIO(make_tar([("t", "f", TRUE, 0o755)])))
    expected = scan_layer(io.BytesIO(make_tar([("t", "f", TRUE, 0o755)])))
    lock = getattr(LayerTable.__dict__["elf_entries"], "lock", None)  # none from Python 3.12 on
    done = threading.Event()
    with lock if lock is not None else threading.Lock():
        worker = threading.Thread(target=lambda: (indexed(table), done.set()), daemon=True)
        worker.start()
        assert done.wait(10), "indexing waited for cached_property's lock"
    assert vars(table)["elf_entries"] == expected.elf_entries and [p for p, _, _ in expected.elf_entries] == ["/t"]
    assert vars(table)["hard_links"] == expected.hard_links


@pytest.mark.parametrize(("user", "status", "detail"), [
    ("65534:7", CheckStatus.FAIL, "/app cannot be read by user \"65534:7\" (uid 65534)"),
    ("65534", CheckStatus.PASS, "/app -> /usr/bin/true"),  # no passwd entry: group 0, whose bits let it read
    ("", CheckStatus.PASS, "/app -> /usr/bin/true"),  # root
    ("app", CheckStatus.FAIL, 'cannot start as User "app": unable to find user app: no matching entries in passwd'),
])
def test_the_entrypoint_runs_as_the_configs_user(user: str, status: CheckStatus, detail: str) -> None:
    fs = view([("usr/bin/true", "f", elf_for("amd64"), 0o755), ("app", "f", b"#!/usr/bin/true\n", 0o750)])
    got = checks(fs, "linux/amd64", {"config": {"Entrypoint": ["/app"], "User": user}})["elf"]
    assert got[0] is status and detail in got[1]

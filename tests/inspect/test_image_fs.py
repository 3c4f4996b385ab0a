"""The entrypoint resolver over synthetic filesystem tables (pure: no registry, no tar)."""

from __future__ import annotations

import pytest

from buildctl.inspect.image_fs import (
    DIR,
    FILE,
    HARDLINK,
    IMPLICIT_DIR,
    SYMLINK,
    Entry,
    LayeredView,
    LayerTable,
    ResolveError,
    normalize,
    parse_shebang,
    resolve_command,
    resolve_path,
)
from tests.helpers.elf import elf_for

AMD64 = elf_for("amd64")
ARM64 = elf_for("arm64")


def d() -> Entry:
    return Entry(DIR)


def exe(head: bytes) -> Entry:
    return Entry(FILE, 0o755, "", head)


def link(target: str) -> Entry:
    return Entry(SYMLINK, 0o777, target)


def debian_like(**extra: Entry) -> dict[str, Entry]:
    """Merged /usr like bookworm: /bin -> usr/bin; python3 -> python3.11."""
    fs = {
        "/usr": d(), "/usr/bin": d(), "/usr/local": d(), "/usr/local/bin": d(), "/bin": link("usr/bin"),
        "/usr/bin/python3.11": exe(AMD64), "/usr/bin/python3": link("python3.11"),
        "/usr/bin/env": exe(AMD64), "/usr/bin/dash": exe(AMD64), "/usr/bin/sh": link("dash"),
        "/srv": d(),
    }
    return {**fs, **{k.replace("__", "/"): v for k, v in extra.items()}}


def chain(fs, argv, **kw) -> tuple[str, ...]:
    return resolve_command(fs, argv, **kw).chain


def test_absolute_elf() -> None:
    res = resolve_command(debian_like(), ["/usr/bin/python3.11", "-V"])
    assert res.chain == ("/usr/bin/python3.11",)
    assert [(p, i.machine) for p, i in res.binaries] == [("/usr/bin/python3.11", 62)]


def test_path_lookup_follows_relative_symlink() -> None:
    assert chain(debian_like(), ["python3"]) == ("/usr/bin/python3.11",)


def test_symlinked_directory_component_is_followed() -> None:
    assert chain(debian_like(), ["/bin/sh", "-c", "true"]) == ("/usr/bin/dash",)


def test_absolute_symlink_and_dotdot_in_target() -> None:
    fs = debian_like(__usr__local__bin__py=link("/usr/local/bin/../../bin/python3"))
    assert chain(fs, ["py"]) == ("/usr/bin/python3.11",)


def test_path_order_and_non_executables_skipped() -> None:
    fs = debian_like(**{"__usr__local__bin__python3": Entry(FILE, 0o644, "", AMD64)})
    assert chain(fs, ["python3"]) == ("/usr/bin/python3.11",)
    fs = debian_like(**{"__usr__local__bin__python3": exe(ARM64)})
    assert chain(fs, ["python3"]) == ("/usr/local/bin/python3",)


def test_config_path_replaces_default() -> None:
    fs = debian_like(__opt=d(), __opt__app=exe(AMD64))
    assert chain(fs, ["app"], path_env="/opt:/usr/bin") == ("/opt/app",)
    with pytest.raises(ResolveError, match=r"^app not found in PATH /usr/local/sbin:"):
        resolve_command(fs, ["app"])


def test_relative_path_is_relative_to_workdir() -> None:
    fs = debian_like(__srv__run=exe(AMD64))
    assert chain(fs, ["./run"], workdir="/srv") == ("/srv/run",)
    assert chain(fs, ["run"], path_env=":/usr/bin", workdir="/srv") == ("/srv/run",)  # empty PATH entry = cwd
    with pytest.raises(ResolveError, match="/run does not exist"):
        resolve_command(fs, ["./run"], workdir="/")


def test_symlink_loop_is_reported() -> None:
    fs = debian_like(__usr__bin__a=link("b"), __usr__bin__b=link("/usr/bin/a"))
    with pytest.raises(ResolveError, match="too many levels of symbolic links resolving /usr/bin/a"):
        resolve_command(fs, ["/usr/bin/a"])


def test_dangling_symlink_names_the_missing_target() -> None:
    fs = debian_like(__usr__bin__gone=link("/opt/nowhere/app"))
    with pytest.raises(ResolveError, match="/opt does not exist"):
        resolve_command(fs, ["/usr/bin/gone"])


def test_file_used_as_directory() -> None:
    with pytest.raises(ResolveError, match="/usr/bin/dash is not a directory"):
        resolve_path(debian_like(), "/usr/bin/dash/x")


def test_not_executable_is_named() -> None:
    fs = debian_like(__srv__app=Entry(FILE, 0o644, "", b""))
    with pytest.raises(ResolveError, match="/srv/app is not an executable file"):
        resolve_command(fs, ["/srv/app"])
    with pytest.raises(ResolveError, match="app found at /srv/app but it is not an executable file"):
        resolve_command(fs, ["app"], path_env="/srv")


def test_shebang_chain_down_to_elf() -> None:
    fs = debian_like(__usr__local__bin__app=exe(b"#!/usr/bin/python3 -u\nprint(1)\n"))
    res = resolve_command(fs, ["app"])
    assert res.chain == ("/usr/local/bin/app", "/usr/bin/python3.11")
    assert [p for p, _ in res.binaries] == ["/usr/bin/python3.11"]


def test_nested_shebangs() -> None:
    fs = debian_like(__srv__outer=exe(b"#!/srv/inner\n"), __srv__inner=exe(b"#!/bin/sh\n"))
    assert chain(fs, ["/srv/outer"]) == ("/srv/outer", "/srv/inner", "/usr/bin/dash")


@pytest.mark.parametrize("line", [b"#!/usr/bin/env python3\n", b"#! /usr/bin/env -S python3 -u\n",
                                  b"#!/usr/bin/env\tPYTHONUNBUFFERED=1 python3\n", b"#!/bin/env python3\n"])
def test_env_shebang_looks_python_up_in_path(line: bytes) -> None:
    fs = debian_like(__srv__app=exe(line + b"import sys\n"))
    res = resolve_command(fs, ["/srv/app"])
    assert res.chain == ("/srv/app", "/usr/bin/env", "/usr/bin/python3.11")
    assert [p for p, _ in res.binaries] == ["/usr/bin/env", "/usr/bin/python3.11"]  # both must match


@pytest.mark.parametrize(("line", "kernel_runs"), [
    (b"#!/bin/sh\r\n", '"#!/bin/sh\\r"'), (b"#!/usr/bin/env python3\r\n", '"#!/usr/bin/env python3\\r"'),
    (b"#!/bin/sh -e\r\n", '"#!/bin/sh -e\\r"')])  # sh exists, but "-e\r" is an illegal option
def test_crlf_line_ending_is_named(line: bytes, kernel_runs: str) -> None:
    fs = debian_like(__srv__app=exe(line + b"echo hi\r\n"))
    with pytest.raises(ResolveError) as err:
        resolve_command(fs, ["/srv/app"])
    assert str(err.value).startswith(f"/srv/app has a CRLF line ending: the kernel runs {kernel_runs}; ")
    assert "\r" not in str(err.value)  # shown escaped, never a raw carriage return


def test_lf_twin_of_the_crlf_script_passes() -> None:
    fs = debian_like(__srv__app=exe(b"#!/bin/sh\necho hi\n"))
    assert chain(fs, ["/srv/app"]) == ("/srv/app", "/usr/bin/dash")
    fs = debian_like(__srv__app=exe(b"#!/usr/bin/env -S python3 -u\r\nprint()\r\n"))  # env -S drops the \r
    assert chain(fs, ["/srv/app"])[-1] == "/usr/bin/python3.11"


def test_env_as_argv0() -> None:
    assert chain(debian_like(), ["env", "-u", "HOME", "python3", "app.py"]) == ("/usr/bin/env", "/usr/bin/python3.11")


def test_env_program_missing() -> None:
    fs = debian_like(__srv__app=exe(b"#!/usr/bin/env node\n"))
    with pytest.raises(ResolveError, match="node not found in PATH"):
        resolve_command(fs, ["/srv/app"])


def test_interpreter_loop_is_bounded() -> None:
    fs = debian_like(__srv__a=exe(b"#!/srv/b\n"), __srv__b=exe(b"#!/srv/a\n"))
    with pytest.raises(ResolveError, match="too many levels of interpreters starting /srv/a"):
        resolve_command(fs, ["/srv/a"])


def test_neither_elf_nor_script() -> None:
    fs = debian_like(__srv__data=exe(b"PK\x03\x04zip"))
    with pytest.raises(ResolveError, match=r"^/srv/data is neither an ELF binary nor a #! script$"):
        resolve_command(fs, ["/srv/data"])


def test_hard_link_takes_its_targets_content() -> None:
    fs = debian_like(__usr__bin__python3=Entry(HARDLINK, 0o755, "/usr/bin/python3.11"))
    assert resolve_command(fs, ["python3"]).binaries[0][1].machine == 62


def test_empty_command() -> None:
    with pytest.raises(ResolveError, match="empty command"):
        resolve_command(debian_like(), [])


@pytest.mark.parametrize(("head", "expected"), [
    (b"#!/bin/sh\n", ("/bin/sh", "")),
    (b"#!  /usr/bin/python3   -u -B \nx", ("/usr/bin/python3", "-u -B")),
    (b"#!/bin/bash\r\n", ("/bin/bash\r", "")),  # the kernel trims spaces and tabs only
    (b"#!/usr/bin/env python3\r\n", ("/usr/bin/env", "python3\r")),
    (b"#!/bin/sh -e -x\t\n", ("/bin/sh", "-e -x")),  # one argument, as the kernel passes it
    (b"#!/bin/sh\0junk\n", ("/bin/sh", "")),
    (b"#!" + b"/x" * 200, None),  # no newline within 256 bytes: the path may be cut, ENOEXEC
    (b"#!/bin/sh", ("/bin/sh", "")),  # the whole file, no newline: the kernel's buffer is NUL-padded
    (b"#!/bin/sh -e", ("/bin/sh", "-e")),
    (b"#!/bin/sh" + b"x" * 247, None),  # 256 bytes, no newline, no terminator: no padding, ENOEXEC
    (b"#!\n", None),
    (b"\x7fELF", None),
])
def test_parse_shebang(head: bytes, expected) -> None:
    assert parse_shebang(head) == expected


@pytest.mark.parametrize(("name", "path"), [
    ("./usr/bin/", "/usr/bin"), ("usr", "/usr"), ("./", "/"), ("/a//b/../c", "/a/c"), (".bashrc", "/.bashrc"),
])
def test_normalize(name: str, path: str) -> None:
    assert normalize(name) == path


# --------------------------------------------------------------------------- layered view


def table(entries: dict[str, Entry], whiteouts=(), opaque=()) -> LayerTable:
    return LayerTable(entries, frozenset(whiteouts), frozenset(opaque))


def test_upper_layer_replaces_and_whiteout_deletes() -> None:
    base = table(debian_like())
    upper = table({"/usr/bin/python3.11": exe(ARM64)}, whiteouts={"/usr/bin/dash"})
    view = LayeredView([base, upper])
    assert resolve_command(view, ["python3"]).binaries[0][1].machine == 183
    with pytest.raises(ResolveError, match="/usr/bin/dash does not exist"):
        resolve_command(view, ["/bin/sh"])


def test_whiteout_of_directory_hides_everything_below() -> None:
    view = LayeredView([table(debian_like()), table({}, whiteouts={"/usr/bin"})])
    assert view.get("/usr/bin/python3.11") is None
    assert view.get("/usr/local/bin") == d()


def test_opaque_directory_hides_lower_contents_only() -> None:
    lower = table(debian_like(__srv__old=exe(AMD64)))
    upper = table({"/srv": d(), "/srv/new": exe(ARM64)}, opaque={"/srv"})
    view = LayeredView([lower, upper])
    assert view.get("/srv/old") is None
    assert view.get("/srv/new") == exe(ARM64)
    assert view.get("/usr/bin/env") == exe(AMD64)


def test_directory_replaced_by_symlink_hides_lower_children() -> None:
    lower = table(debian_like(__opt=d(), __opt__tool=exe(AMD64), __data=d(), __data__tool=exe(ARM64)))
    upper = table({"/opt": link("/data")})
    assert chain(LayeredView([lower, upper]), ["/opt/tool"]) == ("/data/tool",)


def test_implicit_directory_does_not_shadow_a_lower_symlink() -> None:
    lower = table(debian_like())
    upper = table({"/bin": Entry(IMPLICIT_DIR), "/bin/extra": exe(ARM64)})
    view = LayeredView([lower, upper])
    assert view.get("/bin") == link("usr/bin")
    assert view.get("/") == d()

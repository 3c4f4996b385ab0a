"""The #! and env chain over synthetic filesystem tables (pure: no registry, no tar)."""

from __future__ import annotations

import pytest

from buildctl.inspect.image_fs import FILE, Entry, ResolveError
from buildctl.inspect.interpreters import parse_shebang, resolve_command
from buildctl.inspect.users import Account
from tests.helpers.fs_tables import AMD64, chain, debian_like, exe


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
    fs = debian_like(__srv__a=exe(b"#!/usr/bin/env /srv/a\n"))  # each hop a new execve: no ELOOP, no end
    with pytest.raises(ResolveError, match="too many levels of interpreters starting /srv/a: 8 env hops"):
        resolve_command(fs, ["/srv/a"])


def scripts(count: int, last: str = "/bin/sh", name: str = "s") -> dict:
    """/srv/{name}1 runs /srv/{name}2 ... /srv/{name}{count}, whose interpreter is ``last``."""
    return {f"__srv__{name}{i}": exe(f"#!{f'/srv/{name}{i + 1}' if i < count else last}\n".encode())
            for i in range(1, count + 1)}


def test_the_kernel_runs_five_nested_scripts_not_six() -> None:
    assert len(chain(debian_like(**scripts(5)), ["/srv/s1"])) == 6  # fs/exec.c exec_binprm: depth > 5
    with pytest.raises(ResolveError, match="starting /srv/s1: more than 5 nested #! scripts, which the kernel"):
        resolve_command(debian_like(**scripts(6)), ["/srv/s1"])
    # env execs its program anew: 5 scripts before it and 5 after are two execve calls, each within the limit
    fs = debian_like(**scripts(5, "/usr/bin/env /srv/t1"), **scripts(5, name="t"))
    assert chain(fs, ["/srv/s1"])[-1] == "/usr/bin/dash"
    with pytest.raises(ResolveError, match="starting /srv/t1: more than 5"):
        resolve_command(debian_like(**scripts(5, "/usr/bin/env /srv/t1"), **scripts(6, name="t")), ["/srv/s1"])


def test_neither_elf_nor_script() -> None:
    fs = debian_like(__srv__data=exe(b"PK\x03\x04zip"))
    with pytest.raises(ResolveError, match=r"^/srv/data is neither an ELF binary nor a #! script$"):
        resolve_command(fs, ["/srv/data"])


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


NOBODY = Account("65534", 65534, frozenset({65534}))


@pytest.mark.parametrize("line", [b"#!/bin/sh\n", b"#!/usr/bin/env sh\n"])
def test_a_script_its_interpreter_cannot_read_as_the_user_fails(line: bytes) -> None:
    # docker run: "/bin/sh: 0: cannot open /usr/local/bin/hello: Permission denied"
    fs = debian_like(__srv__app=Entry(FILE, 0o700, "", line))
    with pytest.raises(ResolveError, match="^/srv/app cannot be read by user \"65534\" .* /usr/bin/dash opens it "
                                           r"\(mode 0700, owner 0:0\): Permission denied$"):
        resolve_command(fs, ["/srv/app"], account=NOBODY)
    assert resolve_command(fs, ["/srv/app"]).chain[-1] == "/usr/bin/dash"  # root reads it


def test_an_outer_script_of_nested_ones_is_only_an_argument() -> None:
    # docker run: an unreadable outer script whose readable inner one ignores it starts
    fs = debian_like(__srv__outer=Entry(FILE, 0o700, "", b"#!/srv/inner\n"), __srv__inner=exe(b"#!/bin/sh\n"))
    assert chain(fs, ["/srv/outer"], account=NOBODY) == ("/srv/outer", "/srv/inner", "/usr/bin/dash")


def test_what_env_execs_must_be_executable_by_the_user() -> None:
    # docker run: "/usr/bin/env: 'prog': Permission denied"; a 0700 ELF entrypoint itself starts
    fs = debian_like(__srv__app=exe(b"#!/usr/bin/env prog\n"), __usr__bin__prog=Entry(FILE, 0o700, "", AMD64))
    with pytest.raises(ResolveError, match="^prog found at /usr/bin/prog but it is not executable by user"):
        resolve_command(fs, ["/srv/app"], account=NOBODY)
    assert chain(fs, ["/usr/bin/prog"], account=NOBODY) == ("/usr/bin/prog",)

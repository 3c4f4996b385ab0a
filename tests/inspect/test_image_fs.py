"""The path walk and the layers' union over synthetic filesystem tables (pure: no registry, no tar)."""

from __future__ import annotations

import pytest

from buildctl.inspect.image_fs import (
    FILE,
    HARDLINK,
    IMPLICIT_DIR,
    Entry,
    LayeredView,
    LayerTable,
    ResolveError,
    normalize,
    resolve_path,
)
from buildctl.inspect.interpreters import resolve_command
from tests.helpers.fs_tables import AMD64, ARM64, chain, d, debian_like, exe, link


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


@pytest.mark.parametrize("path", ["/usr/bin/dash/x", "/usr/bin/dash/", "/usr/bin/dash/.", "/usr/bin/dash//",
                                  "/usr/bin/dash/..", "/bin/sh/", "/srv/ld"])
def test_file_used_as_directory(path: str) -> None:
    # ENOTDIR for a trailing "/" or "/." too, also through a symlink whose target ends in "/"
    with pytest.raises(ResolveError, match="/usr/bin/dash is not a directory"):
        resolve_path(debian_like(__srv__ld=link("../usr/bin/dash/")), path)
    assert resolve_path(debian_like(), "/usr/bin/./")[0] == "/usr/bin"


def test_a_trailing_slash_fails_the_command_and_its_interpreter() -> None:
    fs = debian_like(__srv__app=exe(b"#!/bin/sh/\n"))
    with pytest.raises(ResolveError, match="/usr/bin/dash is not a directory"):
        resolve_command(fs, ["/srv/app"])
    with pytest.raises(ResolveError, match="/usr/bin/dash is not a directory"):
        resolve_command(fs, ["/usr/bin/dash/"])


def test_not_executable_is_named() -> None:
    fs = debian_like(__srv__app=Entry(FILE, 0o644, "", b""))
    with pytest.raises(ResolveError, match="/srv/app is not an executable file"):
        resolve_command(fs, ["/srv/app"])
    with pytest.raises(ResolveError, match="app found at /srv/app but it is not an executable file"):
        resolve_command(fs, ["app"], path_env="/srv")


def test_hard_link_takes_its_targets_content() -> None:
    fs = debian_like(__usr__bin__python3=Entry(HARDLINK, 0o755, "/usr/bin/python3.11"))
    assert resolve_command(fs, ["python3"]).binaries[0][1].machine == 62


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


def test_implicit_directory_shadows_a_lower_symlink_or_file_and_merges_with_a_lower_directory() -> None:
    # containerd's overlayfs applier creates the unlisted parent in the upper layer: /bin/sh is gone.
    lower = table(debian_like(__opt=exe(AMD64), __srv__old=exe(AMD64)))
    upper = table({"/bin": Entry(IMPLICIT_DIR), "/bin/extra": exe(ARM64), "/opt": Entry(IMPLICIT_DIR),
                   "/opt/x": exe(ARM64), "/srv": Entry(IMPLICIT_DIR), "/srv/new": exe(ARM64)})
    view = LayeredView([lower, upper])
    assert view.get("/bin") == Entry(IMPLICIT_DIR) and view.get("/opt") == Entry(IMPLICIT_DIR)
    assert chain(view, ["/bin/extra"]) == ("/bin/extra",) and chain(view, ["/opt/x"]) == ("/opt/x",)
    with pytest.raises(ResolveError, match="/bin/sh does not exist"):
        resolve_command(view, ["/bin/sh"])
    assert view.get("/srv") == d() and view.get("/srv/old") == exe(AMD64)  # a lower directory's mode
    assert view.get("/") == d()

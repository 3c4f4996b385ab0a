"""The config's User resolved as docker resolves it (moby/sys/user GetExecUser over the image's
/etc/passwd and /etc/group), and what that user may read and execute. Each rule was measured with
docker run on a crafted image (buildctl.inspect.users)."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from buildctl.inspect.cache import dump_table, load_table
from buildctl.inspect.image_fs import FILE, Entry, LayeredView, LayerTable
from buildctl.inspect.layers import LayerCache, scan_layer
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.users import UNKNOWN, Account, UserError, account_text, image_account, resolve_user
from buildctl.inspect.verify import verify_image
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import REGISTRY
from tests.helpers.crafted_images import OCI_INDEX, OCI_MANIFEST, image_manifest, index_of, push_blob, push_manifest, sha
from tests.helpers.elf import elf_for
from tests.helpers.fs_tables import link

PASSWD = b"root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
GROUP = b"root:x:0:\nnogroup:x:65534:\nextra:x:4242:daemon,nobody\n#commented:x:99:nobody\n"


@pytest.mark.parametrize(("spec", "uid", "gids"), [
    ("65534", 65534, {65534, 4242}),  # a number matches the passwd entry by uid: its name's groups count
    ("nobody", 65534, {65534, 4242}),
    ("65534:65534", 65534, {65534}),  # an explicit group: no supplementary ones
    ("nobody:extra", 65534, {4242}),
    ("4321", 4321, {0}),  # no entry: group 0
    ("1000:77", 1000, {77}),  # numbers need no entries
])
def test_user_resolves_as_docker_resolves_it(spec: str, uid: int, gids: set[int]) -> None:
    assert resolve_user(spec, PASSWD, GROUP) == Account(spec, uid, frozenset(gids))


@pytest.mark.parametrize("spec", ["", "0", "root", "0:4242"])
def test_root_is_not_checked(spec: str) -> None:
    assert resolve_user(spec, PASSWD, GROUP) is None


@pytest.mark.parametrize(("spec", "passwd", "group", "message"), [
    ("nosuch", PASSWD, GROUP, "unable to find user nosuch: no matching entries in passwd file"),
    ("nobody:nosuch", PASSWD, GROUP, "unable to find group nosuch: no matching entries in group file"),
    ("nobody", None, None, "unable to find user nobody: no matching entries in passwd file"),  # FROM scratch
    ("1000:nogroup", None, None, "unable to find group nogroup: no matching entries in group file"),
])
def test_a_name_that_does_not_resolve_fails_with_dockers_message(spec, passwd, group, message) -> None:
    with pytest.raises(UserError, match=f"^{message}$"):
        resolve_user(spec, passwd, group)


def test_a_number_out_of_range_or_an_overlong_line_is_not_checked() -> None:
    assert resolve_user("99999999999", PASSWD, GROUP) is None
    assert resolve_user("nobody", PASSWD + b"x" * (70 << 10) + b"\n", GROUP) is None


@pytest.mark.parametrize(("mode", "owner", "readable"), [
    (0o700, (0, 0), False), (0o750, (0, 65534), True), (0o705, (0, 0), True),
    (0o075, (65534, 0), False),  # the owner's bits, though group and others may read
    (0o750, (0, 4242), True),  # a supplementary group
])
def test_read_permission_by_owner_group_and_others(mode: int, owner: tuple[int, int], readable: bool) -> None:
    account = Account("nobody", 65534, frozenset({65534, 4242}))
    assert account.may(Entry(FILE, mode, uid=owner[0], gid=owner[1]), 4) is readable


def _table(*members: tuple[str, bytes, int, int]) -> LayerTable:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, mode, uid in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, uid, uid
            tar.addfile(info, io.BytesIO(data))
    return scan_layer(io.BytesIO(gzip.compress(out.getvalue(), mtime=0)))


def test_the_scan_keeps_owners_and_account_files_through_the_cache() -> None:
    table = _table(("etc/passwd", PASSWD, 0o644, 0), ("etc/group", GROUP, 0o644, 0),
                   ("app/run", b"#!/bin/sh\n", 0o700, 1000))
    assert table.texts == {"/etc/passwd": PASSWD, "/etc/group": GROUP}
    assert (table.entries["/app/run"].uid, table.entries["/app/run"].gid) == (1000, 1000)
    again = load_table(dump_table(table))
    assert again.texts == table.texts and again.entries == table.entries
    assert image_account(LayeredView([again]), "nobody") == Account("nobody", 65534, frozenset({65534, 4242}))


def test_an_account_file_the_table_does_not_hold_leaves_the_user_unchecked() -> None:
    lower = _table(("etc/passwd.real", PASSWD, 0o644, 0))
    upper = LayerTable({"/etc/passwd": link("passwd.real")})
    view = LayeredView([lower, upper])
    assert account_text(view, "/etc/passwd") is UNKNOWN
    assert image_account(view, "nosuch") is None
    assert account_text(view, "/etc/group") is None  # missing: docker reads no entries


REPOSITORY = "buildctl-test-users"


def _push(tag: str, script_mode: int, user: str) -> str:
    """A FROM-scratch amd64 image: /etc/passwd, /etc/group, /bin/sh and the entrypoint script."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data, mode in (("etc/passwd", PASSWD, 0o644), ("etc/group", GROUP, 0o644),
                                 ("bin/sh", elf_for("amd64"), 0o755), ("app", b"#!/bin/sh\necho started\n", script_mode)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(out.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/app"], "User": user},
                         "rootfs": {"type": "layers", "diff_ids": [sha(out.getvalue())]}}).encode()
    push_blob(REGISTRY, REPOSITORY, layer)
    push_blob(REGISTRY, REPOSITORY, config)
    body = image_manifest(config, [layer])
    raw = push_manifest(REGISTRY, REPOSITORY, sha(json.dumps(body, separators=(",", ":")).encode()), body, OCI_MANIFEST)
    push_manifest(REGISTRY, REPOSITORY, tag, index_of(raw, {"os": "linux", "architecture": "amd64"}), OCI_INDEX)
    return f"{REGISTRY}/{REPOSITORY}:{tag}"


@pytest.mark.engine
@pytest.mark.parametrize(("tag", "mode", "user", "detail"), [
    ("unreadable", 0o700, "nobody", 'cannot start "/app": /app cannot be read by user "nobody" (uid 65534), as its '
                                    "interpreter /bin/sh opens it (mode 0700, owner 0:0): Permission denied"),
    ("no-such-user", 0o755, "ghost", 'cannot start as User "ghost": unable to find user ghost: no matching entries '
                                     "in passwd file"),
    ("readable", 0o705, "nobody", None),
])
def test_the_start_check_runs_the_entrypoint_as_the_configs_user(tmp_path, tag, mode, user, detail) -> None:
    ref = _push(tag, mode, user)
    with RegistryClient() as client:
        result = verify_image(ref, platforms=("linux/amd64",), client=client, layers=LayerCache(tmp_path / "cache"))
    elf_check = next(c for c in result.checks if c.name == "elf")
    assert (elf_check.status, elf_check.detail if detail else None) == \
        ((CheckStatus.FAIL, detail) if detail else (CheckStatus.PASS, None))

"""Who the entrypoint runs as: the image config's ``User`` resolved as docker resolves it, and what
that user may read and execute.

docker (moby's daemon/oci_linux.go getUser, moby/sys/user GetExecUser) reads the container's
/etc/passwd and /etc/group: ``uid``, ``uid:gid``, ``name``, ``name:group`` (any mix). A name that
matches no entry fails ``docker run`` before anything starts ("unable to find user NAME: no
matching entries in passwd file"); a number needs no entry. Without an explicit group, the
passwd entry's group is the primary one (0 for a uid with no entry) and every /etc/group line
listing the user's name adds a supplementary group; an explicit group adds none.

runc execs the entrypoint still holding the default capabilities (CAP_DAC_OVERRIDE: any x bit
will do), and the kernel drops them on that execve for a non-root user. So what the started
program opens or execs is checked as the user: the #! script its interpreter reads, and what env
execs (measured with docker run: ``/bin/sh: 0: cannot open /usr/local/bin/hello: Permission
denied``, ``/usr/bin/env: 'prog': Permission denied``; a root-owned 0700 ELF entrypoint starts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from buildctl.inspect.image_fs import FILE, Entry, LayeredView, ResolveError, resolve_path

PASSWD, GROUP = "/etc/passwd", "/etc/group"
ACCOUNT_FILES = frozenset((PASSWD, GROUP))  # kept whole in layer tables (LayerTable.texts)
MAX_ACCOUNT_BYTES = 1 << 20  # a larger file is not kept: the user is then not checked
MAX_LINE = 64 << 10  # bufio.Scanner's default token limit: a longer line is a read error in docker
MAX_ID = (1 << 31) - 1  # moby/sys/user refuses larger ids ("uids and gids must be in range")
_NUMBER = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi reads as a number
_OUT_OF_RANGE = object()  # a number moby/sys/user refuses
UNKNOWN = object()  # an account file present but not known to the table: the user is not checked


class UserError(Exception):
    """``docker run`` refuses the image's User; the message is docker's."""


@dataclass(frozen=True)
class Account:
    spec: str  # the config's User, as written
    uid: int
    gids: frozenset[int]  # the primary group and the supplementary ones

    def __str__(self) -> str:
        return f"user {json.dumps(self.spec)} (uid {self.uid})"

    def may(self, entry: Entry, bit: int) -> bool:
        """Whether the user gets ``bit`` (4 read, 1 execute) on ``entry``: the owner's bits when the
        uid owns it, else the group's when one of its groups does, else the others' (no ACLs in
        layer tars that containerd applies). Never root's: resolve_user gives no Account for uid 0,
        which reads anything and executes any x bit, as the checks assume without a User."""
        if entry.uid == self.uid:
            return bool(entry.mode >> 6 & bit)
        if entry.gid in self.gids:
            return bool(entry.mode >> 3 & bit)
        return bool(entry.mode & bit)

    def may_execute(self, entry: Entry) -> bool:
        return entry.kind == FILE and self.may(entry, 1)


def image_account(view: LayeredView, spec: str) -> Account | None:
    """The account the image's User runs as; None for root or when it cannot be told for sure
    (an account file the scan did not keep, a malformed number): unchecked rather than a false
    failure. UserError when docker run refuses the User."""
    passwd, group = account_text(view, PASSWD), account_text(view, GROUP)
    if passwd is UNKNOWN or group is UNKNOWN:
        return None
    return resolve_user(spec, passwd, group)  # type: ignore[arg-type]


def account_text(view: LayeredView, path: str) -> bytes | None | object:
    """The bytes of ``path`` in the image; None when it does not exist (docker then reads no
    entries), UNKNOWN when it exists but its bytes were not kept (a hard link, a file too large,
    a symlink to another path, a directory)."""
    try:
        real, _ = resolve_path(view, path)
    except ResolveError:
        return None
    found = view.top(real)
    if found is None or found[1].kind != FILE or found[0] >= len(view.layers):
        return UNKNOWN
    return view.layers[found[0]].texts.get(real, UNKNOWN)


def _lines(text: bytes | None, *, comments: bool) -> list[list[bytes]] | None:
    """The colon-separated fields of each line as bufio.Scanner + bytes.TrimSpace read them (the
    group parser also skips "#" lines, the passwd one does not); [] for a missing file, None when
    a line is longer than docker reads (the User is then not checked)."""
    lines = text.split(b"\n") if text is not None else []
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return [line.split(b":") for line in map(bytes.strip, lines) if line and not (comments and line[:1] == b"#")]


def _id(fields: list[bytes]) -> int:
    """parseLine's third field (uid, gid): strconv.Atoi with its error ignored (0)."""
    text = fields[2].decode("latin-1") if len(fields) > 2 else ""
    return int(text) if _NUMBER.fullmatch(text) else 0


def _matches(fields: list[bytes], name: str, number: int | None) -> bool:
    """A number is always an id, never a name (GetExecUser's userArg/groupArg)."""
    return _id(fields) == number if number is not None else fields[0] == name.encode("utf-8", "surrogateescape")


def resolve_user(spec: str, passwd: bytes | None, group: bytes | None) -> Account | None:
    """GetExecUser(spec) over the two files' bytes (None: the file is missing)."""
    name, _, group_name = spec.partition(":")
    users, groups = _lines(passwd, comments=False), _lines(group, comments=True)
    uid_arg, gid_arg = _number(name), _number(group_name)
    if users is None or groups is None or _OUT_OF_RANGE in (uid_arg, gid_arg):
        return None  # out of range: docker refuses it ("must be in range"), older versions may not
    matches = [f for f in users if _matches(f, name, 0 if not name else uid_arg)]  # "": uid 0's entry
    uid, gid, matched = uid_arg or 0, 0, b""  # type: ignore[assignment]
    if matches:
        uid, gid, matched = _id(matches[0]), _gid(matches[0]), matches[0][0]
    elif name and uid_arg is None:
        raise UserError(f"unable to find user {name}: no matching entries in passwd file")
    supplementary: set[int] = set()
    if group_name:  # explicit: the primary group, and no supplementary ones
        found = [f for f in groups if _matches(f, group_name, gid_arg)]  # type: ignore[arg-type]
        if not found and gid_arg is None:
            raise UserError(f"unable to find group {group_name}: no matching entries in group file")
        gid = _id(found[0]) if found else gid_arg  # type: ignore[assignment]
    elif matched:
        supplementary = {_id(f) for f in groups if matched in (f[3].split(b",") if len(f) > 3 else [])}
    if uid == 0:
        return None  # root: reads anything, executes any x bit, as the checks assume without a User
    return Account(spec, uid, frozenset({gid, *supplementary}))


def _gid(fields: list[bytes]) -> int:
    return _id(fields[1:])  # the passwd line's fourth field, read like the third


def _number(text: str) -> int | None | object:
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if 0 <= value <= MAX_ID else _OUT_OF_RANGE

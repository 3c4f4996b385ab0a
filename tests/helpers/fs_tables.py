"""Synthetic filesystem tables for the path walk and interpreter tests (tests/inspect)."""

from __future__ import annotations

from buildctl.inspect.image_fs import DIR, FILE, SYMLINK, Entry
from buildctl.inspect.interpreters import resolve_command
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

"""Marks of services.yaml documents that passed the schema: a release that changes nothing need
not load jsonschema (~60 ms of a 0.7 s run, issue #20) to validate the document it validated before.

A mark is named by a digest of everything the verdict depends on: the document as loaded (JSON,
keys sorted), the schema file and the code that applies it (their bytes), and the jsonschema
installation (its location and modification time). Any change to one of them is another name, so
a mark never goes stale; only passing documents are marked, so an error is always found and
reported with its line by the real validation. Marks live in the user's cache folder
(``$XDG_CACHE_HOME/buildctl/valid-configs``), as empty files; a cache that cannot be read or
written just means validating again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from buildctl import workdir

FOLDER = "valid-configs"


def mark_of(data: Any, *, rules: tuple[str, ...]) -> str | None:
    """The mark of ``data`` under the files ``rules`` (the schema and its code), or None when
    ``data`` is not plain JSON (a non-string key: ``{1: x}`` and ``{"1": x}`` would share a text)."""
    if not _plain(data):
        return None
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{_rules_digest(rules)}\n{text}".encode()).hexdigest()


def is_marked(mark: str) -> bool:
    return workdir.has_mark(FOLDER, mark)


def mark(mark: str) -> None:
    workdir.set_mark(FOLDER, mark)  # a read-only or full cache: the next run validates again


@cache
def _rules_digest(rules: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in rules:
        digest.update(Path(path).read_bytes())
    spec = importlib.util.find_spec("jsonschema")  # found, not imported
    origin = spec.origin if spec is not None and spec.origin else ""
    for path in (origin, os.path.dirname(origin)) if origin else ():  # an upgrade rewrites both
        stat = os.stat(path)
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_ino}:{stat.st_size}".encode())
    return digest.hexdigest()


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))

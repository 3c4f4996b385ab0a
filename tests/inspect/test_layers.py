"""Layer tar scanning and the per-layer cache (real tar/gzip/zstd bytes, real files on disk)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import zstandard

from buildctl.errors import OperationError
from buildctl.inspect.image_fs import (
    DIR,
    FILE,
    HARDLINK,
    IMPLICIT_DIR,
    SYMLINK,
    LayeredView,
    resolve_command,
)
from buildctl.inspect.layers import (
    HEAD_BYTES,
    LayerCache,
    default_cache_dir,
    dump_table,
    load_table,
    scan_layer,
)
from tests.helpers.elf import elf_for, gzip_bytes, make_tar

BIG_ELF = elf_for("arm64") + b"\0" * 10_000
BASE = make_tar([
    ("./", "d", b"", 0o755),
    ("./usr/", "d", b"", 0o755),
    ("./usr/bin/", "d", b"", 0o755),
    ("./usr/bin/python3.11", "f", BIG_ELF, 0o755),
    ("./usr/bin/python3", "l", "python3.11", 0o777),
    ("./usr/bin/python3-hard", "h", "./usr/bin/python3.11", 0o755),
    ("./usr/share/doc/readme", "f", b"not executable", 0o644),  # parents not listed
    ("./bin", "l", "usr/bin", 0o777),
    ("./app/", "d", b"", 0o755),
    ("./app/old.py", "f", b"print()", 0o644),
])
UPPER = make_tar([
    ("app/.wh..wh..opq", "f", b"", 0o644),
    ("app/new", "f", b"#!/usr/bin/python3\n", 0o755),
    ("usr/share/.wh.doc", "f", b"", 0o644),
])


def test_scan_records_metadata_and_heads_of_executables_only() -> None:
    t = scan_layer(io.BytesIO(BASE))
    assert t.entries["/usr/bin/python3.11"].kind == FILE
    assert t.entries["/usr/bin/python3.11"].head == BIG_ELF[:HEAD_BYTES]
    assert t.entries["/usr/bin/python3"].kind == SYMLINK and t.entries["/usr/bin/python3"].target == "python3.11"
    assert t.entries["/usr/bin/python3-hard"].kind == HARDLINK
    assert t.entries["/usr/bin/python3-hard"].target == "/usr/bin/python3.11"
    assert t.entries["/usr/share/doc/readme"].head == b""
    assert t.entries["/usr/share/doc"].kind == IMPLICIT_DIR
    assert t.entries["/app"].kind == DIR and t.entries["/app"].mode == 0o755
    assert "/" not in t.entries


def test_whiteouts_are_recorded_not_listed() -> None:
    t = scan_layer(io.BytesIO(UPPER))
    assert t.opaque == {"/app"} and t.whiteouts == {"/usr/share/doc"}
    assert set(t.entries) == {"/app", "/app/new", "/usr", "/usr/share"}


@pytest.mark.parametrize("compress", [lambda b: b, gzip_bytes, lambda b: zstandard.ZstdCompressor().compress(b)],
                         ids=["tar", "gzip", "zstd"])
def test_compression_is_sniffed(compress) -> None:
    assert scan_layer(io.BytesIO(compress(BASE))) == scan_layer(io.BytesIO(BASE))


def test_layers_merge_into_a_resolvable_view() -> None:
    view = LayeredView([scan_layer(io.BytesIO(BASE)), scan_layer(io.BytesIO(gzip_bytes(UPPER)))])
    res = resolve_command(view, ["/app/new"])
    assert res.chain == ("/app/new", "/usr/bin/python3.11")
    assert res.binaries[0][1].machine == 183
    assert view.get("/app/old.py") is None and view.get("/usr/share/doc/readme") is None
    assert resolve_command(view, ["python3-hard"]).binaries[0][1].machine == 183


def test_not_a_tar() -> None:
    with pytest.raises(OperationError, match="layer is not a readable tar archive"):
        scan_layer(io.BytesIO(gzip_bytes(b"this is not a tar archive" * 40)))


def test_table_round_trips_through_json() -> None:
    t = scan_layer(io.BytesIO(BASE))
    data = dump_table(t)
    assert load_table(data) == t
    assert data.startswith(b'{"format":1,')
    with pytest.raises(ValueError, match="not a layer table of format 1"):
        load_table(b'{"format":0}')


DIGEST = "sha256:" + "ab" * 32


def test_cache_loads_once_and_persists_on_disk(tmp_path: Path) -> None:
    calls = []

    def load():
        calls.append(1)
        time.sleep(0.05)  # let the other threads arrive while this one loads
        return scan_layer(io.BytesIO(BASE))

    cache = LayerCache(tmp_path)
    threads = [threading.Thread(target=cache.get, args=(DIGEST, load)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    stored = tmp_path / "v1" / ("sha256-" + "ab" * 32 + ".json")
    assert stored.is_file()
    fresh = LayerCache(tmp_path)  # a new process: empty memory, same directory
    assert fresh.get(DIGEST, lambda: pytest.fail("should come from disk")) == scan_layer(io.BytesIO(BASE))


def test_corrupt_cache_file_is_reloaded(tmp_path: Path, caplog) -> None:
    stored = tmp_path / "v1" / ("sha256-" + "ab" * 32 + ".json")
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b'{"format":1,"entr')
    table = LayerCache(tmp_path).get(DIGEST, lambda: scan_layer(io.BytesIO(UPPER)))
    assert table.opaque == {"/app"}
    assert "ignoring unreadable layer cache file" in caplog.text
    assert load_table(stored.read_bytes()) == table  # rewritten


def test_malformed_digest_never_becomes_a_file_name(tmp_path: Path) -> None:
    LayerCache(tmp_path).get("sha256:../../evil", lambda: scan_layer(io.BytesIO(UPPER)))
    assert list(tmp_path.rglob("*")) == []


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "buildctl" / "layers"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "buildctl" / "layers"

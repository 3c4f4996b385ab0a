"""Layer tar scanning and the per-layer cache (real tar/gzip/zstd bytes, real files on disk)."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest
import zstandard

from buildctl.errors import OperationError
from buildctl.inspect.cache import FORMAT_VERSION
from buildctl.inspect.image_fs import (
    DIR,
    FILE,
    IMPLICIT_DIR,
    SYMLINK,
    LayeredView,
)
from buildctl.inspect.interpreters import resolve_command
from buildctl.inspect.layers import (
    ELF_HEAD_BYTES,
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
    assert t.entries["/usr/bin/python3.11"].head == BIG_ELF[:ELF_HEAD_BYTES]  # an ELF keeps its header
    assert t.entries["/usr/bin/python3"].kind == SYMLINK and t.entries["/usr/bin/python3"].target == "python3.11"
    # A hard link holds its file's entry (same inode), not a path to look up again later.
    assert t.entries["/usr/bin/python3-hard"] == t.entries["/usr/bin/python3.11"]
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


def test_zstd_opening_with_a_skippable_frame_and_an_empty_blob_are_layers() -> None:
    # A skippable frame (magic 0x184D2A5?, little-endian) may open a zstd stream: containerd detects it too.
    skippable = b"\x53\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"meta"
    assert scan_layer(io.BytesIO(skippable + zstandard.ZstdCompressor().compress(BASE))) == scan_layer(io.BytesIO(BASE))
    for empty in (b"", gzip_bytes(b"")):  # no tar at all: containerd applies it as a layer adding nothing
        assert scan_layer(io.BytesIO(empty)).entries == {}


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
    assert data.startswith(b'{"format":%d,' % FORMAT_VERSION)
    with pytest.raises(ValueError, match=f"not a layer table of format {FORMAT_VERSION}"):
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
    stored = tmp_path / f"v{FORMAT_VERSION}" / "tables" / ("sha256-" + "ab" * 32 + ".json")
    assert stored.is_file()
    fresh = LayerCache(tmp_path)  # a new process: empty memory, same directory
    assert fresh.has(DIGEST) and not fresh.has(DIGEST.replace("ab", "cd"))  # what the prefetch skips
    assert fresh.get(DIGEST, lambda: pytest.fail("should come from disk")) == scan_layer(io.BytesIO(BASE))
    memory_only = LayerCache(None)
    assert not memory_only.has(DIGEST)
    memory_only.get(DIGEST, lambda: scan_layer(io.BytesIO(BASE)))
    assert memory_only.has(DIGEST)


def test_corrupt_cache_file_is_reloaded(tmp_path: Path, caplog) -> None:
    stored = tmp_path / f"v{FORMAT_VERSION}" / "tables" / ("sha256-" + "ab" * 32 + ".json")
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b'{"format":%d,"entr' % FORMAT_VERSION)
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


# ---------------------------------------------------------------------------- ELF PT_INTERP, limits, eviction


def _dynamic_elf(interp: bytes, *, interp_at: int = 0x200, size: int = 0x400) -> bytes:
    """A 64-bit little-endian aarch64 executable with PT_LOAD then PT_INTERP at ``interp_at``."""
    import struct

    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 183, 1, 0x400078, 64, 0, 0, 64, 56, 2, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, size, size, 0x1000)
    pt_interp = struct.pack("<IIQQQQQQ", 3, 4, interp_at, 0, 0, len(interp) + 1, len(interp) + 1, 1)
    body = bytearray(max(size, interp_at + len(interp) + 1))
    body[: 64 + 112] = header + load + pt_interp
    body[interp_at : interp_at + len(interp)] = interp
    return bytes(body)


@pytest.mark.parametrize("interp_at", [0x200, 200_000])  # glibc's libc.so.6 has it past 64 KiB
def test_pt_interp_is_read_through_the_program_headers(interp_at: int) -> None:
    data = _dynamic_elf(b"/lib/ld-linux-aarch64.so.1", interp_at=interp_at)
    layer = make_tar([("lib/libx.so", "f", data, 0o644), ("bin/static", "f", elf_for("arm64"), 0o755)])
    t = scan_layer(io.BytesIO(layer))
    assert t.entries["/lib/libx.so"].interp == "/lib/ld-linux-aarch64.so.1"
    assert t.entries["/lib/libx.so"].head == data[:ELF_HEAD_BYTES]  # not executable, still an ELF: kept
    assert t.entries["/bin/static"].interp == ""
    assert load_table(dump_table(t)) == t


def test_limits_are_named_when_hit() -> None:
    from buildctl.inspect.layers import ScanLimits
    from buildctl.registry.bounds import LimitError

    many = make_tar([(f"f{i}", "f", b"", 0o644) for i in range(20)])
    with pytest.raises(LimitError, match=r"^layer has more than 10 (tar entries|paths)"):
        scan_layer(io.BytesIO(many), limits=ScanLimits(max_entries=10))
    with pytest.raises(LimitError, match=r"unpacks to more than 4096 bytes \(limit: decompressed bytes per layer\)"):
        scan_layer(io.BytesIO(gzip_bytes(make_tar([("big", "f", b"\0" * 100_000, 0o644)]))),
                   limits=ScanLimits(max_unpacked_bytes=4096))
    with pytest.raises(LimitError, match=r"link target of 300 characters \(limit: 200\)"):
        scan_layer(io.BytesIO(make_tar([("l", "l", "x" * 300, 0o777)])), limits=ScanLimits(max_link_target=200))


def test_disk_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    import os

    cache = LayerCache(tmp_path, max_bytes=4 * len(dump_table(scan_layer(io.BytesIO(BASE)))) + 100)
    digests = [f"sha256:{i:064x}" for i in range(6)]
    for n, digest in enumerate(digests):
        cache.get(digest, lambda: scan_layer(io.BytesIO(BASE)))
        if cache.bound.walking is not None:
            cache.bound.walking.join()  # the first write walks on a side thread (cache_usage.py)
        for path in tmp_path.rglob("*.json"):  # make the order of use unambiguous for mtime
            os.utime(path, (path.stat().st_mtime - 10, path.stat().st_mtime - 10))
    files, used = cache.usage()
    assert used <= cache.max_bytes and files == 4
    kept = {p.name for p in tmp_path.rglob("*.json")}
    assert f"sha256-{1:064x}.json" not in kept and f"sha256-{5:064x}.json" in kept


def test_waiting_for_another_loader_respects_the_own_deadline(tmp_path: Path) -> None:
    from buildctl.registry.bounds import Deadline, LimitError

    cache, release = LayerCache(tmp_path), threading.Event()
    loader = threading.Thread(target=cache.get, args=(DIGEST, lambda: (release.wait(5), scan_layer(io.BytesIO(BASE)))[1]))
    loader.start()
    time.sleep(0.05)
    start = time.monotonic()
    with pytest.raises(LimitError, match="deadline of 0.3 s exceeded"):
        cache.get(DIGEST, lambda: pytest.fail("the first loader is still at it"), deadline=Deadline(0.3))
    assert time.monotonic() - start < 1.0
    release.set()
    loader.join()
    assert cache.loads == 1


def test_the_disk_cache_walks_its_folder_only_when_its_estimate_passes_the_bound(tmp_path: Path) -> None:
    """A release writes a table per new layer and a verdict per image: walking a folder of 2,000
    files for each write cost ~30 ms a write (issue #20). Once walked, writes add to an estimate;
    only an estimate past the bound walks (and evicts) again."""
    size = len(dump_table(scan_layer(io.BytesIO(BASE))))
    cache = LayerCache(tmp_path, max_bytes=5 * size + 10)  # five tables fit (one may take a quarter)
    walks = []
    real = cache.bound.files
    cache.bound.files = lambda: walks.append(1) or real()  # type: ignore[method-assign]
    for i in range(5):
        cache.get(f"sha256:{i:064x}", lambda: scan_layer(io.BytesIO(BASE)))
        if cache.bound.walking is not None:
            cache.bound.walking.join()  # the first write walks on a side thread (no mark yet: cache_usage.py)
    assert len(walks) == 1  # the first write; the next four fit the estimate
    cache.get(f"sha256:{9:064x}", lambda: scan_layer(io.BytesIO(BASE)))
    assert len(walks) == 2 and cache.usage()[0] == 5  # past the bound: walked, and the oldest went

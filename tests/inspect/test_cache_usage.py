"""The cache folder's total without a walk in every process (real files in a temporary folder)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import json
import threading
import time
from pathlib import Path

from buildctl.inspect import cache_usage
from buildctl.inspect.cache import FORMAT_VERSION
from buildctl.inspect.layers import LayerCache, dump_table, scan_layer
from tests.helpers.elf import elf_for, make_tar

LAYER = make_tar([("./", "d", b"", 0o755), ("./bin/", "d", b"", 0o755),
                  ("./bin/app", "f", elf_for("amd64") + b"\0" * 2_000, 0o755)])
TABLE_BYTES = len(dump_table(scan_layer(io.BytesIO(LAYER))))

VERSION = f"v{FORMAT_VERSION}"  # the cache folder of this format


def _counting(cache: LayerCache, gate: threading.Event | None = None) -> list[int]:
    assert cache.bound is not None
    walks: list[int] = []
    real = cache.bound.files

    def files() -> list[cache_usage.CacheFile]:
        walks.append(1)
        if gate is not None:
            assert gate.wait(10)
        return real()

    cache.bound.files = files  # type: ignore[method-assign]
    return walks


def _write(cache: LayerCache, n: int) -> None:
    cache.get(f"sha256:{n:064x}", lambda: scan_layer(io.BytesIO(LAYER)))


def test_a_walk_leaves_a_mark_and_the_next_process_starts_from_it(tmp_path: Path) -> None:
    first = LayerCache(tmp_path, max_bytes=100 * TABLE_BYTES)
    _write(first, 1)
    assert first.bound.walking is not None
    first.bound.walking.join()
    mark = json.loads((tmp_path / cache_usage.MARK_NAME).read_text())
    assert mark["bytes"] == TABLE_BYTES and abs(mark["walked"] - time.time()) < 30

    second = LayerCache(tmp_path, max_bytes=100 * TABLE_BYTES)  # as the next run's process would
    walks = _counting(second)
    for n in range(2, 6):
        _write(second, n)
    assert walks == [] and second.bound.walking is None
    assert second.bound.estimate == 5 * TABLE_BYTES  # the mark's total and its own four writes
    assert second.usage() == (5, 5 * TABLE_BYTES)  # the mark is no cache file


def test_the_estimate_from_a_mark_still_evicts_past_the_bound(tmp_path: Path) -> None:
    bound = 4 * TABLE_BYTES + 10  # four tables fit (one may take a quarter of the bound)
    first = LayerCache(tmp_path, max_bytes=bound)
    for n in range(4):
        _write(first, n)
        if first.bound.walking is not None:
            first.bound.walking.join()
    assert json.loads((tmp_path / cache_usage.MARK_NAME).read_text())["bytes"] == 4 * TABLE_BYTES
    later = LayerCache(tmp_path, max_bytes=bound)
    walks = _counting(later)
    _write(later, 7)  # the mark counts four tables, its own writes too: a fifth passes the bound
    assert walks == [1] and later.usage() == (4, 4 * TABLE_BYTES)
    assert not (tmp_path / VERSION / "tables" / f"sha256-{0:064x}.json").exists()  # the least recently used went


def test_with_no_recent_mark_the_walk_runs_beside_the_write(tmp_path: Path) -> None:
    (tmp_path / cache_usage.MARK_NAME).write_text(
        json.dumps({"bytes": 0, "walked": time.time() - cache_usage.WALK_EVERY_SECONDS - 5}))
    cache, gate = LayerCache(tmp_path, max_bytes=100 * TABLE_BYTES), threading.Event()
    walks = _counting(cache, gate)
    started = time.monotonic()
    _write(cache, 1)
    _write(cache, 2)  # while the walk still waits: neither write waits for it
    assert time.monotonic() - started < 5 and cache.bound.walking is not None and cache.bound.walking.is_alive()
    gate.set()
    cache.bound.walking.join()
    # The second write went beside the walk, which may or may not have seen it: counted once or twice.
    assert walks == [1] and cache.bound.estimate in (2 * TABLE_BYTES, 3 * TABLE_BYTES)
    assert json.loads((tmp_path / cache_usage.MARK_NAME).read_text())["bytes"] == cache.bound.estimate


def test_a_mark_that_cannot_be_trusted_is_walked_again(tmp_path: Path) -> None:
    for text in ["not json", json.dumps([1]), json.dumps({"bytes": -1, "walked": time.time()}),
                 json.dumps({"bytes": True, "walked": time.time()}), json.dumps({"bytes": 5}),
                 json.dumps({"bytes": 5, "walked": time.time() + 3600})]:  # a clock far ahead
        (tmp_path / cache_usage.MARK_NAME).write_text(text)
        assert cache_usage.remembered(tmp_path, now=time.time()) is None, text
    (tmp_path / cache_usage.MARK_NAME).unlink()
    (tmp_path / cache_usage.MARK_NAME).mkdir()  # a folder where the mark would be
    assert cache_usage.remembered(tmp_path, now=time.time()) is None
    now = time.time()
    cache_usage.remember(tmp_path, cache_usage.Usage(5, now))  # cannot replace a folder: keeps none, no error
    (tmp_path / cache_usage.MARK_NAME).rmdir()
    cache_usage.remember(tmp_path, cache_usage.Usage(5, now))
    assert cache_usage.remembered(tmp_path, now=now) == cache_usage.Usage(5, now)


def test_walk_lists_nested_files_and_skips_the_mark_only_at_the_top(tmp_path: Path) -> None:
    (tmp_path / VERSION / "tables").mkdir(parents=True)
    (tmp_path / VERSION / "tables" / "a.json").write_bytes(b"12345")
    (tmp_path / VERSION / cache_usage.MARK_NAME).write_bytes(b"123")  # not the mark: a file like any other
    (tmp_path / cache_usage.MARK_NAME).write_bytes(b"{}")
    (tmp_path / "link").symlink_to(tmp_path / VERSION)  # a link is a file of its own, never followed
    found = {f.path.relative_to(tmp_path).as_posix(): f.size for f in cache_usage.walk(tmp_path)}
    assert set(found) == {f"{VERSION}/tables/a.json", f"{VERSION}/{cache_usage.MARK_NAME}", "link"}
    assert found[f"{VERSION}/tables/a.json"] == 5


def _fill(directory: Path, files: int, size: int) -> None:
    folder = directory / VERSION / "verdicts"
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"sha256-{n:064x}.json").write_bytes(b"x" * size)
        os.utime(folder / f"sha256-{n:064x}.json", (1_000_000 + n, 1_000_000 + n))  # older first


def test_a_process_that_ends_right_after_its_first_write_still_bounds_the_folder(tmp_path: Path) -> None:
    """The side walk is the process's last wait (atexit): a release that exits just after its
    verification still evicts and leaves the mark, or no short-lived process ever would."""
    _fill(tmp_path, 3000, 1000)  # 3 MB in a folder bounded at 1 MB
    script = (f"from pathlib import Path\nfrom buildctl.inspect.cache import LayerCache\n"
              f"c = LayerCache(Path({str(tmp_path)!r}), max_bytes=1 << 20)\n"
              f"c.store_verdict('sha256:{'e' * 64}/x', {{'v': 1}})\n")  # its first write, then exit
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=Path(__file__).parents[2])
    files, used = LayerCache(tmp_path).usage()
    assert used <= 1 << 20 and files > 900  # bounded, not emptied
    assert json.loads((tmp_path / cache_usage.MARK_NAME).read_text())["bytes"] <= 1 << 20


def test_writes_beside_an_eviction_never_start_another(tmp_path: Path) -> None:
    """One eviction at a time: four writes past the bound at once (each verification's verdict)
    leave the folder at its bound, not emptied by four walks deleting the same oldest files."""
    _fill(tmp_path, 2000, 1000)
    bound = 1_000_000  # half of it
    cache = LayerCache(tmp_path, max_bytes=bound)
    cache_usage.remember(tmp_path, cache_usage.Usage(bound, time.time()))  # as a run just left it: at the bound
    gate = threading.Event()
    walks = _counting(cache, gate)  # the first eviction's walk waits until every write was made

    def write(n: int) -> None:
        cache.store_verdict(f"sha256:{n:064x}/x", {"v": "y" * 500})

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + 10
    while sum(w.is_alive() for w in writers) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)  # three writes returned beside the one whose eviction waits
    gate.set()
    for writer in writers:
        writer.join(timeout=60)
    assert walks == [1], "another eviction started beside the one running"
    files, used = cache.usage()
    assert bound - 20_000 <= used <= bound, (files, used)

"""The verifier against a hostile registry (tests/helpers/hostile_registry.py, loopback only):
every case ends with one clear line naming image, platform and limit, exit 1, bounded in time
and memory (asserted loosely: bounded, not tuned); SIGTERM while it hangs ends it with exit 130."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.hostile_registry import HostileRegistry

ROOT = Path(__file__).resolve().parents[2]
MAX_SECONDS = 30.0
MAX_RSS_MB = 200.0
DEADLINE = "5"
# Runs one command and reports its exit code, wall time and peak RSS (its own RUSAGE_CHILDREN).
MEASURE = """
import json, resource, subprocess, sys, time
start = time.monotonic()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"code": proc.returncode, "seconds": time.monotonic() - start, "stderr": proc.stderr,
                  "stdout": proc.stdout, "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""
API = """
import sys
from pathlib import Path
from buildctl.inspect.layers import LayerCache, ScanLimits
from buildctl.inspect.verify import VerifyOptions, verify_image
from buildctl.errors import OperationError
from buildctl.registry.client import RegistryClient
with RegistryClient() as client:
    try:
        verify_image(sys.argv[1], platforms=["linux/amd64"], client=client, layers=LayerCache(Path(sys.argv[2])),
                     options=VerifyOptions(limits=ScanLimits(max_unpacked_bytes=256 << 20)))
    except OperationError as exc:
        sys.exit(f"buildctl: error: {exc.message}")
"""

CASES = {
    "endless-layer": r"deadline of 5 s exceeded",
    "lying-size": r"is larger than the 100 bytes its descriptor says",
    "lying-digest": r"arrived as sha256:[0-9a-f]{64}; the registry's copy is corrupt",
    "drip-manifest": r"deadline of 5 s exceeded",
    "huge-manifest": r"manifest of .* is larger than 4194304 bytes \(limit\)",
    "huge-config": r"its descriptor says 629145600 bytes; the limit is 8388608",
    "config-beyond-size": r"is larger than the 40 bytes its descriptor says",
    "deep-json": r"nests JSON deeper than 64 levels \(limit\)",
    "many-entries": r"has more than 250000 (tar entries|paths)",
    "long-symlink-header": r"has a \d+-byte tar header \(limit: 1048576 bytes per pax/long-name header\)",
    "long-symlink": r"has a link target of 5000 characters \(limit: 4095\)",
}


@pytest.fixture(scope="module")
def registry() -> Iterator[HostileRegistry]:
    with HostileRegistry() as reg:
        yield reg


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}


def _measure(argv: list[str], tmp_path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, *argv], capture_output=True, text=True, cwd=tmp_path,
                          env=_env(tmp_path), timeout=120)
    return json.loads(proc.stdout)


def _assert_one_clear_line(result: dict, image: str, pattern: str) -> None:
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result["stderr"], result["stderr"]
    assert lines[0].startswith(f"buildctl: error: {image}"), lines[0]
    assert " linux/amd64: " in lines[0], lines[0]  # names the platform
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_case_is_one_clear_bounded_failure(registry: HostileRegistry, case: str, tmp_path: Path) -> None:
    ref = registry.ref(case)
    deadline = "25" if case == "many-entries" else DEADLINE  # reading 250,000 tar headers takes a while
    result = _measure([sys.executable, "-m", "buildctl", "verify", ref, "--platform", "linux/amd64",
                       "--deadline", deadline], tmp_path)
    print(f"\n{case}: exit {result['code']}, {result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB")
    assert result["code"] == 1, result
    _assert_one_clear_line(result, ref.rpartition(":")[0], CASES[case])
    assert result["seconds"] < MAX_SECONDS
    assert result["rss_mb"] < MAX_RSS_MB


def test_gzip_bomb_stops_at_the_decompressed_cap(registry: HostileRegistry, tmp_path: Path) -> None:
    ref = registry.ref("gzip-bomb")  # 1 GiB of zeros in one file, ~4 MB on the wire; the cap: 256 MiB
    result = _measure([sys.executable, "-c", API, ref, str(tmp_path / "cache")], tmp_path)
    print(f"\ngzip-bomb: exit {result['code']}, {result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB")
    assert result["code"] == 1, result
    _assert_one_clear_line(result, ref.rpartition(":")[0],
                           r"unpacks to more than 268435456 bytes \(limit: decompressed bytes per layer\)")
    assert result["seconds"] < MAX_SECONDS
    assert result["rss_mb"] < MAX_RSS_MB


def test_sigterm_while_hanging_exits_130_within_2_seconds(registry: HostileRegistry, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "buildctl", "verify", registry.ref("drip-manifest"), registry.ref("endless-layer"),
            "--platform", "linux/amd64", "--deadline", "120"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(3.0)  # started, and both hanging in their reads
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        code = proc.wait(timeout=10)
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"\nSIGTERM -> exit {code} in {elapsed:.2f} s")
    assert code == 130
    assert elapsed < 2.0

"""buildctl performance benchmark (issue #7), on the real stack (scripts/stack.sh up).

    .venv/bin/python benchmarks/run.py [--reps N] [--quick] [--only NAME,...]

Measures buildctl against raw `docker buildx bake` of the same targets (cold and warm), parallel
against one-service-at-a-time builds, verification, the GitOps step at scale, and what running
RUN steps on $BUILDPLATFORM saves. Contenders alternate (A B, B A, ...); medians are compared.
Writes benchmarks/results/latest.json and benchmarks/RESULTS.md; README.md "Performance" explains.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import psutil

from benchmarks import reuse_scenario, scenarios
from benchmarks.measure import PROJECT, BenchError

HERE = Path(__file__).resolve().parent
SCENARIOS = {
    "cold": lambda ctx: scenarios.release_vs_bake(ctx, cold=True),
    "warm": lambda ctx: scenarios.release_vs_bake(ctx, cold=False),
    **{f"{temp}-{kind}": (lambda ctx, temp=temp, kind=kind: scenarios.release_vs_bake(ctx, cold=temp == "cold", kind=kind))
       for kind in ("docker-container", "remote", "multinode") for temp in ("cold", "warm")},
    **{f"reuse-{kind}": (lambda ctx, kind=kind: reuse_scenario.reuse_vs_bake(ctx, kind=kind))
       for kind in ("docker", "docker-container")},
    "cache-cold": scenarios.registry_cache_cold_start,
    "cold-fresh": scenarios.cold_fresh_agent,
    "cli": scenarios.cli_speed,
    "parallel": scenarios.parallel_vs_sequential,
    "verify": scenarios.verification,
    "gitops": scenarios.gitops_scale,
    "concurrent": scenarios.concurrent_releases,
    "emulation": scenarios.emulation,
}


def _out(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False).stdout.strip()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    info = json.loads(_out(["docker", "info", "--format", "{{json .}}"]) or "{}")
    qemu = _out(["/usr/bin/qemu-aarch64-static", "--version"]).splitlines()
    status = _out(["git", "-C", str(PROJECT), "status", "--porcelain"])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), platform.processor()),
        "kernel": platform.release(),
        "dockerd": info.get("ServerVersion"),
        "docker_cli": (info.get("ClientInfo") or {}).get("Version"),
        "image_store": dict(info.get("DriverStatus") or []).get("driver-type", info.get("Driver")),
        "buildx": _out(["docker", "buildx", "version"]).split(" ")[1:2],
        "qemu": qemu[0] if qemu else "",
        "python": platform.python_version(),
        "buildctl_commit": _out(["git", "-C", str(PROJECT), "rev-parse", "--short", "HEAD"])
        + (" + uncommitted changes" if status else ""),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    mark = {True: "met", False: "**not met**", None: ""}
    lines = [
        "# Benchmark results", "",
        f"`{results['command']}` — {m['date']}, {results['total_s']:.0f} s of measuring.", "",
        (f"Machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, kernel {m['kernel']}; "
         f"dockerd {m['dockerd']} ({m['image_store']}), docker CLI {m['docker_cli']}, "
         f"buildx {''.join(m['buildx'])}, {m['qemu']}; Python {m['python']}; buildctl {m['buildctl_commit']}. "
         f"Load average {m['load_average_at_start']} at start, {results['load_average_at_end']} at end."), "",
        "| scenario | measure | median | target | |", "| --- | --- | --- | --- | --- |",
    ]
    for r in results["rows"]:
        lines.append(f"| {r['scenario']} | {r['measure']} | {r['value']} | {r['target']} | {mark[r['met']]} |")
    phases = results["scenarios"].get("warm", {}).get("buildctl_phases_median_s")
    if phases:
        lines += ["", "Warm `buildctl build`, median seconds per phase (release record `timings`): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()) + "."]
    lines += ["", "Raw samples: `benchmarks/results/latest.json`. How to read them: README.md, \"Performance\".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="A/B pairs of the cold scenarios (default 3); "
                        "the fast ones run max(5, 2*N) times")
    parser.add_argument("--quick", action="store_true", help="one cold pair, three fast repetitions (< 3 min)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--keep-images", action="store_true",
                        help="leave the benchmark's images in the engine's image store (removing them takes ~2 s each)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    reps, fast = (1, 3) if args.quick else (max(1, args.reps), max(5, 2 * args.reps))
    chosen = [s for s in args.only.split(",") if s] or list(SCENARIOS)
    if unknown := [s for s in chosen if s not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    given = argv if argv is not None else sys.argv[1:]
    results: dict[str, Any] = {"command": " ".join(["benchmarks/run.py", *given]),
                               "machine": machine(), "reps": {"cold_pairs": reps, "fast": fast},
                               "rows": [], "scenarios": {}}
    started = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="buildctl-bench-") as tmp:
        ctx = scenarios.Context(root=Path(tmp), reps=reps, fast_reps=fast, log=log)
        for name in chosen:
            log(f"{name} ...")
            try:
                outcome = SCENARIOS[name](ctx)
            except BenchError as exc:
                log(f"{name} FAILED: {exc}")
                outcome = {"rows": [scenarios.row(name, "failed", str(exc).splitlines()[0], met=False)],
                           "data": {"error": str(exc)}}
            results["rows"] += outcome["rows"]
            results["scenarios"][name] = outcome["data"]
        results["total_s"] = round(time.monotonic() - started, 1)
        if not args.keep_images:
            _cleanup_local_images(log)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    args.markdown.write_text(table)
    print(table)
    return 0 if all(r["met"] is not False for r in results["rows"]) else 1


def _cleanup_local_images(log) -> None:
    """The docker driver also stores every pushed image in the engine; drop the benchmark's. Each
    removal waits for the daemon's garbage collection (~2 s), so it runs on in the background."""
    refs = _out(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                 "--filter", f"reference={scenarios.fixtures.REGISTRY}/{scenarios.fixtures.BENCH_REPO}/*"]).split()
    if refs:
        proc = subprocess.Popen(["docker", "image", "rm", *refs], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        log(f"removing the benchmark's {len(refs)} images from the engine's image store in the background "
            f"(pid {proc.pid}, about {2 * len(refs)} s)")


if __name__ == "__main__":
    sys.exit(main())

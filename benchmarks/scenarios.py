"""The measured scenarios of issue #7. Each returns rows for the table and raw data for the JSON."""

from __future__ import annotations

import json
import os
import re
import secrets
import resource
import statistics
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import fixtures
from benchmarks.measure import (
    CLI_ENV,
    BenchError,
    Sample,
    alternate,
    buildctl_argv,
    median,
    retried,
    run,
    summary,
    timed_call,
)
from buildctl.config.loader import load_config
from buildctl.gitops.edits import compute_change
from buildctl.inspect.dockerfile import lint
from buildctl.inspect.layers import LayerCache
from buildctl.inspect.verify import verify_images
from buildctl.model import ReleasedImage
from buildctl.pipeline.plan import buildx_argv, make_plan
from buildctl.registry.client import RegistryClient


@dataclass
class Context:
    root: Path  # scratch directory
    reps: int  # A/B pairs of the slow (cold) scenarios
    fast_reps: int  # repetitions of the fast ones
    log: Callable[[str], None]
    configs: dict[str, Path] = field(default_factory=dict)  # builder kind -> its sample project


def row(scenario: str, measure: str, value: str, target: str = "", met: bool | None = None) -> dict[str, Any]:
    return {"scenario": scenario, "measure": measure, "value": value, "target": target, "met": met}


def prune(kind: str = "docker") -> Callable[[], None]:
    """Clear the builder's BuildKit cache the same way before every cold run (also evicts the base
    image's unpacked snapshots: both contenders pay for them again), as on a fresh CI agent."""
    def clear() -> None:
        subprocess.run(["docker", "buildx", "prune", "-af", "--builder", fixtures.BUILDER_NAMES[kind]], check=True,
                       capture_output=True, timeout=600)
    return clear


def _config(ctx: Context, kind: str = "docker") -> Path:
    """The sample project on builder ``kind``; its builder is created (untimed) the first time."""
    if kind not in ctx.configs:
        ctx.configs[kind] = fixtures.sample_project(ctx.root / f"sample-{kind}", builder=kind)
        run(buildctl_argv("builder", "-c", str(ctx.configs[kind])))
    return ctx.configs[kind]


# Release tags are immutable (README "Release correctness"): every benchmark run uses tags of its own.
RUN_ID = secrets.token_hex(3)


def _buildctl_build(config: Path, tag: str, *extra: str, env: dict[str, str] | None = None,
                    reuse: bool = False) -> Sample:
    """``reuse``: let unchanged services be reused (pipeline/reuse.py); the build scenarios pass
    --rebuild, so they measure the build they always measured."""
    tag = f"{tag}-{RUN_ID}"
    record = config.parent / f"{tag}.release.json"
    flags = () if reuse else ("--rebuild",)
    sample = run(buildctl_argv("build", "-c", str(config), "--tag", tag, "--record", str(record), *flags, *extra),
                 env={**CLI_ENV, **(env or {})})
    data = json.loads(record.read_text())
    sample.detail = {"timings": data["timings"], "build_seconds": {s["name"]: s["build_seconds"] for s in data["services"]},
                     "outcomes": {s["name"]: s["outcome"].split(" ")[0] for s in data["services"]},
                     "prefetch": data.get("prefetch")}
    return sample


def _bake(config: Path, tag: str, kind: str = "docker") -> Sample:
    tag = f"{tag}-{RUN_ID}"
    bake = fixtures.bake_file(config, config.parent / f"{tag}.bake.json", tag=tag)
    sample = run(["docker", "buildx", "bake", "-f", str(bake), "--metadata-file", str(bake.with_suffix(".md.json")),
                  "--progress", "plain", "--builder", fixtures.BUILDER_NAMES[kind]])
    sample.detail = {}
    return sample


def _raw_builds(config: Path, tag: str, kind: str = "docker") -> Sample:
    """What buildctl's build step runs, without buildctl: one `docker buildx build` per service
    (the argv `buildctl plan` prints), all at once."""
    # The argv names its builder (plan prints it so): the benchmark's, through --builder's override.
    plan = make_plan(load_config(config, builder=fixtures.BUILDER_NAMES[kind], environ={}), run_id=tag)
    argvs = []
    for svc in plan.services:
        argvs.append(buildx_argv(svc.build, metadata_file=str(config.parent / f"{tag}.{svc.name}.md.json")))

    logs = [config.parent / f"{tag}.{svc.name}.log" for svc in plan.services]

    def all_at_once() -> list[int]:
        procs = []
        for argv, log in zip(argvs, logs, strict=True):
            with log.open("w") as out:  # a file, not a pipe: no build ever waits for its reader
                procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT))
        return [p.wait() for p in procs]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample, codes = timed_call(all_at_once)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sample.client_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    for code, log in zip(codes, logs, strict=True):
        if code != 0:
            raise BenchError(f"a raw `docker buildx build` exited {code}:\n{log.read_text()[-1500:]}")
    return sample


def _phases(samples: list[Sample]) -> dict[str, float]:
    keys = samples[0].detail.get("timings", {}).keys()
    return {k: round(statistics.median(s.detail["timings"][k] for s in samples), 3) for k in keys}


def release_vs_bake(ctx: Context, *, cold: bool, kind: str = "docker") -> dict[str, Any]:
    """buildctl build (verification and gate included) against `docker buildx bake` of the same
    targets on the same builder ``kind``; cold = that builder's cache pruned before every run."""
    config, temp = _config(ctx, kind), "cold" if cold else "warm"
    label = f"{temp}-{kind}"
    reps = ctx.reps if cold else ctx.fast_reps
    if not cold:  # everything cached: one untimed run of each first
        _buildctl_build(config, f"{label}-0")
        _bake(config, f"bake-{label}-0", kind)
    samples = alternate({
        "buildctl build": lambda rep: _buildctl_build(config, f"{label}-{rep + 1}"),
        "docker buildx bake": lambda rep: _bake(config, f"bake-{label}-{rep + 1}", kind),
        "3 x docker buildx build": lambda rep: _raw_builds(config, f"raw-{label}-{rep + 1}", kind),
    }, reps=reps, prepare=prune(kind) if cold else None, log=ctx.log)
    a, b, raw = (median(samples[n]) for n in ("buildctl build", "docker buildx bake", "3 x docker buildx build"))
    ratio, limit = a / b, (1.10 if cold else 1.15)
    scenario = f"{temp} release on {kind}, 3 services x 2 platforms"
    again = sum(retried(v) for v in samples.values())
    note = f" ({again} sample(s) measured again after a transient error)" if again else ""
    rows = [row(scenario, "buildctl / bake wall", f"{a:.2f} s / {b:.2f} s = {ratio:.2f}{note}", f"<= {limit:.2f}",
                ratio <= limit)]
    if not cold:
        rows.append(row(scenario, "absolute overhead", f"{a - b:.2f} s"))
    rows.append(row(scenario, "of which one buildx process per service (raw, no buildctl) / bake",
                    f"{raw:.2f} s / {b:.2f} s = {raw / b:.2f}"))
    cpu = {n: statistics.median(s.client_cpu for s in v) for n, v in samples.items()}
    rows.append(row(scenario, "client CPU: buildctl / raw builds / bake",
                    f"{cpu['buildctl build']:.2f} s / {cpu['3 x docker buildx build']:.2f} s / "
                    f"{cpu['docker buildx bake']:.2f} s"))
    return {"rows": rows, "data": {k: summary(v) for k, v in samples.items()} | {
        "ratio": round(ratio, 3), "overhead_s": round(a - b, 3), "buildctl_phases_median_s": _phases(samples["buildctl build"])}}


def registry_cache_cold_start(ctx: Context) -> dict[str, Any]:
    """A fresh docker-container builder (empty state, as on a new CI agent) reading the registry
    cache an earlier release wrote: buildctl against bake with the same cache-from, and against
    buildctl without the cache."""
    cache = f"type=registry,ref={fixtures.REGISTRY}/{fixtures.BENCH_REPO}/cache-{{service}}"
    with_cache = fixtures.sample_project(ctx.root / "sample-cache", builder="cache",
                                         build=f"{{provenance: true, sbom: false, cache_from: ['{cache}']}}")
    seed = fixtures.sample_project(ctx.root / "sample-cache-seed", builder="cache",
                                   build=f"{{provenance: true, sbom: false, cache_to: ['{cache},mode=max']}}")
    _buildctl_build(seed, "cache-seed")  # writes the cache, untimed

    def fresh_builder() -> None:
        subprocess.run(["docker", "buildx", "rm", "-f", fixtures.BUILDER_NAMES["cache"]], capture_output=True, timeout=120)
        run(buildctl_argv("builder", "-c", str(with_cache)))  # created empty, bootstrapped: untimed

    samples = alternate({
        "buildctl build, registry cache": lambda rep: _buildctl_build(with_cache, f"cachecold-{rep + 1}"),
        "docker buildx bake, registry cache": lambda rep: _bake(with_cache, f"bake-cachecold-{rep + 1}", "cache"),
        "buildctl build, no cache": lambda rep: _buildctl_build(seed, f"nocache-{rep + 1}"),
    }, reps=ctx.reps, prepare=fresh_builder, log=ctx.log)
    subprocess.run(["docker", "buildx", "rm", "-f", fixtures.BUILDER_NAMES["cache"]], capture_output=True, timeout=120)
    a, b, none = (median(samples[n]) for n in samples)
    scenario = "cold release on a fresh docker-container builder, registry cache"
    return {"rows": [row(scenario, "buildctl / bake wall", f"{a:.2f} s / {b:.2f} s = {a / b:.2f}", "<= 1.10",
                         a / b <= 1.10),
                     row(scenario, "buildctl without / with the registry cache", f"{none:.2f} s / {a:.2f} s = {none / a:.2f}x")],
            "data": {k: summary(v) for k, v in samples.items()} | {"ratio": round(a / b, 3)}}


def cold_fresh_agent(ctx: Context) -> dict[str, Any]:
    """A fresh CI agent: a private docker-container builder with its build cache pruned and
    buildctl's layer cache empty (a new XDG_CACHE_HOME) before every run. buildctl as it is (the
    base layers prefetched during the build, issue 20 item 3, their tables shared by an earlier
    run through the registry: inspect/shared_tables.py), with the prefetch but nothing shared (the
    first run against a registry), with neither (the "before"), and bake; the verification tail is
    the record's ``timings.verify``."""
    config, kind = _config(ctx, "fresh"), "fresh"
    caches = ctx.root / "fresh-caches"

    def buildctl(rep: int, prefetch: str, shared: str) -> Sample:
        cache = caches / f"{prefetch}{shared}-{rep}"  # empty: a fresh agent's
        return _buildctl_build(config, f"fresh-{prefetch}{shared}-{rep + 1}",
                               env={"XDG_CACHE_HOME": str(cache), "BUILDCTL_PREFETCH": prefetch,
                                    "BUILDCTL_SHARED_TABLES": shared})

    samples = alternate({
        "buildctl build, prefetch": lambda rep: buildctl(rep, "1", "1"),
        "docker buildx bake": lambda rep: _bake(config, f"bake-fresh-{rep + 1}", kind),
        "buildctl build, no prefetch (before)": lambda rep: buildctl(rep, "0", "0"),
        "buildctl build, prefetch, nothing shared": lambda rep: buildctl(rep, "1", "0"),
    }, reps=ctx.reps, prepare=prune(kind), log=ctx.log)
    after, bake, before, unshared = (median(samples[n]) for n in samples)
    tail = {n: statistics.median(s.detail["timings"]["verify"] for s in samples[n])
            for n in ("buildctl build, prefetch", "buildctl build, no prefetch (before)")}
    t_after, t_before = tail["buildctl build, prefetch"], tail["buildctl build, no prefetch (before)"]
    scenario = "cold fresh agent (docker-container builder pruned, empty layer cache), 3 services x 2 platforms"
    return {"rows": [
        row(scenario, "verification after the last push: before / after", f"{t_before:.2f} s / {t_after:.2f} s",
            "<= 0.5 s", t_after <= 0.5),
        row(scenario, "buildctl / bake wall", f"{after:.2f} s / {bake:.2f} s = {after / bake:.2f}", "<= 1.05",
            after / bake <= 1.05),
        row(scenario, "buildctl / bake wall, before (no prefetch)", f"{before:.2f} s / {bake:.2f} s = {before / bake:.2f}"),
        row(scenario, "buildctl / bake wall, prefetch but no shared tables (a registry's first run)",
            f"{unshared:.2f} s / {bake:.2f} s = {unshared / bake:.2f}"),
    ], "data": {k: summary(v) for k, v in samples.items()} | {
        "verify_tail_median_s": {"after": t_after, "before": t_before}, "ratio": round(after / bake, 3),
        "ratio_before": round(before / bake, 3),
        "buildctl_phases_median_s": _phases(samples["buildctl build, prefetch"]),
        "prefetch_seconds": [s.detail["prefetch"] and s.detail["prefetch"]["seconds"]
                             for s in samples["buildctl build, prefetch"]]}}


def parallel_vs_sequential(ctx: Context) -> dict[str, Any]:
    config = _config(ctx)
    samples = alternate({
        "--jobs 3": lambda rep: _buildctl_build(config, f"par-{rep + 1}", "--jobs", "3"),
        "--jobs 1": lambda rep: _buildctl_build(config, f"seq-{rep + 1}", "--jobs", "1"),
    }, reps=ctx.reps, prepare=prune(), log=ctx.log)
    par, seq = samples["--jobs 3"], samples["--jobs 1"]
    speedup = median(seq) / median(par)
    busy_seq = statistics.median(s.busy_cores for s in seq)
    cores = os.cpu_count() or 1
    ceiling = cores / busy_seq if busy_seq else float("nan")
    per_service = {name: round(statistics.median(s.detail["build_seconds"][name] for s in seq), 2)
                   for name in seq[0].detail["build_seconds"]}
    return {"rows": [row("cold release, parallel vs one service at a time", "--jobs 1 / --jobs 3 wall",
                         f"{median(seq):.2f} s / {median(par):.2f} s = {speedup:.2f}x "
                         f"(CPU ceiling {ceiling:.2f}x: {busy_seq:.2f} of {cores} cores busy sequentially)",
                         ">= 2.5x where builds allow", speedup >= 2.5)],
            "data": {k: summary(v) for k, v in samples.items()} | {
                "speedup": round(speedup, 3), "cpu_ceiling": round(ceiling, 3),
                "sequential_build_seconds_per_service": per_service}}


def verification(ctx: Context, *, count: int = 10) -> dict[str, Any]:
    refs = fixtures.tiny_images(ctx.root / "tiny", count=count)
    caches = ctx.root / "layer-caches"

    def in_process(rep: int, warm_dir: Path | None = None) -> Sample:
        directory = warm_dir or caches / f"api-{rep}"

        def go():
            with RegistryClient() as client:
                return verify_images(refs, platforms=fixtures.BOTH, client=client, layers=LayerCache(directory))
        sample, results = timed_call(go)
        if not all(v.ok for v in results) or len(results) != count:
            raise BenchError(f"verification failed: {[v.reference for v in results if not v.ok]}")
        return sample

    def cli(rep: int, cache: str) -> Sample:
        env = {**CLI_ENV, "XDG_CACHE_HOME": str(caches / cache)}
        args = ["verify", *refs, "--platform", "linux/amd64", "--platform", "linux/arm64"]
        return run(buildctl_argv(*args), cwd=ctx.root, env=env)

    in_process(0, caches / "warm")  # fills the warm cache
    cli(0, "cli-warm")
    samples = alternate({
        "API, empty layer cache": lambda rep: in_process(rep + 1),
        "CLI, empty layer cache": lambda rep: cli(rep, f"cli-{rep + 1}"),
        "API, warm layer cache": lambda rep: in_process(rep, caches / "warm"),
        "CLI, warm layer cache": lambda rep: cli(rep, "cli-warm"),
    }, reps=ctx.fast_reps, log=ctx.log)
    rows = [row(f"verify {count} images x 2 platforms", name, f"{median(s):.3f} s", "<= 1 s", median(s) <= 1.0)
            for name, s in samples.items()]
    data = {k: summary(v) for k, v in samples.items()}
    # For scale: what a fresh CI agent pays for the sample release, whose layers must be streamed.
    config = _config(ctx)
    _buildctl_build(config, "verify-sample")
    sample_refs = [f"{fixtures.REGISTRY}/{fixtures.BENCH_REPO}/{name}:verify-sample" for name in fixtures.SERVICES]

    def sample_release(rep: int) -> Sample:
        def go():
            with RegistryClient() as client:
                return verify_images(sample_refs, platforms=fixtures.BOTH, client=client,
                                     layers=LayerCache(caches / f"sample-{rep}"))
        sample, results = timed_call(go)
        if not all(v.ok for v in results):
            raise BenchError("the sample release did not verify")
        return sample
    sample = [sample_release(rep) for rep in range(ctx.reps)]
    ctx.log(f"    sample release 3 x 2, empty layer cache: {[round(s.seconds, 2) for s in sample]}")
    rows.append(row("verify the sample release, 3 images x 2 platforms", "API, empty layer cache",
                    f"{median(sample):.3f} s"))
    return {"rows": rows, "data": data | {"sample release, API, empty layer cache": summary(sample)}}


def _releases(config: Path, tag: str) -> tuple[ReleasedImage, ...]:
    cfg = load_config(config, environ={})
    return tuple(ReleasedImage(s.name, f"{cfg.registry}/{s.image}", tag, fixtures.FAKE_DIGEST) for s in cfg.services)


def _record(config: Path, tag: str) -> Path:
    cfg = load_config(config, environ={})
    images = {s.name: s.image for s in cfg.services}
    return fixtures.release_record(config.parent / f"release-{tag}.json", services=list(images),
                                   repository_of=lambda n: f"{cfg.registry}/{images[n]}", tag=tag)


def gitops_scale(ctx: Context, *, files: int = 1000, services: int = 10) -> dict[str, Any]:
    config, bare = fixtures.gitops_project(ctx.root / "gitops-1000", services=services,
                                           files_per_service=files // services)
    cfg = load_config(config, environ={})
    targets = {s.name: s.manifests for s in cfg.services}
    work = ctx.root / "gitops-1000" / "checkout"
    fixtures.git("clone", "--quiet", str(bare), str(work))

    def pure(rep: int) -> Sample:
        sample, (change, _) = timed_call(lambda: compute_change(work, _releases(config, f"p{rep}"), targets,
                                                                 pin_digest=True))
        if sum(f.before != f.after for f in change.files) != files:
            raise BenchError("the plan did not edit every manifest")
        return sample

    def cli(rep: int) -> Sample:
        return run(buildctl_argv("update-manifests", "-c", str(config), "--record", str(_record(config, f"r{rep}"))))

    samples = alternate({"pure plan (in-process)": pure, "CLI: clone, plan, commit, push": cli},
                        reps=ctx.fast_reps, log=ctx.log)
    commits = int(fixtures.git("rev-list", "--count", "main", cwd=bare))
    if commits != 1 + ctx.fast_reps:
        raise BenchError(f"expected {1 + ctx.fast_reps} commits on the remote, found {commits}")
    plan_s, cli_s = median(samples["pure plan (in-process)"]), median(samples["CLI: clone, plan, commit, push"])
    return {"rows": [row(f"update-manifests, {files} manifest files", "pure plan", f"{plan_s:.2f} s"),
                     row(f"update-manifests, {files} manifest files", "CLI end to end (one commit)",
                         f"{cli_s:.2f} s", "<= 1.0 s", cli_s <= 1.0)],
            "data": {k: summary(v) for k, v in samples.items()}}


def concurrent_releases(ctx: Context, *, count: int = 20) -> dict[str, Any]:
    config, bare = fixtures.sample_gitops_project(ctx.root / "concurrent")
    records = [_record(config, f"c{i:02d}") for i in range(count)]
    before = int(fixtures.git("rev-list", "--count", "main", cwd=bare))

    def one(record: Path) -> dict[str, Any]:
        sample = run(buildctl_argv("update-manifests", "-c", str(config), "--record", str(record), "--json"))
        return {"seconds": sample.seconds, "attempts": json.loads(sample.detail["stdout"])["attempts"]}

    def all_at_once():
        with ThreadPoolExecutor(max_workers=count) as pool:
            return list(pool.map(one, records))
    sample, results = timed_call(all_at_once)
    landed = int(fixtures.git("rev-list", "--count", "main", cwd=bare)) - before
    attempts = sorted(r["attempts"] for r in results)
    ctx.log(f"    {count} concurrent: {sample.seconds:.2f} s, {landed} commits landed, attempts {attempts}")
    ok = landed == count and sample.seconds <= 30
    return {"rows": [row(f"{count} concurrent releases into one bare remote", "all landed, wall",
                         f"{landed}/{count} landed in {sample.seconds:.1f} s (attempts: median "
                         f"{statistics.median(attempts):g}, max {max(attempts)})", "all, <= 30 s", ok)],
            "data": {"wall_s": round(sample.seconds, 3), "landed": landed, "attempts": attempts,
                     "per_process_s": sorted(round(r["seconds"], 2) for r in results),
                     "busy_cores": round(sample.busy_cores, 2)}}


_STEP = re.compile(r"^#(\d+) \[(?:[^\]]*?)\] RUN ")
_DONE = re.compile(r"^#(\d+) DONE ([\d.]+)s")


def run_step_seconds(log: str) -> float:
    """Total duration of the RUN steps in a BuildKit plain-progress log."""
    runs = {m.group(1) for line in log.splitlines() if (m := _STEP.match(line))}
    return sum(float(m.group(2)) for line in log.splitlines() if (m := _DONE.match(line)) and m.group(1) in runs)


def emulation(ctx: Context, *, service: str = "vote") -> dict[str, Any]:
    context = _config(ctx).parent / service
    variant = context / "Dockerfile.cross"
    variant.write_text(fixtures.cross_variant(context / "Dockerfile"))
    lints = {name: [f.code for f in lint(path.read_text(), path=name, platforms=fixtures.BOTH, native="linux/amd64")]
             for name, path in (("original", context / "Dockerfile"), ("cross", variant))}

    def build(dockerfile: Path) -> Sample:
        sample = run(["docker", "buildx", "build", "--platform", "linux/arm64", "--build-arg",
                      f"BASE_IMAGE={fixtures.BASE_IMAGE}", "-f", str(dockerfile), "--output", "type=cacheonly",
                      "--progress", "plain", str(context)])
        sample.detail = {"run_steps_s": run_step_seconds(sample.detail["stderr"])}
        return sample

    samples = alternate({"RUN under QEMU (original)": lambda rep: build(context / "Dockerfile"),
                         "RUN on $BUILDPLATFORM (variant)": lambda rep: build(variant)},
                        reps=ctx.reps, prepare=prune(), log=ctx.log)
    orig, cross = samples["RUN under QEMU (original)"], samples["RUN on $BUILDPLATFORM (variant)"]
    run_orig = statistics.median(s.detail["run_steps_s"] for s in orig)
    run_cross = statistics.median(s.detail["run_steps_s"] for s in cross)
    return {"rows": [row(f"{service} for linux/arm64, cold", "build wall: original / cross variant",
                         f"{median(orig):.2f} s / {median(cross):.2f} s = {median(orig) / median(cross):.2f}x"),
                     row(f"{service} for linux/arm64, cold", "its RUN step: emulated / native",
                         f"{run_orig:.2f} s / {run_cross:.2f} s = {run_orig / max(run_cross, 0.05):.1f}x")],
            "data": {k: summary(v) for k, v in samples.items()} | {
                "run_step_s": {"original": run_orig, "cross": run_cross}, "lint": lints,
                "variant_dockerfile": variant.read_text()}}


def cli_speed(ctx: Context, *, runs: int = 10) -> dict[str, Any]:
    """Start-up of the everyday verbs, whole process: `buildctl --help` and `buildctl plan`."""
    config = _config(ctx)
    samples = alternate({
        "buildctl --help": lambda rep: run(buildctl_argv("--help")),
        "buildctl plan": lambda rep: run(buildctl_argv("plan", "-c", str(config))),
    }, reps=max(runs, ctx.fast_reps), log=lambda _: None)
    help_s, plan_s = median(samples["buildctl --help"]), median(samples["buildctl plan"])
    return {"rows": [row("CLI start-up", "`buildctl --help` wall", f"{help_s * 1000:.0f} ms", "<= 150 ms", help_s <= 0.150),
                     row("CLI start-up", "`buildctl plan` wall", f"{plan_s * 1000:.0f} ms", "<= 250 ms", plan_s <= 0.250)],
            "data": {k: summary(v) for k, v in samples.items()}}

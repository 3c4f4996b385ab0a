"""Issue #20's reuse scenarios: buildctl with input-addressed reuse against `docker buildx bake` of
the same targets on the same builder — nothing changed (target <= 0.5x bake) and one of three
services changed (<= 1.0x), a different edit for each contender before each of its runs."""

from __future__ import annotations

import secrets
import statistics
from typing import Any

from benchmarks.measure import BenchError, alternate, median, summary
from benchmarks.scenarios import Context, _bake, _buildctl_build, _config, _phases, row

CHANGED = "vote"  # the service edited in "one of three changed"


def _edit(config, who: str) -> None:
    app = next(p for p in (config.parent / CHANGED).iterdir() if p.suffix == ".py" and p.is_file())
    app.write_text(app.read_text() + f"# {who} {secrets.token_hex(4)}\n")


def _checked(sample, expected: dict[str, str] | None):
    if expected is not None and sample.detail["outcomes"] != expected:
        raise BenchError(f"buildctl built/reused {sample.detail['outcomes']}, expected {expected}")
    return sample


def reuse_vs_bake(ctx: Context, *, kind: str = "docker") -> dict[str, Any]:
    config = _config(ctx, kind)
    label = f"reuse-{kind}"
    _buildctl_build(config, f"{label}-0", reuse=True)  # the released images the next runs reuse: untimed
    _bake(config, f"bake-{label}-0", kind)
    same = {n: "reused" for n in ("vote", "result", "worker")}
    one = {**same, CHANGED: "built"}
    nothing = alternate({
        "buildctl build": lambda rep: _checked(_buildctl_build(config, f"{label}-same-{rep + 1}", reuse=True), same),
        "docker buildx bake": lambda rep: _bake(config, f"bake-{label}-same-{rep + 1}", kind),
    }, reps=ctx.fast_reps, log=ctx.log)

    def buildctl_one(rep: int):
        _edit(config, "buildctl")
        return _checked(_buildctl_build(config, f"{label}-one-{rep + 1}", reuse=True), one)

    def bake_one(rep: int):
        _edit(config, "bake")
        return _bake(config, f"bake-{label}-one-{rep + 1}", kind)

    changed = alternate({"buildctl build": buildctl_one, "docker buildx bake": bake_one}, reps=ctx.fast_reps, log=ctx.log)
    rows, data = [], {}
    for case, samples, limit in (("nothing changed", nothing, 0.5), ("one of three changed", changed, 1.0)):
        a, b = median(samples["buildctl build"]), median(samples["docker buildx bake"])
        load = statistics.median(s.busy_cores for v in samples.values() for s in v)
        rows.append(row(f"{case}, {kind}, 3 services x 2 platforms", "buildctl / bake wall",
                        f"{a:.2f} s / {b:.2f} s = {a / b:.2f} (machine busy {load:.2f} cores)", f"<= {limit:.2f}",
                        a / b <= limit))
        data[case] = {k: summary(v) for k, v in samples.items()} | {
            "ratio": round(a / b, 3), "buildctl_phases_median_s": _phases(samples["buildctl build"])}
    return {"rows": rows, "data": data}

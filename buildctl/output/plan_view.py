"""`buildctl plan` for people: readable at 80 columns, every value whole, commands to copy.

One block per service (label, then the value as it is: a name, a reference, a path is never cut
into pieces), then each exact command on a line of its own after a ``#`` comment naming it, so a
line copied from the terminal is the command, nothing more. Long lines are left to the terminal
(``soft_wrap``): wrapping one here would put a line break inside a copied command.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from buildctl.output.console import line, styled
from buildctl.pipeline.plan import Plan, builder_commands, buildx_argv, render_argv

LABEL = 12  # width of the labels column ("build arg", "manifest", ...)


def print_plan(result: Plan, out: Console) -> None:
    root = result.config.root
    out.print(line("registry ", styled(result.registry, "strong"), "  tag ", styled(result.tag, "strong"),
                   "  config ", str(result.config.path)))
    for s in result.services:
        out.print()
        out.print(line(styled(s.name, "strong"), "  ", s.release_ref))
        _field(out, "platforms", " ".join(s.build.platforms))
        _field(out, "context", _relative(s.build.context, root))
        _field(out, "dockerfile", _relative(s.build.dockerfile, root))
        if s.build.target:
            _field(out, "target", s.build.target)
        for key, value in s.build.build_args.items():
            _field(out, "build arg", f"{key}={value}")
        for m in s.manifests:
            _field(out, "manifest", f"{m.path} [{_target(m)}]")
        if not s.manifests:
            _field(out, "manifest", "-")
    out.print()
    gitops = result.config.gitops
    out.print(line("gitops: ", f"{gitops.repo} branch {gitops.branch}" if gitops else "not configured"))
    builder = result.config.builder
    out.print(line(f"builder {builder.name} ({builder.driver}): ",
                   "the engine's own" if builder.driver == "docker" else "created when missing with"))
    for argv in builder_commands(result.config):
        out.print(line(render_argv(list(argv))))
    out.print(line(styled("# the buildx commands buildctl runs, one per service:", "dim")))
    for s in result.services:
        out.print(line(styled(f"# {s.name}", "dim")))
        out.print(line(render_argv(buildx_argv(s.build))))


def _field(out: Console, label: str, value: str) -> None:
    out.print(line(styled(f"  {label:<{LABEL}}", "dim"), value))


def _target(m) -> str:
    if m.helm is not None:
        return f"helm {m.helm.repository}, {m.helm.tag}" + (f", {m.helm.digest}" if m.helm.digest else "")
    return ", ".join(m.containers) or "matching image"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)

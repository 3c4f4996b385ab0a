"""The one place that prints results: a rich table for people, JSON for machines.

Commands return result objects; cli.py hands them here. Errors are printed by error_handler.run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from functools import singledispatch
from typing import Any

from rich.console import Console
from rich.table import Table

from buildctl.engine.results import (
    BinfmtAction,
    BinfmtResult,
    BuilderReport,
    LocalImage,
)
from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.inspect.dockerfile import Severity
from buildctl.inspect.results import CheckStatus, DockerfileReport, Verification
from buildctl.pipeline.plan import Plan, builder_commands, buildx_argv, render_argv
from buildctl.pipeline.record import to_data
from buildctl.pipeline.results import DoctorResult, PlanWithDiff
from buildctl.pipeline.rollback_plan import RollbackResult

MARK = {CheckStatus.PASS: "[green]pass[/]", CheckStatus.FAIL: "[red]FAIL[/]", CheckStatus.WARN: "[yellow]warn[/]",
        CheckStatus.SKIP: "[yellow]skip[/]", True: "[green]ok[/]", False: "[red]FAIL[/]"}


def console() -> Console:
    # Not a terminal (CI logs, pipes): tables get room instead of 80 squeezed columns.
    wide = None if sys.stdout.isatty() else 160
    return Console(soft_wrap=True, highlight=False, width=wide)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def render(result: Any, *, as_json: bool) -> None:
    if as_json:
        emit_json(json_of(result))
    else:
        human(result, console())


@singledispatch
def json_of(result: Any) -> Any:
    return to_data(result)


@json_of.register
def _(result: Plan) -> Any:
    return {
        "registry": result.registry,
        "tag": result.tag,
        "config": str(result.config.path),
        "builder": to_data(result.config.builder),
        "builder_commands": [list(argv) for argv in builder_commands(result.config)],
        "gitops": to_data(result.config.gitops),
        "services": [
            {
                "name": s.name,
                "repository": s.repository,
                "release_ref": s.release_ref,
                "staging_ref": s.build.staging_ref,
                "platforms": list(s.build.platforms),
                "context": str(s.build.context),
                "dockerfile": str(s.build.dockerfile),
                "build_args": dict(s.build.build_args),
                "target": s.build.target,
                "manifests": [{k: v for k, v in to_data(m).items() if k != "helm" or v is not None}
                              for m in s.manifests],
                "buildx": buildx_argv(s.build),
            }
            for s in result.services
        ],
    }


@singledispatch
def human(result: Any, out: Console) -> None:
    raise TypeError(f"no renderer for {type(result).__qualname__}")  # a bug: every result type has one


@human.register
def _(result: Plan, out: Console) -> None:
    out.print(f"registry [bold]{result.registry}[/]  tag [bold]{result.tag}[/]  config {result.config.path}")
    table = Table("service", "platforms", "image", "context / Dockerfile", "build args", "manifests")
    for column in table.columns:
        column.overflow = "fold"  # never truncate a reference with an ellipsis
    table.columns[2].no_wrap = True  # the image reference is what people copy
    root = result.config.root
    for s in result.services:
        table.add_row(
            s.name,
            "\n".join(s.build.platforms),
            s.release_ref,
            f"{_relative(s.build.context, root)}\n{_relative(s.build.dockerfile, root)}",
            "\n".join(f"{k}={v}" for k, v in s.build.build_args.items()) or "-",
            "\n".join(f"{m.path} [{_target(m)}]" for m in s.manifests) or "-",
        )
    out.print(table)
    gitops = result.config.gitops
    out.print(f"gitops: {gitops.repo} branch {gitops.branch}" if gitops else "gitops: not configured")
    builder = result.config.builder
    out.print(f"builder {builder.name} ({builder.driver}): "
              + ("the engine's own" if builder.driver == "docker" else "created when missing with"))
    for argv in builder_commands(result.config):
        out.print(f"  {render_argv(list(argv))}", markup=False)
    for s in result.services:
        out.print(f"[dim]{s.name}:[/] {render_argv(buildx_argv(s.build))}")


def _target(m) -> str:
    if m.helm is not None:
        return f"helm {m.helm.repository}, {m.helm.tag}" + (f", {m.helm.digest}" if m.helm.digest else "")
    return ", ".join(m.containers) or "matching image"


def _relative(path, root) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


@human.register
def _(result: DoctorResult, out: Console) -> None:
    for check in result.checks:
        line = f"{MARK[check.ok]}  {check.name}: {check.detail}"
        if not check.ok and check.fix:
            line += f"\n      fix: {check.fix}"
        out.print(line)


SEVERITY = {Severity.ERROR: "[red]error[/]", Severity.WARNING: "[yellow]warning[/]", Severity.INFO: "[cyan]info[/]"}


@human.register
def _(result: DockerfileReport, out: Console) -> None:
    for lint in result.services:
        if not lint.findings:
            out.print(f"{MARK[True]}  {lint.dockerfile}: no RUN step under emulation ({lint.service}, "
                      f"{', '.join(lint.platforms)} on {result.native})")
        for f in lint.findings:
            out.print(f"{SEVERITY[f.severity]}  {f.location} [dim]{f.code}[/]: ", end="")
            out.print(f.message, markup=False)  # messages quote Dockerfile text: no markup


@human.register(tuple)
def _(result: tuple, out: Console) -> None:
    for item in result:
        human(item, out)


@human.register
def _(result: BinfmtResult, out: Console) -> None:
    if result.action is BinfmtAction.NATIVE:
        out.print(f"{result.platform}: native, no emulation needed")
        return
    state = result.state
    out.print(f"{result.platform}: {result.handler} {result.action} (flags {state.flags if state else '-'}), "
              f"{result.qemu_version}; {result.probe}")


@human.register
def _(result: BuilderReport, out: Console) -> None:
    out.print(f"builder {result.name} ({result.driver}) {result.action}")
    for node in result.nodes:
        builds = [p for p, n in result.platform_nodes if n == node.name]
        out.print(f"  node {node.name} {node.endpoint or '(local engine)'} {node.status}, "
                  f"BuildKit {node.version or '?'}; platforms: {', '.join(node.pinned or node.platforms[:6])}"
                  + (f"; builds {', '.join(builds)}" if builds else ""))


@human.register
def _(result: Verification, out: Console) -> None:
    status = MARK[result.ok]
    out.print(f"{status}  {result.reference}")
    for check in result.checks:
        out.print(f"   {MARK[check.status]} {check.platform or '*':<14} {check.name:<10} {check.detail}")


@human.register
def _(result: GitOpsResult, out: Console) -> None:
    if result.diff:
        # Straight to the stream: rich would inspect every line of a 1,000-file diff for control
        # codes (0.4 s), and the diff is the repository's text, never markup.
        out.file.write(result.diff if result.diff.endswith("\n") else result.diff + "\n")
    for line in result.kept:
        out.print("[yellow]kept[/]  ", end="")
        out.print(line, markup=False)  # a newer reference, left alone (gitops.tag_order)
    if result.rendered:
        out.print(f"checked before pushing: {'; '.join(result.rendered)}", markup=False)
    if result.commit is None:
        out.print(result.message or f"{result.repo} ({result.branch}): manifests already up to date, no commit")
    else:
        state = "pushed" if result.pushed else "not pushed"
        out.print(f"{result.repo} ({result.branch}): commit {result.commit[:12]} {state} after {result.attempts} attempt(s)")


@human.register
def _(result: DriftReport, out: Console) -> None:
    if result.ok:
        out.print(f"{MARK[True]}  {result.repo} ({result.branch}): every manifest references the release")
        return
    for item in result.drift:
        out.print(f"{MARK[False]}  {item.service}: {item.path} has {item.found}")


@json_of.register
def _(result: PlanWithDiff) -> Any:
    return {**json_of(result.plan), "gitops_dry_run": to_data(result.gitops) if result.gitops else None}


@human.register
def _(result: PlanWithDiff, out: Console) -> None:
    human(result.plan, out)
    for s in result.plan.services:
        out.print(f"would tag {s.release_ref} (after verification)")
    if result.gitops is None:
        out.print("no GitOps manifests to change")
        return
    pinned = result.plan.config.gitops and result.plan.config.gitops.pin_digest
    out.print("manifest diff" + (" (the release appends @sha256:<index digest> to each tag)" if pinned else "") + ":")
    out.print(result.gitops.diff or "(no change)", markup=False)


@human.register
def _(result: LocalImage, out: Console) -> None:
    out.print(f"{result.service}: {result.tag} ({result.platform}, {result.image_id[:19]}); run it: {result.run_hint}")


@json_of.register
def _(result: RollbackResult) -> Any:
    return result.record  # the rollback's record, as `run --json` prints the release's


@human.register
def _(result: RollbackResult, out: Console) -> None:
    out.print(f"rollback to {result.tag}: gitops.tag_order ({result.tag_order}) is bypassed on purpose", markup=False)
    for t in result.targets:
        out.print(f"{MARK[True]}  ", end="")
        out.print(f"{t.service}: {t.reference} -> {t.digest} verified", markup=False)
    for line in result.bypassed:
        out.print(line, markup=False)
    if not result.bypassed and not result.already_deployed:
        out.print(f"  (no manifest holds a tag newer than {result.tag}: the rule would have written it too)", markup=False)
    if result.dry_run and not result.already_deployed:  # what publish would commit, not a commit made
        subject = result.gitops.message.partition("\n")[0]
        human(dataclasses.replace(result.gitops, message=f"dry run: would commit {subject!r}; nothing was "
                                                         "committed, pushed or recorded"), out)
    else:
        human(result.gitops, out)
    if not result.dry_run:
        out.print(f"release record: {result.record_path}", markup=False)


def release_table(outcome, out: Console, signatures=()) -> None:
    from buildctl.pipeline.build import log_tail

    table = Table("service", "platform", "check", "result", "detail")
    for s in outcome.services:
        if not s.build.ok:
            table.add_row(s.service, "*", "build", MARK[CheckStatus.FAIL], s.build.error or "build failed")
            continue
        for check in s.verification.checks if s.verification else ():
            table.add_row(s.service, check.platform or "*", check.name, MARK[check.status], check.detail)
    out.print(table)
    for s in outcome.services:
        if not s.build.ok:
            out.print(f"[red]{s.service}[/] build log ({s.build.log_file}), last lines:")
            out.print(log_tail(s.build.log_file), markup=False)
    verdict = "[green]release gate passed[/]" if outcome.passed else "[red]release gate FAILED: no tag created, nothing changed in Git[/]"
    out.print(verdict)
    if outcome.refusal:
        out.print(f"[red]not tagged:[/] {outcome.refusal}")
    for s in outcome.services:
        if s.tagged:
            note = f" ({s.tag_status})" if s.tag_status and s.tag_status != "tagged" else ""
            out.print(f"  {s.release_ref} -> {s.released_digest}{note}")
    for sig in signatures:
        out.print(f"  signed {sig.signed} (signature {sig.signature})")

"""The one place that prints results: a rich table for people, JSON for machines.

Commands return result objects; cli.py hands them here. Errors are printed by error_handler.run.
Every piece of data is plain text (``console.line``/``data``), never Rich markup; under CI every
line goes through ``ci_stream`` (error_handler.run installs it).
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from functools import singledispatch
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from buildctl.engine.results import (
    BinfmtAction,
    BinfmtResult,
    BuilderReport,
    LocalImage,
)
from buildctl.gitops.results import DriftReport, GitOpsResult
from buildctl.inspect.dockerfile import Severity
from buildctl.inspect.results import CheckStatus, DockerfileReport, Verification
from buildctl.output import console as output_console
from buildctl.output.console import data, line, styled
from buildctl.output.visible import visible_text
from buildctl.output.plan_view import print_plan
from buildctl.pipeline.plan import Plan, builder_commands, buildx_argv
from buildctl.pipeline.record import to_data
from buildctl.pipeline.results import DoctorResult, PlanWithDiff
from buildctl.pipeline.rollback_plan import RollbackResult


def warm() -> None:
    """A small table rendered nowhere, on the display's warm-up thread (output/progress.py): Rich's
    first table costs ~6 ms more than the next (its caches), not paid at the end of a release then."""
    table = Table("service", "check")
    table.add_row(data("warm"), mark(CheckStatus.PASS))
    Console(file=io.StringIO(), width=80, soft_wrap=True, markup=False, emoji=False, highlight=False).print(table)


def mark(status: CheckStatus | bool) -> Text:
    """pass / FAIL / warn / skip (ok for True), styled."""
    word, role = _MARKS[status]
    return styled(word, role)


_MARKS = {CheckStatus.PASS: ("pass", "ok"), CheckStatus.FAIL: ("FAIL", "fail"), CheckStatus.WARN: ("warn", "warn"),
          CheckStatus.SKIP: ("skip", "warn"), True: ("ok", "ok"), False: ("FAIL", "fail")}


def console() -> Console:
    return output_console.console()


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
    print_plan(result, out)


@human.register
def _(result: DoctorResult, out: Console) -> None:
    for check in result.checks:
        out.print(line(mark(check.ok), f"  {check.name}: ", check.detail))
        if not check.ok and check.fix:
            out.print(line("      fix: ", check.fix))


SEVERITY = {Severity.ERROR: ("error", "fail"), Severity.WARNING: ("warning", "warn"), Severity.INFO: ("info", "info")}


@human.register
def _(result: DockerfileReport, out: Console) -> None:
    for lint in result.services:
        if not lint.findings:
            out.print(line(mark(True), f"  {lint.dockerfile}: no RUN step under emulation ({lint.service}, "
                                       f"{', '.join(lint.platforms)} on {result.native})"))
        for f in lint.findings:
            out.print(line(styled(*SEVERITY[f.severity]), f"  {f.location} ", styled(f.code, "dim"), ": ", f.message))


@human.register(tuple)
def _(result: tuple, out: Console) -> None:
    for item in result:
        human(item, out)


@human.register
def _(result: BinfmtResult, out: Console) -> None:
    if result.action is BinfmtAction.NATIVE:
        out.print(line(f"{result.platform}: native, no emulation needed"))
        return
    state = result.state
    out.print(line(f"{result.platform}: {result.handler} {result.action} (flags {state.flags if state else '-'}), "
                   f"{result.qemu_version}; {result.probe}"))


@human.register
def _(result: BuilderReport, out: Console) -> None:
    out.print(line(f"builder {result.name} ({result.driver}) {result.action}"))
    for node in result.nodes:
        builds = [p for p, n in result.platform_nodes if n == node.name]
        out.print(line(f"  node {node.name} {node.endpoint or '(local engine)'} {node.status}, "
                       f"BuildKit {node.version or '?'}; platforms: {', '.join(node.pinned or node.platforms[:6])}"
                       + (f"; builds {', '.join(builds)}" if builds else "")))


@human.register
def _(result: Verification, out: Console) -> None:
    out.print(line(mark(result.ok), "  ", result.reference))
    for check in result.checks:
        out.print(line("   ", mark(check.status), f" {check.platform or '*':<14} {check.name:<10} ", check.detail))


@human.register
def _(result: GitOpsResult, out: Console) -> None:
    if result.diff:
        print_diff(result.diff, out)
    for kept in result.kept:
        out.print(line(styled("kept", "warn"), "  ", kept))  # a newer reference, left alone (gitops.tag_order)
    if result.rendered:
        out.print(line("checked before pushing: ", "; ".join(result.rendered)))
    if result.commit is None:
        out.print(line(result.message or f"{result.repo} ({result.branch}): manifests already up to date, no commit"))
    else:
        state = "pushed" if result.pushed else "not pushed"
        out.print(line(f"{result.repo} ({result.branch}): commit {result.commit[:12]} {state} "
                       f"after {result.attempts} attempt(s)"))


def print_diff(diff: str, out: Console) -> None:
    """Straight to the stream: rich would inspect every line of a 1,000-file diff for control codes
    (0.4 s), and the diff is the repository's text, never markup (controls made visible)."""
    out.file.write(visible_text(diff if diff.endswith("\n") else diff + "\n"))


@human.register
def _(result: DriftReport, out: Console) -> None:
    if result.ok:
        out.print(line(mark(True), f"  {result.repo} ({result.branch}): every manifest references the release"))
        return
    for item in result.drift:
        out.print(line(mark(False), f"  {item.service}: {item.path} has {item.found}"))


@json_of.register
def _(result: PlanWithDiff) -> Any:
    return {**json_of(result.plan), "gitops_dry_run": to_data(result.gitops) if result.gitops else None,
            "base_images": [to_data(b) for b in result.bases], "reuse": dict(result.reuse)}


@human.register
def _(result: PlanWithDiff, out: Console) -> None:
    human(result.plan, out)
    for b in result.bases:  # digests as the registries answered now: the build resolves them again
        out.print(line(f"base {b.service} {b.file}:{b.line} {b.reference}: ", "; ".join(f"{p} {d}" for p, d in b.digests)))
    for service, decision in result.reuse:
        out.print(line(f"{service}: {decision}"))
    for s in result.plan.services:
        out.print(line(f"would tag {s.release_ref} (after verification)"))
    if result.gitops is None:
        out.print(line("no GitOps manifests to change"))
        return
    pinned = result.plan.config.gitops and result.plan.config.gitops.pin_digest
    out.print(line("manifest diff" + (" (the release appends @sha256:<index digest> to each tag)" if pinned else "") + ":"))
    if result.gitops.diff:
        print_diff(result.gitops.diff, out)
    else:
        out.print(line("(no change)"))


@human.register
def _(result: LocalImage, out: Console) -> None:
    out.print(line(f"{result.service}: {result.tag} ({result.platform}, {result.image_id[:19]}); "
                   f"run it: {result.run_hint}"))


@json_of.register
def _(result: RollbackResult) -> Any:
    return result.record  # the rollback's record, as `run --json` prints the release's


@human.register
def _(result: RollbackResult, out: Console) -> None:
    out.print(line(f"rollback to {result.tag}: gitops.tag_order ({result.tag_order}) is bypassed on purpose"))
    for t in result.targets:
        out.print(line(mark(True), f"  {t.service}: {t.reference} -> {t.digest} verified"))
    for bypassed in result.bypassed:
        out.print(line(bypassed))
    if not result.bypassed and not result.already_deployed:
        out.print(line(f"  (no manifest holds a tag newer than {result.tag}: the rule would have written it too)"))
    if result.dry_run and not result.already_deployed:  # what publish would commit, not a commit made
        subject = result.gitops.message.partition("\n")[0]
        human(dataclasses.replace(result.gitops, message=f"dry run: would commit {subject!r}; nothing was "
                                                         "committed, pushed or recorded"), out)
    else:
        human(result.gitops, out)
    if not result.dry_run:
        out.print(line(f"release record: {result.record_path}"))


def release_table(outcome, out: Console, signatures=()) -> None:
    from buildctl.pipeline.build import log_tail

    table = Table("service", "platform", "check", "result", "detail")
    table.columns[0].no_wrap = True  # a name is never cut into pieces; the detail column takes the squeeze
    for s in outcome.services:
        if not s.build.ok:
            table.add_row(data(s.service), "*", "build", mark(CheckStatus.FAIL), data(s.build.error or "build failed"))
            continue
        for check in s.verification.checks if s.verification else ():
            table.add_row(data(s.service), data(check.platform or "*"), data(check.name), mark(check.status),
                          data(check.detail))
    out.print(table)
    for s in outcome.services:
        if not s.build.ok:
            out.print(line(styled(s.service, "fail"), f" build log ({s.build.log_file}), last lines:"))
            out.print(line(log_tail(s.build.log_file)))
        else:  # built or reused (pipeline/reuse.py), and why it was built; which bases moved
            why = f": {s.build.why_built}" if s.build.why_built and not s.build.reused_from else ""
            out.print(line(f"{s.service}: {s.build.outcome}{why}"))
            for moved in s.build.bases_moved:
                out.print(line(f"  base {moved}"))
    out.print(styled("release gate passed", "ok") if outcome.passed
              else styled("release gate FAILED: no tag created, nothing changed in Git", "fail"))
    if outcome.refusal:
        out.print(line(styled("not tagged:", "fail"), " ", outcome.refusal))
    for s in outcome.services:
        if s.tagged:
            note = f" ({s.tag_status})" if s.tag_status and s.tag_status != "tagged" else ""
            out.print(line(f"  {s.release_ref} -> {s.released_digest}{note}"))
    for sig in signatures:
        out.print(line(f"  signed {sig.signed} (signature {sig.signature})"))

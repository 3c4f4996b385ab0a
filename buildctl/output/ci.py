"""CI-native output from a release record: Azure Pipelines logging commands, GitHub Actions
workflow commands, step outputs and a job summary.

Pure functions turn the record (``record.release_record``) into text; ``emit`` is the one thin
writer. Every piece of free text (check details, build errors, paths, URLs) comes from images,
build logs or configuration, so it is treated as untrusted:

- URLs lose their userinfo (``redaction.redact_url``), although records hold no secret;
- inside a command it is escaped the way the platforms' own libraries do, so it cannot end the
  command or start a new line;
- printed as a plain log line it is flattened to one line and its command markers are escaped
  (``ci_stream``: the Azure agent acts on ``##vso[`` *anywhere* in a line, GitHub's runner on
  ``::`` at the start of a line and on ``##[``).

Our own commands are ``ci_stream.Command`` lines: ``ci_stream.write_lines`` writes them past the
neutraliser that every other line buildctl prints goes through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from buildctl.errors import OperationError
from buildctl.output.ci_escape import (
    defuse,
    escape_azure_data,
    escape_azure_property,
    escape_github_data,
    escape_github_property,
    plain,
)
from buildctl.output.ci_stream import Command, write_lines

CiKind = Literal["azure", "github"]
RECORD_ARTIFACT = "release-record"


# --------------------------------------------------------------------------- detection, escaping


def detect(environ: Mapping[str, str]) -> CiKind | None:
    """Which CI runs us: Azure Pipelines sets ``TF_BUILD=True``, GitHub Actions ``GITHUB_ACTIONS=true``."""
    if environ.get("TF_BUILD", "").lower() == "true":
        return "azure"
    if environ.get("GITHUB_ACTIONS", "").lower() == "true":
        return "github"
    return None


def group_start(kind: CiKind, title: str) -> Command:
    return Command(f"##[group]{plain(title)}" if kind == "azure" else f"::group::{plain(title)}")


def group_end(kind: CiKind) -> Command:
    return Command("##[endgroup]" if kind == "azure" else "::endgroup::")


# --------------------------------------------------------------------------- what the record says


def variable_suffix(service: str) -> str:
    """``vote-api`` -> ``VOTE_API``: Azure variables become upper-case environment variables."""
    return re.sub(r"[^A-Z0-9]", "_", service.upper())


def output_name(service: str) -> str:
    """``digest_<service>``: GitHub output names take letters, digits, ``-`` and ``_``."""
    return "digest_" + re.sub(r"[^A-Za-z0-9_-]", "_", service)


def released(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(service, index digest) of every service whose release tag exists."""
    return [(s["name"], s["index_digest"]) for s in record["services"] if s["tagged"] and s["index_digest"]]


def digest_variables(record: Mapping[str, Any], name_of: Callable[[str], str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(variable, digest) per released service, and a warning per name two services map to
    (``vote-api`` and ``vote_api`` are both ``VOTE_API``): neither is exported, never a guess."""
    by_name: dict[str, list[tuple[str, str]]] = {}
    for service, digest in released(record):
        by_name.setdefault(name_of(service), []).append((service, digest))
    exported = [(name, entries[0][1]) for name, entries in by_name.items() if len(entries) == 1]
    clashes = [f"services {', '.join(s for s, _ in entries)} all map to {name}; not set"
               for name, entries in by_name.items() if len(entries) > 1]
    return exported, clashes


def failures(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, message) per problem: failed builds, failed checks, unfinished verifications,
    and the gate verdict when it did not pass."""
    found: list[tuple[str, str]] = []
    for s in record["services"]:
        name = s["name"]
        if not s["built"]:
            log = f" (build log: {s['build_log']})" if s.get("build_log") else ""
            found.append((f"{name} build failed", f"{s.get('error') or 'no error recorded'}{log}"))
            continue
        failed = [c for c in s["checks"] if c["status"] == "fail"]
        for c in failed:
            found.append((f"{name} {c['platform'] or 'index'} {c['name']}", c["detail"] or "failed"))
        if not failed and not s["verified"]:
            found.append((f"{name} not verified", s.get("error") or "verification did not complete"))
    if record["gate"] != "passed":
        tagged = [name for name, _ in released(record)]
        what = (f"tag {record['tag']} exists only for {', '.join(tagged)}" if tagged
                else f"tag {record['tag']} was not created")
        found.append((f"release gate {record['gate']}", f"{what}; no GitOps change"))
    return found


def _state(s: Mapping[str, Any]) -> str:
    if not s["built"]:
        return "build FAILED"
    if not s["verified"]:
        return "verification FAILED"
    return f"released {s['index_digest']}" if s["tagged"] else "verified, not tagged"


def _service_lines(s: Mapping[str, Any], log_tail: str) -> list[str]:
    lines = [f"{c['status']:<4} {c['platform'] or '*'} {c['name']}: {plain(c['detail'])}" for c in s["checks"]]
    if not s["built"]:
        lines.append(f"build FAILED: {plain(s.get('error') or 'no error recorded')}")
        if s.get("build_log"):
            lines.append(f"build log: {plain(s['build_log'])}")
        lines += [f"| {plain(line)}" for line in log_tail.splitlines()]
    return lines


def service_groups(kind: CiKind, record: Mapping[str, Any], *,
                   log_tails: Mapping[str, str] | None = None) -> list[str]:
    """One collapsed group per service: its checks, and for a failed build the end of its log."""
    tails = log_tails or {}
    out: list[str] = []
    for s in record["services"]:
        out.append(group_start(kind, f"buildctl {s['name']}: {_state(s)}"))
        out += _service_lines(s, tails.get(s["name"], ""))
        out.append(group_end(kind))
    return out


# --------------------------------------------------------------------------- Azure Pipelines


def azure_command(command: str, properties: Mapping[str, str], data: str = "") -> Command:
    props = ";".join(f"{k}={escape_azure_property(v)}" for k, v in properties.items())
    return Command(f"##vso[{command}{' ' + props if props else ''}]{escape_azure_data(defuse(data))}")


def azure_set_output(name: str, value: str) -> str:
    """An output variable: later jobs read ``dependencies.JOB.outputs['STEP.NAME']``."""
    return azure_command("task.setvariable", {"variable": name, "isOutput": "true"}, value)


def azure_lines(record: Mapping[str, Any], *, record_path: str | None = None,
                log_tails: Mapping[str, str] | None = None) -> list[str]:
    out = service_groups("azure", record, log_tails=log_tails)
    out += [azure_command("task.logissue", {"type": "error"}, f"{title}: {message}")
            for title, message in failures(record)]
    variables, clashes = digest_variables(record, lambda s: f"BUILDCTL_DIGEST_{variable_suffix(s)}")
    out += [azure_command("task.logissue", {"type": "warning"}, clash) for clash in clashes]
    if released(record):  # the tag exists: a variable naming a tag nobody created would mislead a deploy job
        out.append(azure_set_output("BUILDCTL_TAG", record["tag"]))
    out += [azure_set_output(name, digest) for name, digest in variables]
    if commit := (record.get("gitops") or {}).get("commit"):
        out.append(azure_set_output("BUILDCTL_GITOPS_COMMIT", commit))
    if record_path:
        out.append(azure_command("artifact.upload", {"artifactname": RECORD_ARTIFACT}, record_path))
    return out


# --------------------------------------------------------------------------- GitHub Actions


def github_command(command: str, properties: Mapping[str, str], data: str = "") -> Command:
    props = ",".join(f"{k}={escape_github_property(v)}" for k, v in properties.items())
    return Command(f"::{command}{' ' + props if props else ''}::{escape_github_data(defuse(data))}")


def github_lines(record: Mapping[str, Any], *, log_tails: Mapping[str, str] | None = None) -> list[str]:
    out = service_groups("github", record, log_tails=log_tails)
    out += [github_command("error", {"title": plain(title)}, message) for title, message in failures(record)]
    out += [github_command("warning", {}, clash) for clash in digest_variables(record, output_name)[1]]
    return out


def github_outputs(record: Mapping[str, Any]) -> str:
    """Lines for the file named by ``$GITHUB_OUTPUT`` (read as ``steps.ID.outputs.NAME``)."""
    pairs = [("tag", record["tag"])] if released(record) else []
    pairs += digest_variables(record, output_name)[0]
    if commit := (record.get("gitops") or {}).get("commit"):
        pairs.append(("gitops_commit", commit))
    for name, value in pairs:
        # Tags, digests and commit ids are single tokens; a line break would forge another output.
        if "\n" in value or "\r" in value:
            raise OperationError(f"refusing to write a multi-line value for step output {name}")
    return "".join(f"{name}={value}\n" for name, value in pairs)


def _cell(text: Any) -> str:
    """Markdown table cell text: one line, no column break, no HTML."""
    return plain(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _checks_cell(checks: Iterable[Mapping[str, Any]]) -> str:
    parts = []
    for c in checks:
        status = "**FAIL**" if c["status"] == "fail" else c["status"]
        detail = f" ({c['detail']})" if c["status"] == "fail" and c["detail"] else ""
        parts.append(f"{c['name']}: {status}{detail}")
    return _cell(" · ".join(parts)) if parts else "—"


def _rows(s: Mapping[str, Any]) -> list[Sequence[str]]:
    name = _cell(s["name"])
    if not s["built"]:
        return [(name, "—", "—", _cell(f"build: **FAIL** ({s.get('error') or 'build failed'})"))]
    by_platform: dict[str, list[Mapping[str, Any]]] = {}
    for c in s["checks"]:
        by_platform.setdefault(c["platform"], []).append(c)
    index = f"`{s['index_digest']}`" if s["index_digest"] else "—"
    rows = [(name, "index", index, _checks_cell(by_platform.get("", ())))]
    for platform in dict.fromkeys([*s["platforms"], *(p for p in by_platform if p)]):
        digest = s["platforms"].get(platform)
        shown = f"`{digest}`" if digest else "—"
        rows.append((name, _cell(platform), shown, _checks_cell(by_platform.get(platform, ()))))
    return rows


def _gitops_line(record: Mapping[str, Any]) -> str:
    gitops = record.get("gitops")
    if not gitops:
        return "GitOps: not run" + ("" if record["gate"] == "passed" else " (the release gate did not pass)")
    where = f"`{_cell(gitops['branch'])}` of {_cell(gitops['repo'])}"
    if not gitops.get("commit"):
        return f"GitOps: nothing to change in {where}"
    pushed = "pushed to" if gitops.get("pushed") else "committed, NOT pushed, to"
    return f"GitOps: commit `{_cell(gitops['commit'])}` {pushed} {where}"


def github_summary(record: Mapping[str, Any]) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``: verdict, one row per service and platform, GitOps."""
    gate = record["gate"]
    lines = [
        f"## buildctl release `{_cell(record['tag'])}`: {'passed' if gate == 'passed' else f'**{_cell(gate)}**'}",
        "",
        f"Registry `{_cell(record['registry'])}` · gate **{_cell(gate)}**",
        "",
        "| service | platform | digest | checks |",
        "| --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(row) + " |" for s in record["services"] for row in _rows(s)]
    lines.append("")
    refs = [f"- `{_cell(s['repository'])}:{_cell(record['tag'])}@{s['index_digest']}`"
            for s in record["services"] if s["tagged"] and s["index_digest"]]
    if refs:
        lines += ["Released:", "", *refs, ""]
    lines += [_gitops_line(record), ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the writer


def emit(record: Mapping[str, Any], *, environ: Mapping[str, str], stdout: TextIO,
         record_path: str | None = None) -> None:
    """Write the CI-native form of ``record`` for the CI we run in; outside CI, nothing."""
    kind = detect(environ)
    if kind is None:
        return
    from buildctl.pipeline.build import log_tail  # reads the failed builds' log files

    tails = {s["name"]: log_tail(s.get("build_log")) for s in record["services"] if not s["built"]}
    if kind == "azure":
        # The agent resolves artifact paths against its own directory, not ours.
        path = str(Path(record_path).resolve()) if record_path else None
        lines = azure_lines(record, record_path=path, log_tails=tails)
    else:
        lines = github_lines(record, log_tails=tails)
        _append(environ.get("GITHUB_OUTPUT"), github_outputs(record))
        _append(environ.get("GITHUB_STEP_SUMMARY"), github_summary(record))
    write_lines(stdout, lines)


def _append(path: str | None, text: str) -> None:
    if not path or not text:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise OperationError(f"cannot append to {path}: {exc.strerror}",
                             hint="GITHUB_OUTPUT / GITHUB_STEP_SUMMARY must name writable files") from exc

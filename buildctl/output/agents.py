"""A native agent's result (`build --by-digest`): one row per service, or its agent file as JSON."""

from __future__ import annotations

import json
import sys

from rich.table import Table

from buildctl.output.console import console, data
from buildctl.output.render import mark
from buildctl.pipeline.agent_file import Verdict, to_json
from buildctl.pipeline.by_digest import AgentRun


def show(run: AgentRun, *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(json.loads(to_json(run.agent)), indent=2) + "\n")
        return
    out = console()
    table = Table(title=f"{run.agent.platform}, pushed by digest (no tag)", title_justify="left")
    for column in ("service", "digest", "verified"):
        table.add_column(column)
    for image in run.agent.images:
        table.add_row(data(image.service), data(image.digest or image.error or "-"),
                      mark(image.verdict is Verdict.PASSED))
    out.print(table)
    for image in run.agent.images:
        for check in image.checks:
            if str(check.status) == "fail":
                out.print(data(f"{image.service} {check.platform} {check.name}: {check.detail}"))
    out.print(data(f"agent file: {run.file} (merge: buildctl run --from {run.file} --from ...)"))
    out.print(data("took: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in run.timings.items())))

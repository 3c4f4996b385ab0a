"""`buildctl plan` as a user reads and copies it (issue #18 item 7): brackets in build args and
manifest paths survive, a path that looks like markup is no crash, and at 80 and 200 columns every
service name, reference and value is on one line, whole, and each buildx command is one line that
is exactly the argv buildctl runs (``plan --json``'s ``buildx``)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, run_cli

NAMES = ("api", "payments-reconciliation-worker-with-a-long-name", "web")
SERVICES = "".join(
    f"  {name}:\n    context: {name}\n    image: team/{name}\n"
    f"    build_args: {{PIP_EXTRAS: \"[prod]\", MARKUP: \"a[/bold]b[red]c\", EMOJI: \":warning:\"}}\n"
    f"    manifests:\n      - {{path: \"deploy/[/bold]{name}.yaml\", containers: [{name}]}}\n"
    f"      - {{path: \"deploy/values-[{name}].yaml\"}}\n"
    for name in NAMES)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in NAMES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text("registry: 127.0.0.1:5000\ntag: \"1.4.0-rc.1\"\nservices:\n" + SERVICES)
    return tmp_path


def same_run(text: str) -> str:
    """Each plan draws a fresh run id for its staging tag and run folder (where buildx writes the
    metadata file): compare plans without it."""
    return re.sub(r"(buildctl-staging-|/\.buildctl/runs/)[0-9a-f]+", r"\1RUN", text)


@pytest.mark.parametrize("columns", ["80", "200"])
def test_every_name_value_and_command_is_whole(project: Path, columns: str) -> None:
    plan = json.loads(same_run(run_cli("plan", "--json", cwd=project, timeout=60).stdout))
    result = run_cli("plan", cwd=project, env={"COLUMNS": columns}, timeout=60)
    assert result.code == 0, result.output
    lines = same_run(result.stdout).splitlines()
    assert plan["tag"] in lines[0]
    for service in plan["services"]:
        name = service["name"]
        assert f"{name}  {service['release_ref']}" in lines  # the block's head: name and reference, whole
        assert "  build arg   PIP_EXTRAS=[prod]" in lines
        assert "  build arg   MARKUP=a[/bold]b[red]c" in lines
        assert "  build arg   EMOJI=:warning:" in lines
        assert f"  manifest    deploy/[/bold]{name}.yaml [{name}]" in lines
        assert f"  manifest    deploy/values-[{name}].yaml [matching image]" in lines
        # The command buildctl runs, on a line of its own under a comment naming the service.
        command = shlex.join(service["buildx"])
        assert "--build-arg 'PIP_EXTRAS=[prod]'" in command
        assert lines[lines.index(command) - 1] == f"# {name}"
        assert shlex.split(command) == service["buildx"]  # pasted into a shell: exactly that argv


def test_the_output_is_the_same_at_any_width(project: Path) -> None:
    narrow = run_cli("plan", cwd=project, env={"COLUMNS": "80"}, timeout=60).stdout
    wide = run_cli("plan", cwd=project, env={"COLUMNS": "200"}, timeout=60).stdout
    assert same_run(narrow) == same_run(wide)


def test_the_sample_fits_80_columns_but_its_commands() -> None:
    """The repository's own services.yaml: every line fits 80 columns, except the commands (whole,
    for pasting) and the lines naming this checkout's absolute path."""
    plan = json.loads(same_run(run_cli("plan", "--json", timeout=60).stdout))
    lines = same_run(run_cli("plan", env={"COLUMNS": "80"}, timeout=60).stdout).splitlines()
    commands = {shlex.join(s["buildx"]) for s in plan["services"]}
    assert commands <= set(lines)
    assert [line for line in lines if len(line) > 80 and line not in commands and str(PROJECT) not in line] == []

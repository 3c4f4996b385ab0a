"""ci/: the pipeline templates parse, and every buildctl command in them exists.

Verbs and flags are checked against the real CLI's --help, so a renamed flag breaks this test
instead of a user's pipeline.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.cli import PROJECT, run_cli

AZURE = PROJECT / "ci" / "azure-pipelines.yml"
AZURE_NIGHTLY = PROJECT / "ci" / "azure-pipelines-nightly.yml"
GITHUB = PROJECT / "ci" / "github-actions.yml"
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell", "run", "inlineScript")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # GitHub/Azure template expressions hold spaces
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def steps(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in the document that is a step (has a script or a task/action)."""
    if isinstance(node, dict):
        if any(k in node for k in (*SCRIPT_KEYS, "task", "uses")):
            yield node
        for value in node.values():
            yield from steps(value)
    elif isinstance(node, list):
        for item in node:
            yield from steps(item)


def buildctl_commands(script: str) -> list[list[str]]:
    """The argv of every buildctl invocation in a shell script (continuation lines joined)."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(_EXPRESSION.sub("EXPR", line), comments=True)
        if "buildctl" in words:
            commands.append(words[words.index("buildctl"):])
    return commands


def template_commands(path: Path) -> list[list[str]]:
    return [argv for step in steps(load(path)) for key in SCRIPT_KEYS
            if isinstance(step.get(key), str) for argv in buildctl_commands(step[key])]


@functools.cache
def cli_help(*verb: str) -> str:
    result = run_cli(*verb, "--help")
    assert result.code == 0, result.output
    return result.stdout


def real_verbs() -> set[str]:
    # "  verb   summary" rows; wrapped summaries are indented deeper and do not match.
    return set(re.findall(r"^  ([a-z][\w-]*)(?:\s|$)", cli_help().split("Commands:", 1)[1], re.MULTILINE))


def problems(argv: list[str]) -> list[str]:
    """What in ``argv`` the real CLI does not know: the verb, then each option."""
    verb = argv[1] if len(argv) > 1 else ""
    if verb not in real_verbs():
        return [f"unknown verb {verb!r}"]
    options = set(_OPTION.findall(cli_help(verb).split("Options:", 1)[1]))
    return [f"{verb}: unknown option {word}" for word in argv[2:]
            if word.startswith("-") and word.split("=", 1)[0] not in options]


@pytest.mark.parametrize("path", [AZURE, AZURE_NIGHTLY, GITHUB], ids=lambda p: p.name)
def test_every_buildctl_command_exists(path: Path) -> None:
    commands = template_commands(path)
    assert [argv[1] for argv in commands] == ["binfmt", "run"]
    assert [p for argv in commands for p in problems(argv)] == []


def test_the_checker_rejects_what_the_cli_lacks() -> None:
    assert problems(["buildctl", "run", "--pull", "--weekly", "--tag=1"]) == ["run: unknown option --weekly"]
    assert problems(["buildctl", "release", "--tag", "1"]) == ["unknown verb 'release'"]
    assert buildctl_commands('echo hi\nbuildctl run \\\n  --tag ${{ github.run_number }} --record "$X/r.json"  # note\n') == \
        [["buildctl", "run", "--tag", "EXPR", "--record", "$X/r.json"]]


def _run_step(path: Path) -> dict[str, Any]:
    (step,) = [s for s in steps(load(path)) for key in SCRIPT_KEYS
               if any(argv[1] == "run" for argv in buildctl_commands(str(s.get(key, ""))))]
    return step


def _script(step: dict[str, Any]) -> str:
    return next(step[k] for k in SCRIPT_KEYS if k in step)


@pytest.mark.parametrize("path,extra", [(AZURE, []), (AZURE_NIGHTLY, ["--pull", "--no-cache"])], ids=["ci", "nightly"])
def test_azure_release_step(path: Path, extra: list[str]) -> None:
    step = _run_step(path)
    (argv,) = buildctl_commands(_script(step))
    assert argv == ["buildctl", "run", *extra, "--tag", "$(Build.BuildId)", "--registry", "$(containerRegistry)",
                    "--record", "$(Build.ArtifactStagingDirectory)/release.json"]
    assert step["name"] == "buildctl"  # output variables are read as buildctl.BUILDCTL_*
    assert step["env"]["BUILDCTL_REGISTRY_PASSWORD"] == "$(acrPassword)"  # secrets must be mapped explicitly
    assert step["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"
    (publish,) = [s for s in steps(load(path)) if s.get("task") == "PublishPipelineArtifact@1"]
    assert publish["condition"] == "always()"
    assert publish["inputs"]["targetPath"] == argv[-1]
    assert not any(s.get("task", "").startswith("Docker@") for s in steps(load(path)))


def test_azure_nightly_schedule() -> None:
    doc = load(AZURE_NIGHTLY)
    (schedule,) = doc["schedules"]
    assert schedule["always"] is True and schedule["branches"]["include"] == ["main"]
    assert len(schedule["cron"].split()) == 5
    assert doc["trigger"] == "none" and doc["pr"] == "none"


def test_github_workflow() -> None:
    doc = load(GITHUB)
    assert set(doc[True]) == {"push", "workflow_dispatch"}  # YAML 1.1 reads the key `on` as True
    step = _run_step(GITHUB)
    (argv,) = buildctl_commands(_script(step))
    assert argv == ["buildctl", "run", "--tag", "EXPR", "--registry", "$ACR_REGISTRY", "--record", "$RUNNER_TEMP/release.json"]
    assert "${{ github.run_number }}" in _script(step)
    assert step["id"] == "buildctl"
    assert step["env"]["BUILDCTL_REGISTRY_USERNAME"] == "${{ secrets.ACR_USERNAME }}"
    assert step["env"]["BUILDCTL_REGISTRY_PASSWORD"] == "${{ secrets.ACR_PASSWORD }}"
    assert step["env"]["BUILDCTL_GIT_TOKEN"] == "${{ secrets.GITOPS_TOKEN }}"
    # No secret or variable pasted into a script, where it would land in the shell's text.
    assert not [s for s in steps(doc) if re.search(r"\$\{\{\s*(secrets|vars)\.", str(s.get("run", "")))]
    (upload,) = [s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ runner.temp }}/release.json"

"""Reading the pipeline templates in ci/ as their CI systems do: steps, scripts, buildctl commands."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.cli import PROJECT

AZURE = PROJECT / "ci" / "azure-pipelines.yml"
AZURE_NIGHTLY = PROJECT / "ci" / "azure-pipelines-nightly.yml"
GITHUB = PROJECT / "ci" / "github-actions.yml"
TEMPLATES = (AZURE, AZURE_NIGHTLY, GITHUB)
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell", "run", "inlineScript")
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")  # GitHub/Azure template expressions hold spaces
# `uses: owner/repo@<40 hex> # vX.Y.Z`: the commit that runs, and the release it is.
PINNED_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # (v(\d+)(?:\.\d+){0,2})\s*$")
# The commented-out service-principal alternative: `# BUILDCTL_REGISTRY_...: ...` and `# - group: ...`.
_ALTERNATIVE = re.compile(r"^(\s*)# ((?:BUILDCTL_REGISTRY_\w+|- group): .*)$", re.MULTILINE)


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


def script_of(step: dict[str, Any]) -> str:
    return next((step[k] for k in SCRIPT_KEYS if isinstance(step.get(k), str)), "")


def buildctl_commands(script: str) -> list[list[str]]:
    """The argv of every buildctl invocation in a shell script (continuation lines joined)."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(_EXPRESSION.sub("EXPR", line), comments=True)
        if "buildctl" in words:
            commands.append(words[words.index("buildctl"):])
    return commands


def template_commands(path: Path) -> list[list[str]]:
    return [argv for step in steps(load(path)) for argv in buildctl_commands(script_of(step))]


def step_running(doc: dict[str, Any], verb: str) -> dict[str, Any]:
    """The one step whose script runs `buildctl VERB`."""
    (step,) = [s for s in steps(doc) if any(argv[1:2] == [verb] for argv in buildctl_commands(script_of(s)))]
    return step


def step_index(doc: dict[str, Any], step: dict[str, Any]) -> int:
    return next(i for i, s in enumerate(steps(doc)) if s is step)


def install_step(doc: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in steps(doc) if "pip install" in script_of(s)]
    return step


def with_alternative(text: str) -> str:
    """The template with its commented service-principal lines switched on."""
    return _ALTERNATIVE.sub(r"\1\2", text)


def as_version_comments_say(text: str) -> str:
    """`owner/repo@SHA # v7.0.1` -> `owner/repo@v7`: actionlint knows the inputs and runtime of
    released majors, not of commits, so it checks a SHA-pinned step only in this form."""
    return "\n".join(_major_ref(line) for line in text.splitlines()) + "\n"


def _major_ref(line: str) -> str:
    match = PINNED_USES.match(line)
    if not match:
        return line
    return line[:match.start(2) - 1] + f"@v{match[4]}"

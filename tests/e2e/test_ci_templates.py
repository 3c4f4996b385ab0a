"""ci/: the pipeline templates parse, and every buildctl command in them exists.

Verbs and flags are checked against the real CLI's --help, so a renamed flag breaks this test
instead of a user's pipeline.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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


# --- Real linters (issue #15): actionlint for GitHub, the vendors' JSON Schemas for both ------

def _tool(name: str) -> str:
    """A linter from the `test` extra (pyproject.toml), next to this Python or on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def _actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("actionlint"), "-no-color", "-shellcheck=", str(path)],
                          check=False, capture_output=True, text=True, timeout=120)


def test_github_workflow_passes_actionlint() -> None:
    result = _actionlint(GITHUB)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_actionlint_flags_the_node20_majors(tmp_path: Path) -> None:
    # The check that motivated the bump: the previous majors run on the deprecated node20 runtime.
    previous = {"checkout": "v4", "setup-python": "v5", "upload-artifact": "v4"}
    old = tmp_path / "old.yml"
    old.write_text(re.sub(r"actions/(checkout|setup-python|upload-artifact)@v\d+",
                          lambda m: f"actions/{m[1]}@{previous[m[1]]}", GITHUB.read_text()))
    result = _actionlint(old)
    assert result.returncode == 1
    flagged = re.findall(r'runtime "node20" is deprecated.*update the version of action "([^"]+)"', result.stdout)
    assert sorted(flagged) == [f"actions/{name}@{v}" for name, v in sorted(previous.items())]


def _check_jsonschema(schema: str, *paths: Path, regex: str = "default") -> subprocess.CompletedProcess:
    return subprocess.run([_tool("check-jsonschema"), "--regex-variant", regex, "--builtin-schema", schema,
                           *map(str, paths)], check=False, capture_output=True, text=True, timeout=120)


def test_github_workflow_passes_its_schema() -> None:
    result = _check_jsonschema("vendor.github-workflows", GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr


def _as_azure_reads_it(node: Any) -> Any:
    """Azure's YAML parser keeps every scalar a string, and Microsoft's schema types them so
    (`persistCredentials: false` "is not of type 'string'" otherwise: check-jsonschema#238,
    microsoft/azure-pipelines-vscode#446)."""
    if isinstance(node, dict):
        return {key: _as_azure_reads_it(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_as_azure_reads_it(value) for value in node]
    return str(node).lower() if isinstance(node, bool) else (node if node is None else str(node))


def _azure_schema_check(tmp_path: Path, *docs: tuple[str, Any]) -> subprocess.CompletedProcess:
    paths = []
    for name, doc in docs:
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(_as_azure_reads_it(doc)))
    # The schema's patterns use escapes that ECMAScript's unicode mode rejects ("Invalid character escape").
    return _check_jsonschema("vendor.azure-pipelines", *paths, regex="nonunicode")


def test_azure_pipelines_pass_their_schema(tmp_path: Path) -> None:
    result = _azure_schema_check(tmp_path, ("ci", load(AZURE)), ("nightly", load(AZURE_NIGHTLY)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_azure_schema_check_can_fail(tmp_path: Path) -> None:
    doc = load(AZURE)
    doc["stages"][0]["jobs"][0]["steps"][0]["displayNme"] = "typo"
    assert _azure_schema_check(tmp_path, ("broken", doc)).returncode == 1


# --- Required variables: fail loudly instead of releasing against the local defaults ----------

def _guard(path: Path) -> dict[str, Any]:
    first = next(steps(load(path)))
    assert first.get("displayName", first.get("name", "")).startswith("Check the required variables")
    return first


def _run_guard(step: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", _script(step)], env={"PATH": os.environ["PATH"], **env},
                          check=False, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("path", [AZURE, AZURE_NIGHTLY], ids=lambda p: p.name)
def test_azure_fails_first_when_a_variable_is_empty(path: Path) -> None:
    guard = _guard(path)
    # Every pipeline variable the release step uses (not Azure's own Build.*/System.*) is checked.
    used = set(re.findall(r"\$\((\w+)\)", json.dumps(_run_step(path))))
    assert used - {"Build", "System"} <= set(guard["env"]), used
    assert guard["env"] == {name: f"$({name})" for name in guard["env"]}
    good = {name: "value" for name in guard["env"]}
    assert _run_guard(guard, good).returncode == 0
    # Defined but empty, and not defined at all (Azure then leaves the macro as it is).
    for broken in ({**good, "gitopsRepo": ""}, {**good, "gitopsRepo": "$(gitopsRepo)"}):
        result = _run_guard(guard, broken)
        assert result.returncode == 1
        assert result.stdout.splitlines() == [("##vso[task.logissue type=error]pipeline variable gitopsRepo is empty "
                                               "or not defined: set it in the pipeline or in the variable group buildctl-release")]
    result = _run_guard(guard, {**good, "acrPassword": "", "containerRegistry": ""})
    assert result.returncode == 1 and len(result.stdout.splitlines()) == 2


def test_github_fails_first_when_a_setting_is_empty() -> None:
    guard = _guard(GITHUB)
    used = set(re.findall(r"\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}", json.dumps(_run_step(GITHUB))))
    assert used <= set(guard["env"]), used
    good = {name: "value" for name in guard["env"]}
    assert _run_guard(guard, good).returncode == 0
    result = _run_guard(guard, {**good, "BASE_IMAGE": ""})
    assert result.returncode == 1
    assert result.stdout.strip() == ("::error title=Missing setting::BASE_IMAGE is empty or not set "
                                     "(Settings > Secrets and variables > Actions)")

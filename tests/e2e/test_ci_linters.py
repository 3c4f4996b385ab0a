"""ci/: the real linters (issue #15): actionlint for GitHub, the vendors' JSON Schemas for both,
on the templates as shipped and with their commented service-principal alternative switched on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.ci_templates import AZURE, AZURE_NIGHTLY, GITHUB, as_version_comments_say, load, with_alternative


def _tool(name: str) -> str:
    """A linter from the `test` extra (pyproject.toml), next to this Python or on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: pip install -e '.[test]'"
    return found


def _actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("actionlint"), "-no-color", "-shellcheck=", str(path)],
                          check=False, capture_output=True, text=True, timeout=120)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize("variant", ["shipped", "service-principal"])
def test_github_workflow_passes_actionlint(tmp_path: Path, variant: str) -> None:
    text = GITHUB.read_text() if variant == "shipped" else with_alternative(GITHUB.read_text())
    # As shipped (SHA pins), and as the version comments say: only then does actionlint know each
    # action's inputs and runtime.
    for path in (_write(tmp_path, "as-is.yml", text), _write(tmp_path, "majors.yml", as_version_comments_say(text))):
        result = _actionlint(path)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), path.name


def test_actionlint_checks_the_inputs_of_pinned_actions(tmp_path: Path) -> None:
    typo = GITHUB.read_text().replace("client-id:", "clientid:")
    result = _actionlint(_write(tmp_path, "typo.yml", as_version_comments_say(typo)))
    assert result.returncode == 1
    assert re.search(r'input "clientid" is not defined in action "azure/login@v\d+"', result.stdout), result.stdout


def test_actionlint_flags_the_node20_majors(tmp_path: Path) -> None:
    # The check that motivated the bump: the previous majors run on the deprecated node20 runtime.
    previous = {"checkout": "v4", "setup-python": "v5", "upload-artifact": "v4"}
    old = re.sub(r"actions/(checkout|setup-python|upload-artifact)@v\d+",
                 lambda m: f"actions/{m[1]}@{previous[m[1]]}", as_version_comments_say(GITHUB.read_text()))
    result = _actionlint(_write(tmp_path, "old.yml", old))
    assert result.returncode == 1
    flagged = re.findall(r'runtime "node20" is deprecated.*update the version of action "([^"]+)"', result.stdout)
    assert sorted(flagged) == [f"actions/{name}@{v}" for name, v in sorted(previous.items())]


def _check_jsonschema(schema: str, *paths: Path, regex: str = "default") -> subprocess.CompletedProcess:
    return subprocess.run([_tool("check-jsonschema"), "--regex-variant", regex, "--builtin-schema", schema,
                           *map(str, paths)], check=False, capture_output=True, text=True, timeout=120)


def test_github_workflow_passes_its_schema(tmp_path: Path) -> None:
    result = _check_jsonschema("vendor.github-workflows", GITHUB,
                               _write(tmp_path, "alternative.yml", with_alternative(GITHUB.read_text())))
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
    paths = [_write(tmp_path, f"{name}.json", json.dumps(_as_azure_reads_it(doc))) for name, doc in docs]
    # The schema's patterns use escapes that ECMAScript's unicode mode rejects ("Invalid character escape").
    return _check_jsonschema("vendor.azure-pipelines", *paths, regex="nonunicode")


def test_azure_pipelines_pass_their_schema(tmp_path: Path) -> None:
    result = _azure_schema_check(tmp_path, ("ci", load(AZURE)), ("nightly", load(AZURE_NIGHTLY)),
                                 ("ci-sp", yaml.safe_load(with_alternative(AZURE.read_text()))),
                                 ("nightly-sp", yaml.safe_load(with_alternative(AZURE_NIGHTLY.read_text()))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_azure_schema_check_can_fail(tmp_path: Path) -> None:
    doc = load(AZURE)
    doc["stages"][0]["jobs"][0]["steps"][0]["displayNme"] = "typo"
    assert _azure_schema_check(tmp_path, ("broken", doc)).returncode == 1
    # The login task's inputs are checked too (the schema knows AzureCLI@2).
    doc = load(AZURE)
    (login,) = [s for s in doc["stages"][0]["jobs"][0]["steps"] if s.get("task") == "AzureCLI@2"]
    del login["inputs"]["scriptType"]
    assert _azure_schema_check(tmp_path, ("no-script-type", doc)).returncode == 1

"""ci/: the pipeline templates parse, install a pinned buildctl, log in without a stored secret,
and every buildctl command in them exists. Linters (actionlint, the vendors' schemas): test_ci_linters.py.

Verbs and flags are checked against the real CLI's --help, so a renamed flag breaks this test
instead of a user's pipeline.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import buildctl
from tests.helpers.ci_templates import (
    AZURE, AZURE_NIGHTLY, GITHUB, PINNED_USES, TEMPLATES, buildctl_commands, install_step, load, script_of,
    step_index, step_running, steps, template_commands, with_alternative,
)
from tests.helpers.cli import run_cli

_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _ids(path: Path) -> str:
    return path.name


@functools.cache
def cli_help(*verb: str) -> str:
    result = run_cli(*verb, "--help")
    assert result.code == 0, result.output
    return result.stdout


def real_verbs() -> set[str]:
    # "  verb   summary" rows; wrapped summaries are indented deeper and do not match.
    return set(re.findall(r"^  ([a-z][\w-]*)(?:\s|$)", cli_help().split("Commands:", 1)[1], re.MULTILINE))


def _options(help_text: str) -> set[str]:
    return set(_OPTION.findall(help_text.split("Options:", 1)[1].split("Commands:", 1)[0]))


def problems(argv: list[str]) -> list[str]:
    """What in ``argv`` the real CLI does not know: a top-level option, or the verb, then each option."""
    verb = argv[1] if len(argv) > 1 else ""
    if verb.startswith("-"):
        return [] if verb in _options(cli_help()) and len(argv) == 2 else [f"unknown top-level use {argv[1:]}"]
    if verb not in real_verbs():
        return [f"unknown verb {verb!r}"]
    options = _options(cli_help(verb))
    return [f"{verb}: unknown option {word}" for word in argv[2:]
            if word.startswith("-") and word.split("=", 1)[0] not in options]


@pytest.mark.parametrize("path", TEMPLATES, ids=_ids)
def test_every_buildctl_command_exists(path: Path) -> None:
    commands = template_commands(path)
    assert [argv[1] for argv in commands] == ["--version", "binfmt", "run"]
    assert [p for argv in commands for p in problems(argv)] == []


def test_the_checker_rejects_what_the_cli_lacks() -> None:
    assert problems(["buildctl", "run", "--pull", "--weekly", "--tag=1"]) == ["run: unknown option --weekly"]
    assert problems(["buildctl", "release", "--tag", "1"]) == ["unknown verb 'release'"]
    assert problems(["buildctl", "--versions"]) == ["unknown top-level use ['--versions']"]
    assert buildctl_commands('echo hi\nbuildctl run \\\n  --tag ${{ github.run_number }} --record "$X/r.json"  # note\n') == \
        [["buildctl", "run", "--tag", "EXPR", "--record", "$X/r.json"]]


# --- Install: a pinned release, never the repository the pipeline runs in --------------------

INSTALL = 'set -euo pipefail\npython -m pip install --disable-pip-version-check "buildctl==${BUILDCTL_VERSION}"\nbuildctl --version\n'


def install_problems(text: str, *, github: bool) -> list[str]:
    """What in a template's text breaks "install the pinned buildctl before using it, and nothing else
    (never the checkout: `pip install .` there installs the user's application)"."""
    doc = yaml.safe_load(text)
    version = doc["env"]["BUILDCTL_VERSION"] if github else \
        next(v["value"] for v in doc["variables"] if v.get("name") == "buildctlVersion")
    found = [] if version == buildctl.__version__ else [f"pins {version}, this is {buildctl.__version__}"]
    installs = [s for s in steps(doc) if re.search(r"pip\S* install", script_of(s))]
    if [script_of(s) for s in installs] != [INSTALL]:
        return [*found, f"install steps: {[script_of(s) for s in installs]}"]
    if not github and installs[0].get("env") != {"BUILDCTL_VERSION": "$(buildctlVersion)"}:
        found.append("the Azure variable does not reach the script through env")
    if step_index(doc, installs[0]) > step_index(doc, step_running(doc, "binfmt")):
        found.append("installed after its first use")
    return found


@pytest.mark.parametrize("path", TEMPLATES, ids=_ids)
def test_templates_install_this_release_pinned(path: Path) -> None:
    # The pin is held to buildctl/__init__.py, the one place the version is written.
    assert install_problems(path.read_text(), github=path == GITHUB) == []


def test_the_install_check_sees_a_checkout_install() -> None:
    text = GITHUB.read_text()
    assert install_problems(text.replace('"buildctl==${BUILDCTL_VERSION}"', "."), github=True) == \
        ["install steps: ['set -euo pipefail\\npython -m pip install --disable-pip-version-check .\\nbuildctl --version\\n']"]
    assert install_problems(text + "      - run: pip install .\n", github=True)[0].startswith("install steps: ")
    assert install_problems(text.replace(f'"{buildctl.__version__}"', '"0.0.1"', 1), github=True) == \
        [f"pins 0.0.1, this is {buildctl.__version__}"]
    azure = AZURE.read_text()
    assert install_problems(azure.replace("BUILDCTL_VERSION: $(buildctlVersion)", "BUILDCTL_VERSION: 0.1.0"),
                            github=False) == ["the Azure variable does not reach the script through env"]


# --- Registry login: workload identity / OIDC by default, a service principal as the alternative ---

def _fake_az(tmp_path: Path) -> Path:
    """`az` is not installed here and needs Azure: a stand-in that records its argv, so the
    template's own shell (the registry name derived from the login server) is what runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$AZ_ARGS"\n')
    (bin_dir / "az").chmod(0o755)
    return bin_dir


def _run_login(tmp_path: Path, script: str, env: dict[str, str]) -> list[str]:
    args = tmp_path / "az-args"
    subprocess.run(["bash", "-c", script], check=True, timeout=30, env={
        "PATH": f"{_fake_az(tmp_path)}:{os.environ['PATH']}", "AZ_ARGS": str(args), **env})
    return args.read_text().splitlines()


@pytest.mark.parametrize("path", [AZURE, AZURE_NIGHTLY], ids=_ids)
def test_azure_logs_in_with_workload_identity(path: Path, tmp_path: Path) -> None:
    doc = load(path)
    (login,) = [s for s in steps(doc) if s.get("task") == "AzureCLI@2"]
    assert login["inputs"]["azureSubscription"] == "${{ variables.acrServiceConnection }}"  # compile time: Azure authorises it
    assert "acrServiceConnection" in {v.get("name") for v in doc["variables"]}
    assert login["inputs"]["scriptType"] == "bash" and login["inputs"]["scriptLocation"] == "inlineScript"
    assert login["env"] == {"REGISTRY": "$(containerRegistry)"}
    assert _run_login(tmp_path, login["inputs"]["inlineScript"], {"REGISTRY": "myacr.azurecr.io"}) == \
        ["acr", "login", "--name", "myacr"]
    assert step_index(doc, install_step(doc)) < step_index(doc, login) < step_index(doc, step_running(doc, "run"))
    # No stored registry secret by default: buildctl reads what `az acr login` left in the Docker config.
    assert not [k for s in steps(doc) for k in s.get("env", {}) if k.startswith("BUILDCTL_REGISTRY_")]
    assert "acrPassword" not in json.dumps(doc)


@pytest.mark.parametrize("path", [AZURE, AZURE_NIGHTLY], ids=_ids)
def test_azure_service_principal_alternative(path: Path) -> None:
    doc = yaml.safe_load(with_alternative(path.read_text()))
    assert {"group": "buildctl-release"} in doc["variables"]
    env = step_running(doc, "run")["env"]
    assert (env["BUILDCTL_REGISTRY_USERNAME"], env["BUILDCTL_REGISTRY_PASSWORD"]) == ("$(acrUsername)", "$(acrPassword)")


def test_github_logs_in_with_oidc(tmp_path: Path) -> None:
    doc = load(GITHUB)
    job = doc["jobs"]["release"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    (azure_login,) = [s for s in steps(doc) if str(s.get("uses", "")).startswith("azure/login@")]
    assert azure_login["with"] == {name: f"${{{{ vars.AZURE_{name.replace('-', '_').upper()} }}}}"
                                   for name in ("client-id", "tenant-id", "subscription-id")}
    (acr_login,) = [s for s in steps(doc) if "az acr login" in script_of(s)]
    assert _run_login(tmp_path, script_of(acr_login), {"ACR_REGISTRY": "myacr.azurecr.io"}) == ["acr", "login", "--name", "myacr"]
    assert step_index(doc, install_step(doc)) < step_index(doc, azure_login) < step_index(doc, acr_login) \
        < step_index(doc, step_running(doc, "run"))
    assert not [k for s in steps(doc) for k in s.get("env", {}) if k.startswith("BUILDCTL_REGISTRY_")]
    alternative = step_running(yaml.safe_load(with_alternative(GITHUB.read_text())), "run")["env"]
    assert alternative["BUILDCTL_REGISTRY_PASSWORD"] == "${{ secrets.ACR_PASSWORD }}"


def test_every_action_is_pinned_by_commit() -> None:
    lines = [line for line in GITHUB.read_text().splitlines() if re.match(r"^\s*(-\s+)?uses:", line)]
    assert len(lines) == len([s for s in steps(load(GITHUB)) if "uses" in s]) >= 4
    assert [line for line in lines if not PINNED_USES.match(line)] == []
    assert not PINNED_USES.match("      - uses: actions/checkout@v7 # v7.0.1")
    assert not PINNED_USES.match("      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1")


# --- The release step --------------------------------------------------------------------------

@pytest.mark.parametrize("path,extra", [(AZURE, ["--tag", "$(Build.BuildId)"]), (AZURE_NIGHTLY, ["--nightly"])],
                         ids=["ci", "nightly"])
def test_azure_release_step(path: Path, extra: list[str]) -> None:
    doc = load(path)
    step = step_running(doc, "run")
    (argv,) = buildctl_commands(script_of(step))
    assert argv == ["buildctl", "run", *extra, "--registry", "$(containerRegistry)",
                    "--record", "$(Build.ArtifactStagingDirectory)/release.json"]
    assert step["name"] == "buildctl"  # output variables are read as buildctl.BUILDCTL_*
    assert step["env"]["SYSTEM_ACCESSTOKEN"] == "$(System.AccessToken)"  # secrets must be mapped explicitly
    (publish,) = [s for s in steps(doc) if s.get("task") == "PublishPipelineArtifact@1"]
    assert publish["condition"] == "always()"
    assert publish["inputs"]["targetPath"] == argv[-1]
    assert not any(s.get("task", "").startswith("Docker@") for s in steps(doc))


def test_azure_nightly_schedule() -> None:
    doc = load(AZURE_NIGHTLY)
    (schedule,) = doc["schedules"]
    assert schedule["always"] is True and schedule["branches"]["include"] == ["main"]
    assert len(schedule["cron"].split()) == 5
    assert doc["trigger"] == "none" and doc["pr"] == "none"


def test_github_workflow() -> None:
    doc = load(GITHUB)
    assert set(doc[True]) == {"push", "workflow_dispatch"}  # YAML 1.1 reads the key `on` as True
    step = step_running(doc, "run")
    (argv,) = buildctl_commands(script_of(step))
    assert argv == ["buildctl", "run", "--tag", "EXPR", "--registry", "$ACR_REGISTRY", "--record", "$RUNNER_TEMP/release.json"]
    assert "${{ github.run_number }}" in script_of(step)
    assert step["id"] == "buildctl"
    assert step["env"]["BUILDCTL_GIT_TOKEN"] == "${{ secrets.GITOPS_TOKEN }}"
    # No secret or variable pasted into a script, where it would land in the shell's text.
    assert not [s for s in steps(doc) if re.search(r"\$\{\{\s*(secrets|vars)\.", str(s.get("run", "")))]
    (upload,) = [s for s in steps(doc) if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ runner.temp }}/release.json"


# --- Required variables: fail loudly instead of releasing against the local defaults ----------

def _guard(doc: dict[str, Any]) -> dict[str, Any]:
    first = next(steps(doc))
    assert first.get("displayName", first.get("name", "")).startswith("Check the required variables")
    return first


def _run_guard(step: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script_of(step)], env={"PATH": os.environ["PATH"], **env},
                          check=False, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("path", [AZURE, AZURE_NIGHTLY], ids=_ids)
def test_azure_fails_first_when_a_variable_is_empty(path: Path) -> None:
    doc = load(path)
    guard = _guard(doc)
    # Every pipeline variable a later step uses (not Azure's own Build.*/System.*) is checked.
    used = set(re.findall(r"\$\((\w+)\)", json.dumps([s for s in steps(doc) if s is not guard])))
    assert used - {"Build", "System"} == set(guard["env"]), used
    assert guard["env"] == {name: f"$({name})" for name in guard["env"]}
    good = {name: "value" for name in guard["env"]}
    assert _run_guard(guard, good).returncode == 0
    # Defined but empty, and not defined at all (Azure then leaves the macro as it is).
    for broken in ({**good, "gitopsRepo": ""}, {**good, "gitopsRepo": "$(gitopsRepo)"}):
        result = _run_guard(guard, broken)
        assert result.returncode == 1
        assert result.stdout.splitlines() == [("##vso[task.logissue type=error]pipeline variable gitopsRepo is empty "
                                               "or not defined: set it under variables: in the pipeline (or in a variable group)")]
    result = _run_guard(guard, {**good, "buildctlVersion": "", "containerRegistry": ""})
    assert result.returncode == 1 and len(result.stdout.splitlines()) == 2


def test_github_fails_first_when_a_setting_is_empty() -> None:
    doc = load(GITHUB)
    guard = _guard(doc)
    used = set(re.findall(r"\$\{\{\s*(?:vars|secrets)\.(\w+)\s*\}\}", json.dumps([s for s in steps(doc) if s is not guard])))
    assert used == set(guard["env"]), used
    good = {name: "value" for name in guard["env"]}
    assert _run_guard(guard, good).returncode == 0
    result = _run_guard(guard, {**good, "BASE_IMAGE": ""})
    assert result.returncode == 1
    assert result.stdout.strip() == ("::error title=Missing setting::BASE_IMAGE is empty or not set "
                                     "(Settings > Secrets and variables > Actions)")

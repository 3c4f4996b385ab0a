"""ci/*-native.yml (README "Native agents"): a job per platform on a runner of that architecture,
each `buildctl build --platform P --by-digest FILE`, the files passed as artifacts to one merge job
that runs `buildctl run --from ...`; pinned, installed and linted like the other templates."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import buildctl
from tests.e2e.test_ci_linters import _actionlint, _azure_schema_check, _check_jsonschema, _write
from tests.e2e.test_ci_templates import INSTALL, problems
from tests.helpers.ci_templates import (
    PINNED_USES, as_version_comments_say, buildctl_commands, load, script_of, steps, template_commands,
)
from tests.helpers.cli import PROJECT

AZURE_NATIVE = PROJECT / "ci" / "azure-pipelines-native.yml"
GITHUB_NATIVE = PROJECT / "ci" / "github-actions-native.yml"


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv) if word == name]


def test_every_buildctl_command_of_the_native_templates_exists() -> None:
    agents = {GITHUB_NATIVE: 1, AZURE_NATIVE: 2}  # a matrix job; two jobs written out
    for path in (AZURE_NATIVE, GITHUB_NATIVE):
        commands = template_commands(path)
        assert [argv[1] for argv in commands] == ["--version", "build"] * agents[path] + ["--version", "run"], path.name
        assert [p for argv in commands for p in problems(argv)] == [], path.name


def test_native_templates_install_this_release_pinned_in_every_job() -> None:
    github, azure = load(GITHUB_NATIVE), load(AZURE_NATIVE)
    assert github["env"]["BUILDCTL_VERSION"] == buildctl.__version__
    assert next(v["value"] for v in azure["variables"] if v.get("name") == "buildctlVersion") == buildctl.__version__
    for doc, jobs in ((github, 2), (azure, 3)):
        installs = [script_of(s) for s in steps(doc) if "pip install" in script_of(s)]
        assert installs == [INSTALL] * jobs  # every build job and the merge job, never the checkout


def test_github_native_builds_each_platform_on_its_own_runner_and_merges_once() -> None:
    doc = load(GITHUB_NATIVE)
    build, release = doc["jobs"]["build"], doc["jobs"]["release"]
    matrix = build["strategy"]["matrix"]["include"]
    assert {(m["runner"], m["platform"]) for m in matrix} == {("ubuntu-24.04", "linux/amd64"),
                                                               ("ubuntu-24.04-arm", "linux/arm64")}
    assert build["runs-on"] == "${{ matrix.runner }}"
    (agent,) = [argv for s in build["steps"] for argv in buildctl_commands(script_of(s)) if argv[1] == "build"]
    assert _option(agent, "--platform") == ["$PLATFORM"]
    assert _option(agent, "--by-digest") == ["$RUNNER_TEMP/agent/$ARCH.json"]
    (upload,) = [s for s in build["steps"] if "upload-artifact" in str(s.get("uses"))]
    assert upload["with"]["name"] == "agent-${{ matrix.arch }}"
    assert upload["with"]["if-no-files-found"] == "error"
    assert release["needs"] == "build"
    (download,) = [s for s in release["steps"] if "download-artifact" in str(s.get("uses"))]
    assert download["with"]["pattern"] == "agent-*" and download["with"]["merge-multiple"] is True
    (merge,) = [argv for s in release["steps"] for argv in buildctl_commands(script_of(s)) if argv[1] == "run"]
    assert _option(merge, "--from") == [f"$RUNNER_TEMP/agents/{m['arch']}.json" for m in matrix]
    assert _option(merge, "--tag") == _option(agent, "--tag") == ["$TAG"]


def test_github_native_pins_every_action_and_passes_actionlint_and_its_schema(tmp_path: Path) -> None:
    text = GITHUB_NATIVE.read_text()
    lines = [line for line in text.splitlines() if line.strip().startswith(("uses:", "- uses:"))]
    assert len(lines) >= 8 and [line for line in lines if not PINNED_USES.match(line)] == []
    for path in (GITHUB_NATIVE, _write(tmp_path, "majors.yml", as_version_comments_say(text))):
        result = _actionlint(path)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), path.name
    result = _check_jsonschema("vendor.github-workflows", GITHUB_NATIVE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_azure_native_runs_a_job_per_platform_on_its_pool_and_merges_the_artifacts(tmp_path: Path) -> None:
    doc = load(AZURE_NATIVE)
    build_stage, release_stage = doc["stages"]
    jobs = build_stage["jobs"]
    assert [(j["job"], j["pool"], j["variables"]) for j in jobs] == [
        ("Build_amd64", {"name": "linux-amd64"}, {"platform": "linux/amd64", "arch": "amd64"}),
        ("Build_arm64", {"name": "linux-arm64"}, {"platform": "linux/arm64", "arch": "arm64"})]
    first, second = ([{k: v for k, v in s.items() if k != "displayName"} for s in j["steps"]] for j in jobs)
    assert first == second  # the same steps: only the job's name, pool and variables differ
    (agent,) = [argv for s in jobs[0]["steps"] for argv in buildctl_commands(script_of(s)) if argv[1] == "build"]
    assert _option(agent, "--platform") == ["$PLATFORM"]
    assert _option(agent, "--by-digest") == ["$(Build.ArtifactStagingDirectory)/agent/$ARCH.json"]
    (platform_step,) = [s for s in jobs[0]["steps"] if agent in buildctl_commands(script_of(s))]
    assert (platform_step["env"]["PLATFORM"], platform_step["env"]["ARCH"]) == ("$(platform)", "$(arch)")
    (publish,) = [s for s in jobs[0]["steps"] if s.get("task") == "PublishPipelineArtifact@1"]
    assert publish["inputs"]["artifact"] == "agent-$(arch)"
    assert publish["inputs"]["targetPath"] == "$(Build.ArtifactStagingDirectory)/agent/$(arch).json"
    assert release_stage["dependsOn"] == "Build"
    (release,) = release_stage["jobs"]
    (download,) = [s for s in release["steps"] if s.get("task") == "DownloadPipelineArtifact@2"]
    assert download["inputs"]["itemPattern"] == "agent-*/*.json"
    (merge,) = [argv for s in release["steps"] for argv in buildctl_commands(script_of(s)) if argv[1] == "run"]
    # DownloadPipelineArtifact puts each artifact in a folder of its name.
    assert _option(merge, "--from") == [f"$(Pipeline.Workspace)/agents/agent-{j['variables']['arch']}/"
                                        f"{j['variables']['arch']}.json" for j in jobs]
    assert _option(merge, "--tag") == _option(agent, "--tag") == ["$(Build.BuildId)"]
    result = _azure_schema_check(tmp_path, ("native", doc))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Docker@" not in json.dumps(doc) and "binfmt" not in json.dumps(doc)  # native: no emulation set up

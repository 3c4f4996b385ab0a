"""plan: pure resolution of services.yaml into what a release will do."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.pipeline.plan import STAGING_PREFIX, buildx_argv, make_plan
from tests.helpers.cli import BASE_IMAGE, PROJECT, REGISTRY, named, run_cli


def test_plan_of_the_sample_project() -> None:
    cfg = load_config(PROJECT / "services.yaml", environ={"BUILDCTL_TAG": "42"})
    plan = make_plan(cfg, run_id="abcd1234")
    assert [s.name for s in plan.services] == ["vote", "result", "worker"]
    vote = named(plan.services, "vote")
    assert vote.release_ref == "127.0.0.1:5000/voting-app/vote:42"
    assert vote.build.staging_ref == f"127.0.0.1:5000/voting-app/vote:{STAGING_PREFIX}abcd1234"
    assert vote.build.platforms == ("linux/amd64", "linux/arm64")
    assert vote.build.dockerfile == PROJECT / "vote" / "Dockerfile"
    assert [m.containers for m in vote.manifests] == [("vote",)]


def test_buildx_argv_carries_every_option(project_dir) -> None:
    (project_dir / "services.yaml").write_text(
        "build: {provenance: false, sbom: true, no_cache: true, pull: true, cache_from: ['type=registry,ref=r/c'],"
        " cache_to: ['type=registry,ref=r/c,mode=max'], labels: {org.opencontainers.image.revision: abc}}\n"
        "services:\n  api: {context: api, image: team/api, target: prod, build_args: {A: '1'},"
        " secrets: [{id: npmrc, env: NPM_RC}], platforms: [linux/arm64]}\n"
    )
    plan = make_plan(load_config(project_dir / "services.yaml", environ={}), run_id="r1")
    argv = buildx_argv(named(plan.services, "api").build, metadata_file="m.json")
    assert argv[:9] == ["docker", "buildx", "build", "--builder", "default", "--progress", "plain",
                        "--platform", "linux/arm64"]
    for expected in (["--build-arg", "A=1"], ["--secret", "id=npmrc,env=NPM_RC"], ["--target", "prod"],
                     ["--label", "org.opencontainers.image.revision=abc"], ["--cache-from", "type=registry,ref=r/c"],
                     ["--cache-to", "type=registry,ref=r/c,mode=max"], ["--tag", "127.0.0.1:5000/team/api:buildctl-staging-r1"],
                     ["--metadata-file", "m.json"]):
        i = argv.index(expected[0], argv.index(expected[0]))
        assert argv[i:i + 2] == expected
    assert {"--provenance=false", "--sbom=true", "--pull", "--no-cache", "--push"} <= set(argv)


def test_cli_plan_json_is_pure_and_complete(tmp_path) -> None:
    # A registry that does not exist proves plan touches no registry.
    result = run_cli("plan", "--json", "--tag", "7", "--registry", "nowhere.invalid:5000", "vote", "worker")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tag"] == "7" and data["registry"] == "nowhere.invalid:5000"
    assert [s["name"] for s in data["services"]] == ["vote", "worker"]
    assert data["services"][0]["release_ref"] == "nowhere.invalid:5000/voting-app/vote:7"
    assert data["services"][0]["platforms"] == ["linux/amd64", "linux/arm64"]
    assert data["services"][0]["manifests"] == [{"path": "k8s-specifications/vote-deployment.yaml", "containers": ["vote"]}]


def test_cli_plan_table() -> None:
    result = run_cli("plan", env={"BUILDCTL_TAG": "9"})
    assert result.code == 0, result.stderr
    for service in ("vote", "result", "worker"):
        assert f"127.0.0.1:5000/voting-app/{service}:9" in result.stdout
    assert result.stdout.count("linux/arm64") >= 3 and result.stdout.count("linux/amd64") >= 3


def test_plan_json_carries_the_builder(tmp_path) -> None:
    result = run_cli("plan", "--json", "--builder", "ci-arm", "vote")
    assert result.code == 0, result.stderr
    argv = json.loads(result.stdout)["services"][0]["buildx"]
    assert argv[3:5] == ["--builder", "ci-arm"]
    metadata = argv[argv.index("--metadata-file") + 1]
    run_id = json.loads(result.stdout)["services"][0]["staging_ref"].rsplit(STAGING_PREFIX, 1)[1]
    assert metadata == str(PROJECT / ".buildctl" / "runs" / run_id / "vote.metadata.json")
    assert not (PROJECT / ".buildctl" / "runs" / run_id).exists()  # plan names the folder, makes nothing


def test_plan_shows_the_commands_of_build_flags() -> None:
    """`plan --pull --no-cache` shows what `build --pull --no-cache` runs (as `run --dry-run` does)."""
    plain = json.loads(run_cli("plan", "--json", "vote").stdout)["services"][0]["buildx"]
    flagged = run_cli("plan", "--json", "--pull", "--no-cache", "vote")
    assert flagged.code == 0, flagged.stderr
    argv = json.loads(flagged.stdout)["services"][0]["buildx"]
    assert "--pull" not in plain and "--no-cache" not in plain
    assert {"--pull", "--no-cache"} <= set(argv)


SHIM = """#!{python}
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
os.execv({docker!r}, [{docker!r}, *sys.argv[1:]])
"""


@pytest.mark.engine
def test_the_printed_buildx_command_is_the_one_that_runs(tmp_path: Path) -> None:
    """`plan` prints argv; `build` runs argv: through a docker on PATH that records every call and
    execs the real one, the build's `docker buildx build` is plan's, word for word (its run id
    aside: each run has its own), builder included. The build also writes --metadata-file."""
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.py /app/app.py\n")
    (project / "app" / "app.py").write_text("print('exact')\n")
    (project / "services.yaml").write_text(
        "builder: {name: default}\nservices:\n  app:\n    context: app\n    image: buildctl-e2e/exact\n"
        "    build_args: {PIP_EXTRAS: '[prod]'}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "docker"
    shim.write_text(SHIM.format(python=sys.executable, docker=shutil.which("docker")))
    shim.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ARGV_LOG": str(tmp_path / "argv.jsonl")}

    planned = run_cli("plan", "--json", "--tag", "exact-1", "-f", "services.yaml", "--pull", cwd=project, env=env)
    assert planned.code == 0, planned.stderr
    printed = json.loads(planned.stdout)["services"][0]
    built = run_cli("build", "--tag", "exact-1", "-f", "services.yaml", "--pull", "--progress", "plain", "--retag",
                    "--record", "release.json", "--metadata-file", "metadata.json", cwd=project, env=env)
    assert built.code == 0, built.output
    calls = [json.loads(line) for line in (tmp_path / "argv.jsonl").read_text().splitlines()]
    ran = [argv for argv in calls if argv[:2] == ["buildx", "build"] and "--metadata-file" in argv]
    # One build, or one more for each transient failure it said it retried (engine/retry.py): a
    # loaded CI machine sees a push fail now and then. Every attempt runs plan's command.
    assert len(ran) == 1 + built.output.count("failed, retrying in"), (calls, built.output)
    record = json.loads((project / "release.json").read_text())
    planned_id = printed["staging_ref"].rsplit(STAGING_PREFIX, 1)[1]
    expected = [word.replace(planned_id, record["run_id"]) for word in printed["buildx"]]
    assert all(["docker", *attempt] == expected for attempt in ran)
    assert ran[0][ran[0].index("--builder") + 1] == "default" and "--pull" in ran[0]
    assert "PIP_EXTRAS=[prod]" in ran[0]

    metadata = json.loads((project / "metadata.json").read_text())
    service = record["services"][0]
    assert metadata["app"]["containerimage.digest"] == service["index_digest"]
    assert metadata["app"]["image.name"] == f"{REGISTRY}/buildctl-e2e/exact:exact-1"

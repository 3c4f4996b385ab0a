"""plan: pure resolution of services.yaml into what a release will do."""

from __future__ import annotations

import json

from buildctl.config.loader import load_config
from buildctl.pipeline.plan import STAGING_PREFIX, buildx_argv, make_plan
from tests.helpers.cli import PROJECT, named, run_cli


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

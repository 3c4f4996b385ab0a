"""Native agents: do the agent files make one release (pipeline/belongs.py), and the agent file's
own bounded, checked reading (pipeline/agent_file.py). Pure: no engine, no registry."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import OperationError, UsageError
from buildctl.inspect.results import Check, CheckStatus
from buildctl.model import Config
from buildctl.pipeline import agent_file, belongs
from buildctl.pipeline.agent_file import AgentFile, AgentImage, Verdict, entry_digest
from buildctl.pipeline.plan import buildx_argv, make_plan

COMMIT = "a" * 40
SERVICES = ("registry: 127.0.0.1:5000\ntag: '1.0'\nplatforms: [linux/amd64, linux/arm64]\nservices:\n"
            "  api: {context: api, image: team/api}\n  web: {context: web, image: team/web}\n")


def digest(char: str) -> str:
    return "sha256:" + char * 64


@pytest.fixture
def config(project_dir: Path) -> Config:
    (project_dir / "services.yaml").write_text(SERVICES)
    return load_config(project_dir / "services.yaml", environ={})


def agent(config: Config, platform: str, *, mark: str, **changes) -> AgentFile:
    images = tuple(
        AgentImage(s.name, f"{config.registry}/{s.image}", digest(mark), digest({"a": "d", "b": "e"}.get(mark, "f")),
                   entry_digest(config, s), None, Verdict.PASSED,
                   (Check(platform, "elf", CheckStatus.PASS, "ok"), Check(platform, "smoke", CheckStatus.PASS, "ran")))
        for s in config.services)
    return replace(AgentFile(platform, config.registry, config.tag, COMMIT, images), **changes)


def pair(config: Config) -> list[belongs.Source]:
    return [belongs.Source("amd.json", agent(config, "linux/amd64", mark="a")),
            belongs.Source("arm.json", agent(config, "linux/arm64", mark="b"))]


def refusal(config: Config, sources: list[belongs.Source], *, commit: str = COMMIT) -> str:
    with pytest.raises(UsageError) as caught:
        belongs.check(config, sources, commit=commit)
    return caught.value.message


def test_two_agents_of_one_release_give_each_service_both_platforms_in_order(config: Config) -> None:
    sources = list(reversed(pair(config)))  # the order of --from does not matter
    parts = belongs.check(config, sources, commit=COMMIT)
    assert [p.service for p in parts] == ["api", "web"]
    for service in parts:
        assert [(p.platform, p.source, p.image.digest) for p in service.parts] == [
            ("linux/amd64", "amd.json", digest("a")), ("linux/arm64", "arm.json", digest("b"))]


def test_a_missing_platform_is_refused_naming_it_and_the_files(config: Config) -> None:
    message = refusal(config, pair(config)[:1])
    assert message.startswith("api: no agent file has linux/arm64 (given: amd.json)")


def test_a_platform_built_twice_is_refused_naming_both_files(config: Config) -> None:
    sources = [*pair(config), belongs.Source("arm-again.json", agent(config, "linux/arm64", mark="c"))]
    assert refusal(config, sources).startswith("arm-again.json: linux/arm64 is built twice (also in arm.json)")


def test_an_agent_on_another_commit_is_refused_naming_its_file(config: Config) -> None:
    amd, arm = pair(config)
    arm = belongs.Source(arm.name, replace(arm.agent, commit="b" * 40))
    assert refusal(config, [amd, arm]) == f"arm.json: built from commit {'b' * 12}, this checkout is at {'a' * 12}"
    # Outside git the first file's commit is the one the others must match.
    assert refusal(config, [amd, arm], commit="") == f"arm.json: built from commit {'b' * 12}, amd.json is at {'a' * 12}"


def test_an_agent_with_uncommitted_changes_is_refused(config: Config) -> None:
    amd, arm = pair(config)
    dirty = belongs.Source(arm.name, replace(arm.agent, dirty=True))
    assert refusal(config, [amd, dirty]) == (f"arm.json: built from a checkout with uncommitted changes to tracked "
                                             f"files (at {'a' * 12}): not the build of that commit")


def test_another_registry_and_another_tag_are_refused(config: Config) -> None:
    amd, arm = pair(config)
    other = belongs.Source(arm.name, replace(arm.agent, registry="myacr.azurecr.io"))
    assert refusal(config, [amd, other]) == ("arm.json: built for registry myacr.azurecr.io, this release pushes to "
                                             "127.0.0.1:5000")
    retagged = belongs.Source(amd.name, replace(amd.agent, tag="0.9"))
    assert refusal(config, [retagged, arm]) == "amd.json: built for release tag 0.9, this release is 1.0"


def test_a_platform_services_yaml_does_not_configure_is_refused(config: Config) -> None:
    sources = [*pair(config), belongs.Source("riscv.json", agent(config, "linux/riscv64", mark="c"))]
    assert refusal(config, sources) == ("riscv.json: platform linux/riscv64 is not configured in services.yaml "
                                        "(platforms: linux/amd64, linux/arm64)")


def test_a_changed_services_yaml_entry_is_refused(config: Config, project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text(SERVICES.replace("image: team/web}", "image: team/web, "
                                                                "build_args: {MODE: fast}}"))
    changed = load_config(project_dir / "services.yaml", environ={})
    amd, arm = pair(config)  # built with the old entry
    assert refusal(changed, [amd, arm]).startswith("amd.json: service web's services.yaml entry differs from this "
                                                   "checkout's (sha256:")
    # the other service's entry is the same: its digest did not move
    assert entry_digest(changed, changed.services[0]) == entry_digest(config, config.services[0])


def test_entry_digest_does_not_depend_on_where_the_clone_is(config: Config, tmp_path: Path) -> None:
    clone = tmp_path / "elsewhere"
    for name in ("api", "web"):
        (clone / name).mkdir(parents=True)
        (clone / name / "Dockerfile").write_text("FROM scratch\n")
    (clone / "services.yaml").write_text(SERVICES)
    moved = load_config(clone / "services.yaml", environ={})
    assert [entry_digest(moved, s) for s in moved.services] == [entry_digest(config, s) for s in config.services]


def test_an_image_pushed_elsewhere_or_missing_is_refused(config: Config) -> None:
    amd, arm = pair(config)
    moved = replace(arm.agent, images=(replace(arm.agent.images[0], repository="127.0.0.1:5000/other/api"),
                                       arm.agent.images[1]))
    assert refusal(config, [amd, belongs.Source("arm.json", moved)]) == (
        "arm.json: service api was pushed to 127.0.0.1:5000/other/api, services.yaml says 127.0.0.1:5000/team/api")
    short = replace(arm.agent, images=arm.agent.images[:1])
    assert refusal(config, [amd, belongs.Source("arm.json", short)]) == (
        "arm.json: has no image of service web for linux/arm64")


def test_different_input_digests_are_refused(config: Config) -> None:
    amd, arm = pair(config)
    amd = belongs.Source(amd.name, replace(amd.agent, images=tuple(replace(i, input_digest=digest("1"))
                                                                   for i in amd.agent.images)))
    arm = belongs.Source(arm.name, replace(arm.agent, images=tuple(replace(i, input_digest=digest("2"))
                                                                   for i in arm.agent.images)))
    assert refusal(config, [amd, arm]).startswith("arm.json: service api has input digest sha256:222222222222")


def test_an_image_that_failed_on_its_agent_stops_the_merge(config: Config) -> None:
    amd, arm = pair(config)
    failed = replace(arm.agent.images[1], verdict=Verdict.FAILED,
                     checks=(Check("linux/arm64", "elf-files", CheckStatus.FAIL, "1 of 9 ELF files are x86-64"),))
    arm = belongs.Source(arm.name, replace(arm.agent, images=(arm.agent.images[0], failed)))
    with pytest.raises(OperationError) as caught:
        belongs.check(config, [amd, arm], commit=COMMIT)
    assert caught.value.message == "arm.json: service web failed on its agent: elf-files: 1 of 9 ELF files are x86-64"


def test_no_file_at_all_is_bad_input(config: Config) -> None:
    assert refusal(config, []).startswith("--from needs at least one agent file")


def test_an_agent_file_round_trips_and_bad_ones_are_one_line_naming_the_file(config: Config, tmp_path: Path) -> None:
    original = agent(config, "linux/arm64", mark="b")
    path = tmp_path / "arm.json"
    agent_file.write(path, original)
    assert agent_file.read(path) == original
    doc = json.loads(path.read_text())
    doc["services"][0]["digest"] = "sha256:nothex"
    path.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=r"arm.json: not a buildctl agent file \(buildctl-agent/1\): service api: "
                                         r"digest 'sha256:nothex' is not a sha256 digest"):
        agent_file.read(path)
    path.write_text("[" * 100 + "]" * 100)
    with pytest.raises(UsageError, match="arm.json: not a buildctl agent file: nested deeper than 64 levels"):
        agent_file.read(path)
    with pytest.raises(UsageError, match="not a regular file"):
        agent_file.read(tmp_path)


def test_a_by_digest_build_pushes_no_tag_only_the_digest(config: Config) -> None:
    plan = make_plan(config, run_id="r1")
    spec = replace(plan.services[0].build, platforms=("linux/arm64",), by_digest=True)
    argv = buildx_argv(spec, metadata_file="m.json")
    assert "--tag" not in argv and "--push" not in argv
    assert argv[argv.index("--output") + 1] == ("type=image,name=127.0.0.1:5000/team/api,push-by-digest=true,"
                                                "push=true,oci-mediatypes=true")
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    assert argv[-3:] == ["--metadata-file", "m.json", str(config.services[0].context)]

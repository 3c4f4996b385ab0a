"""Native agents, the pure parts around the engine: which services an agent builds (and which builders
it refuses), and the merge's own checks of the merged index against the agents' files."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import UsageError
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.pipeline import belongs
from buildctl.pipeline.agent_file import AgentImage, Verdict
from buildctl.pipeline.by_digest import for_platform
from buildctl.pipeline.merge import reused_smoke, same_images

REMOTE = "builder: {name: native, driver: remote, nodes: [{endpoint: 'tcp://127.0.0.1:1'}]}\n"


def config(root: Path, text: str):
    (root / "services.yaml").write_text(text)
    return load_config(root / "services.yaml", environ={})


def test_an_agent_builds_only_the_services_of_its_platform_for_it_alone(project_dir: Path) -> None:
    cfg = config(project_dir, REMOTE + "services:\n  api: {context: api, image: t/api}\n"
                 "  web: {context: web, image: t/web, platforms: [linux/amd64]}\n")
    assert [(s.name, s.platforms) for s in for_platform(cfg, "linux/arm64/v8").services] == [("api", ("linux/arm64",))]
    assert [(s.name, s.platforms) for s in for_platform(cfg, "linux/amd64").services] == [
        ("api", ("linux/amd64",)), ("web", ("linux/amd64",))]
    with pytest.raises(UsageError, match=r"--platform linux/riscv64: no selected service is configured for it "
                                         r"\(platforms: linux/amd64, linux/arm64\)"):
        for_platform(cfg, "linux/riscv64")


def test_the_docker_driver_is_refused_before_anything_runs(project_dir: Path) -> None:
    cfg = config(project_dir, "services:\n  api: {context: api, image: t/api}\n")
    with pytest.raises(UsageError, match="builder 'default' uses the docker driver, which cannot push by digest"):
        for_platform(cfg, "linux/amd64")


def image(platform: str, digest: str) -> AgentImage:
    return AgentImage("api", "r/t/api", "sha256:" + "0" * 64, digest, "sha256:" + "e" * 64, None, Verdict.PASSED,
                      (Check(platform, "elf", CheckStatus.PASS, "ok"), Check(platform, "smoke", CheckStatus.PASS, "ran: x")))


PARTS = belongs.ServiceParts("api", (belongs.PlatformPart("linux/amd64", image("linux/amd64", "sha256:" + "a" * 64), "a.json"),
                                     belongs.PlatformPart("linux/arm64", image("linux/arm64", "sha256:" + "b" * 64), "b.json")))


def test_the_merged_index_must_hold_exactly_the_images_the_agents_verified() -> None:
    merged = Verification("r/t/api@sha256:" + "9" * 64, "sha256:" + "9" * 64,
                          (PlatformImage("linux/amd64", "sha256:" + "a" * 64),
                           PlatformImage("linux/arm64", "sha256:" + "b" * 64)), ())
    assert same_images(merged, PARTS) == Check("", "agents", CheckStatus.PASS, "linux/amd64 from a.json, linux/arm64 "
                                               "from b.json: the images the agents verified")
    swapped = replace(merged, platforms=(PlatformImage("linux/amd64", "sha256:" + "a" * 64),
                                         PlatformImage("linux/arm64", "sha256:" + "c" * 64)))
    check = same_images(swapped, PARTS)
    assert check.status is CheckStatus.FAIL and check.platform == "linux/arm64"
    assert check.detail == f"the merged index has sha256:{'c' * 64} for linux/arm64, b.json verified sha256:{'b' * 64}"


def test_only_the_smoke_results_of_the_agents_are_carried_over_saying_where_they_ran() -> None:
    assert reused_smoke(PARTS) == (Check("linux/amd64", "smoke", CheckStatus.PASS, "ran: x (on the agent: a.json)"),
                                   Check("linux/arm64", "smoke", CheckStatus.PASS, "ran: x (on the agent: b.json)"))

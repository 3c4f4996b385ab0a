"""buildctl.pipeline.rollback_plan: what may be rolled back, the refusal, the bypassed downgrades,
the GitOps settings and the record of a rollback (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildctl.errors import EXIT_BAD_INPUT, EXIT_FAILED
from buildctl.gitops.templates import check_message_template, commit_message
from buildctl.gitops.results import Drift, GitOpsResult
from buildctl.gitops.tag_order import BYPASS, downgrade, is_newer
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.model import GitOpsConfig, ReleasedImage, TagOrder
from buildctl.pipeline import rollback_plan as plan
from buildctl.pipeline.record import load_releases, write_record
from buildctl.pipeline.rollback_plan import RollbackTarget

REPO = "127.0.0.1:5000/team"
INDEX = "sha256:" + "1" * 64
ARM = "sha256:" + "2" * 64


def verified(*failures: Check) -> Verification:
    checks = (Check("", "platforms", CheckStatus.PASS, "linux/amd64, linux/arm64"),
              Check("linux/arm64", "config", CheckStatus.PASS, "config says linux/arm64"), *failures)
    return Verification(f"{REPO}/x@{INDEX}", INDEX, (PlatformImage("linux/arm64", ARM),), checks)


def target(service: str, *, exists: bool = True, failures: tuple[Check, ...] = ()) -> RollbackTarget:
    if not exists:
        return RollbackTarget(service, f"{REPO}/{service}", "41", None)
    return RollbackTarget(service, f"{REPO}/{service}", "41", INDEX, verified(*failures))


ELF = Check("linux/arm64", "elf-files", CheckStatus.FAIL, "3 of 3 ELF files are x86-64 (EM_X86_64), e.g. /bin/sh")
INTERP = Check("linux/arm64", "interp", CheckStatus.FAIL, "needs /lib/ld-linux-aarch64.so.1")


def test_every_service_verified_means_no_refusal_and_each_is_released_at_its_digest() -> None:
    targets = (target("vote"), target("worker"))
    assert plan.refusal("41", targets) is None and plan.refusal_lines(targets) == ()
    assert plan.released(targets) == (ReleasedImage("vote", f"{REPO}/vote", "41", INDEX),
                                      ReleasedImage("worker", f"{REPO}/worker", "41", INDEX))


def test_the_refusal_has_one_line_per_missing_or_failing_service() -> None:
    targets = (target("vote"), target("worker", exists=False), target("result", failures=(ELF, INTERP)))
    assert plan.refusal_lines(targets) == (
        f"worker: {REPO}/worker:41 does not exist in the registry",
        f"result: {REPO}/result:41 ({INDEX[:19]}…) fails verification: linux/arm64 elf-files: "
        "3 of 3 ELF files are x86-64 (EM_X86_64), e.g. /bin/sh (and 1 more failed check(s))",
    )
    message = plan.refusal("41", targets)
    assert message.splitlines() == ["rollback to 41 refused; nothing was changed in Git:",
                                    *(f"  {line}" for line in plan.refusal_lines(targets))]
    assert plan.released(targets) == (ReleasedImage("vote", f"{REPO}/vote", "41", INDEX),)


def test_a_failed_verification_exits_1_and_only_missing_tags_exit_2() -> None:
    failing = plan.refusal_error("41", (target("vote", failures=(ELF,)), target("worker", exists=False)),
                                 record_path="r.json")
    assert failing.exit_code == EXIT_FAILED
    assert failing.hint == "roll back to a tag every selected service was released under; record: r.json"
    missing = plan.refusal_error("41", (target("vote"), target("worker", exists=False)), record_path=None)
    assert missing.exit_code == EXIT_BAD_INPUT
    assert missing.hint.endswith(", or name the services: buildctl rollback 41 vote")  # what can be done
    assert missing.message == plan.refusal("41", (target("vote"), target("worker", exists=False)))


@pytest.mark.parametrize(
    ("found", "rule", "expected"),
    [
        (f"{REPO}/vote:42@{INDEX}", TagOrder.AUTO, ["42 -> 41"]),  # the downgrade the rule refuses
        (f"{REPO}/vote:112", TagOrder.NUMERIC, ["112 -> 41"]),
        (f"{REPO}/vote:40", TagOrder.AUTO, []),  # older: the rule would have written it too
        (f"{REPO}/vote:41@{ARM}", TagOrder.AUTO, []),  # the same tag at another digest
        (f"{REPO}/vote:latest", TagOrder.AUTO, []),  # not comparable: written anyway
        (f"{REPO}/vote@{INDEX}", TagOrder.AUTO, []),  # digest only: no tag to compare
        ("not a reference", TagOrder.AUTO, []),
        (f"{REPO}/vote:42", TagOrder.NONE, []),  # the rule keeps nothing: nothing to bypass
    ],
)
def test_bypassed_names_each_reference_the_rule_would_have_kept(found: str, rule: TagOrder, expected) -> None:
    lines = plan.bypassed([Drift("vote", "deploy/vote.yaml", found)], "41", rule)
    assert list(lines) == [f"rollback: tag_order bypassed: {e} (vote: deploy/vote.yaml)" for e in expected]


def test_bypassed_lists_each_site_once_in_order() -> None:
    drift = [Drift("vote", "a.yaml", f"{REPO}/vote:43"), Drift("vote", "a.yaml", f"{REPO}/vote:43"),
             Drift("worker", "b.yaml", f"{REPO}/worker:42")]
    assert plan.bypassed(drift, "41", TagOrder.AUTO) == (
        "rollback: tag_order bypassed: 43 -> 41 (vote: a.yaml)",
        "rollback: tag_order bypassed: 42 -> 41 (worker: b.yaml)",
    )


def test_downgrade_is_what_the_rule_would_keep_and_bypass_keeps_nothing() -> None:
    assert downgrade("42", "41", TagOrder.AUTO) == "42 -> 41"
    assert downgrade("41", "42", TagOrder.AUTO) is None and downgrade(None, "41", TagOrder.AUTO) is None
    assert not is_newer("42", "41", BYPASS) and not is_newer("2.0.0", "1.0.0", BYPASS)


def test_a_rollback_publishes_with_its_own_message_and_branch_and_no_tag_order() -> None:
    configured = GitOpsConfig(repo="r.git", message="deploy {tag} ({summary})", push_branch="release/{tag}",
                              tag_order=TagOrder.SEMVER, pin_digest=True)
    cfg = plan.rollback_gitops(configured)
    assert (cfg.tag_order, cfg.push_branch, cfg.pin_digest, cfg.repo) == (BYPASS, "rollback/{tag}", True, "r.git")
    check_message_template(cfg.message)  # a template publish accepts
    vote = ReleasedImage("vote", f"{REPO}/vote", "41", INDEX)
    assert commit_message(cfg.message, [vote], ["vote"]) == f"rollback to 41\n\nvote: {REPO}/vote:41@{INDEX}\n"
    assert plan.rollback_gitops(GitOpsConfig(repo="r.git")).push_branch is None  # straight to the branch


def test_the_record_reads_back_as_a_release(tmp_path: Path) -> None:
    gitops = GitOpsResult(repo="r.git", branch="main", commit="c" * 40, pushed=True, attempts=1, diff="-a\n+b\n",
                          message="rollback to 41")
    lines = ("rollback: tag_order bypassed: 42 -> 41 (vote: deploy/vote.yaml)",)
    data = plan.rollback_record(run_id="ab12", registry="127.0.0.1:5000", tag="41", targets=(target("vote"),),
                                rule=TagOrder.AUTO, lines=lines, gitops=gitops, refused=None)
    assert data["verb"] == "rollback" and data["gate"] == "passed" and data["refused"] is None
    assert data["tag_order"] == {"rule": "auto", "bypassed": list(lines)}
    [svc] = data["services"]
    assert (svc["index_digest"], svc["platforms"], svc["verified"], svc["tagged"]) == (
        INDEX, {"linux/arm64": ARM}, True, True)
    assert data["gitops"]["commit"] == "c" * 40
    path = write_record(tmp_path / "r.json", data)
    assert json.loads(path.read_text()) == data
    assert load_releases(path) == (ReleasedImage("vote", f"{REPO}/vote", "41", INDEX),)


def test_the_record_of_a_refusal_says_why_and_deploys_nothing() -> None:
    targets = (target("vote", exists=False),)
    refused = plan.refusal("41", targets)
    data = plan.rollback_record(run_id="ab12", registry="127.0.0.1:5000", tag="41", targets=targets,
                                rule=TagOrder.AUTO, lines=(), gitops=None, refused=refused)
    assert (data["gate"], data["refused"], data["gitops"]) == ("failed", refused, None)
    assert data["services"][0] == {"name": "vote", "repository": f"{REPO}/vote", "tag": "41",
                                        "index_digest": None, "platforms": {}, "checks": [], "verified": False,
                                        "tagged": False, "release": "rollback"}


def test_already_deployed_is_a_result_without_commit_or_diff() -> None:
    base = GitOpsResult(repo="r.git", branch="main", commit=None, pushed=False, attempts=1)
    result = plan.RollbackResult("41", (), TagOrder.AUTO, (), base, False, None, {})
    assert result.already_deployed
    with_diff = plan.RollbackResult("41", (), TagOrder.AUTO, (), GitOpsResult(
        repo="r.git", branch="main", commit=None, pushed=False, attempts=1, diff="-a\n+b\n"), True, None, {})
    assert not with_diff.already_deployed  # a dry run that would change something


def test_a_verification_that_could_not_finish_refuses_like_a_failed_one() -> None:
    stopped = Verification(f"{REPO}/vote@{INDEX}", INDEX, (), (Check(
        "", "verify", CheckStatus.FAIL, "verification of 127.0.0.1:5000/team/vote took longer than 120 s"),))
    vote = RollbackTarget("vote", f"{REPO}/vote", "41", INDEX, stopped)
    assert plan.refusal_lines([vote]) == (f"vote: {REPO}/vote:41 ({INDEX[:19]}…) fails verification: * verify: "
                                          "verification of 127.0.0.1:5000/team/vote took longer than 120 s",)
    assert plan.refusal_error("41", [vote], record_path=None).exit_code == EXIT_FAILED

"""ci_output: Azure Pipelines / GitHub Actions output from a real release record.

The records are built by record.release_record from the pipeline's own result types, so a change
of the record's shape breaks these tests rather than CI pipelines.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from buildctl.engine.results import BuilderReport, EngineInfo
from buildctl.errors import OperationError
from buildctl.gitops.results import GitOpsResult
from buildctl.inspect.results import Check, PlatformImage, Verification
from buildctl.output import ci as ci_output
from buildctl.output import ci_escape
from buildctl.pipeline import record
from buildctl.pipeline.results import BuildResult, ReleaseOutcome, ServiceOutcome

REGISTRY = "myacr.azurecr.io"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
GITOPS_URL = "https://dev.azure.com/org/project/_git/gitops"
EVIL = "100% ]wrong; see https://user:s3cret@h.example/x\n##vso[task.setvariable variable=X]evil"


def digest(char: str) -> str:
    return "sha256:" + char * 64


def service(name: str, index: str, *, tagged: bool, arm_elf: tuple[str, str] = ("pass", "gunicorn: ELF aarch64"),
            error: str | None = None, log: str | None = None) -> ServiceOutcome:
    repo = f"{REGISTRY}/voting-app/{name}"
    built = error is None
    verification = None
    if built:
        platforms = (PlatformImage("linux/amd64", digest("b")), PlatformImage("linux/arm64", digest("c")))
        checks = (Check("", "platforms", "pass", "linux/amd64, linux/arm64"),
                  Check("linux/amd64", "elf", "pass", "gunicorn: ELF x86-64"),
                  Check("linux/arm64", "elf", *arm_elf))
        verification = Verification(f"{repo}@{index}", index, platforms, checks)
    build = BuildResult(name, repo, "buildctl-staging-r1", built, index if built else None, 3.0, log, error)
    return ServiceOutcome(name, repo, build, verification, f"{repo}:42", tagged)


def release(*services: ServiceOutcome, gitops: GitOpsResult | None = None) -> dict:
    engine = EngineInfo("26.1", "26.1", "io.containerd.snapshotter.v1", "linux/amd64")
    builder = BuilderReport("default", "docker", "reused", ("linux/amd64", "linux/arm64"))
    outcome = ReleaseOutcome("r1", "42", REGISTRY, "/tmp/r1", engine, (), builder, services)
    return record.release_record(outcome, gitops=gitops)


@pytest.fixture
def passed() -> dict:
    return release(service("vote", digest("a"), tagged=True), service("result-api", digest("d"), tagged=True),
                   gitops=GitOpsResult(GITOPS_URL, "main", COMMIT, True, 1))


@pytest.fixture
def failed(tmp_path: Path) -> dict:
    log = tmp_path / "worker.log"
    log.write_text("#5 RUN pip install\n::error::forged by the build\n##vso[task.complete result=Succeeded]done\n")
    return release(service("vote", digest("a"), tagged=False),
                   service("result", digest("d"), tagged=False, arm_elf=("fail", EVIL)),
                   service("worker", digest("e"), tagged=False, error="exit code: 1", log=str(log)))


VOTE_GROUP = [
    "pass * platforms: linux/amd64, linux/arm64",
    "pass linux/amd64 elf: gunicorn: ELF x86-64",
    "pass linux/arm64 elf: gunicorn: ELF aarch64",
]


def test_detect() -> None:
    assert ci_output.detect({"TF_BUILD": "True"}) == "azure"
    assert ci_output.detect({"GITHUB_ACTIONS": "true"}) == "github"
    assert ci_output.detect({"CI": "true", "TF_BUILD": "False"}) is None


def test_escaping_follows_the_platform_libraries() -> None:
    assert ci_escape.escape_azure_data("100%\r\n;]") == "100%AZP25%0D%0A;]"
    assert ci_escape.escape_azure_property("100%\r\n;]") == "100%AZP25%0D%0A%3B%5D"
    assert ci_escape.escape_github_data("100%\r\n:,") == "100%25%0D%0A:,"
    assert ci_escape.escape_github_property("100%\r\n:,") == "100%25%0D%0A%3A%2C"
    assert ci_output.azure_command("task.setvariable", {"variable": "A;B]"}, "x") == "##vso[task.setvariable variable=A%3BB%5D]x"


def test_plain_defuses_commands_and_credentials() -> None:
    assert ci_escape.plain("a\r\nb ##vso[task.complete]x ##[error]y https://u:p@h/z") == \
        "a b \\u0023#vso[task.complete]x \\u0023#[error]y https://h/z"


def test_controls_in_command_data_and_plain_lines_are_shown_as_escapes() -> None:
    """Lines of ``emit`` reach the log past the console: a check detail's ESC (an ENTRYPOINT, a
    build log's colours) reached it raw."""
    assert ci_escape.plain("a\x1b[8mhidden\x07 \u202eb") == "a\\x1b[8mhidden\\x07 \\u202eb"
    issue = ci_output.azure_command("task.logissue", {"type": "error"}, "x\x1b]0;t\x07\ny")
    assert issue == "##vso[task.logissue type=error]x\\x1b]0;t\\x07%0Ay"
    assert ci_output.github_command("error", {}, "x\x1b[2K") == "::error::x\\x1b[2K"


def test_azure_passed_release(passed: dict) -> None:
    lines = ci_output.azure_lines(passed, record_path="/a/release.json")
    assert lines == [
        f"##[group]buildctl vote: released {digest('a')}", *VOTE_GROUP, "##[endgroup]",
        f"##[group]buildctl result-api: released {digest('d')}", *VOTE_GROUP, "##[endgroup]",
        "##vso[task.setvariable variable=BUILDCTL_TAG;isOutput=true]42",
        f"##vso[task.setvariable variable=BUILDCTL_DIGEST_VOTE;isOutput=true]{digest('a')}",
        f"##vso[task.setvariable variable=BUILDCTL_DIGEST_RESULT_API;isOutput=true]{digest('d')}",
        f"##vso[task.setvariable variable=BUILDCTL_GITOPS_COMMIT;isOutput=true]{COMMIT}",
        "##vso[artifact.upload artifactname=release-record]/a/release.json",
    ]


def test_azure_failed_release(failed: dict) -> None:
    tail = "#5 RUN pip install\n::error::forged by the build\n##vso[task.complete result=Succeeded]done"
    lines = ci_output.azure_lines(failed, log_tails={"worker": tail})
    assert lines == [
        "##[group]buildctl vote: verified, not tagged", *VOTE_GROUP, "##[endgroup]",
        "##[group]buildctl result: verification FAILED", *VOTE_GROUP[:2],
        "fail linux/arm64 elf: 100% ]wrong; see https://h.example/x \\u0023#vso[task.setvariable variable=X]evil",
        "##[endgroup]",
        "##[group]buildctl worker: build FAILED",
        "build FAILED: exit code: 1",
        f"build log: {failed['services'][2]['build_log']}",
        "| #5 RUN pip install",
        "| ::error::forged by the build",
        "| \\u0023#vso[task.complete result=Succeeded]done",
        "##[endgroup]",
        "##vso[task.logissue type=error]result linux/arm64 elf: 100%AZP25 ]wrong; see https://h.example/x"
        "%0A\\u0023#vso[task.setvariable variable=X]evil",
        f"##vso[task.logissue type=error]worker build failed: exit code: 1 (build log: {failed['services'][2]['build_log']})",
        "##vso[task.logissue type=error]release gate failed: tag 42 was not created; no GitOps change",
    ]
    assert not any("setvariable variable=BUILDCTL" in line for line in lines)


def test_partly_tagged_release_exports_only_what_exists(passed: dict) -> None:
    passed["services"][1]["tagged"] = False  # e.g. the registry refused result-api's tag
    passed["gate"], passed["gitops"] = "failed", None
    lines = ci_output.azure_lines(passed)
    assert [line for line in lines if "setvariable" in line] == [
        "##vso[task.setvariable variable=BUILDCTL_TAG;isOutput=true]42",
        f"##vso[task.setvariable variable=BUILDCTL_DIGEST_VOTE;isOutput=true]{digest('a')}",
    ]
    assert "##vso[task.logissue type=error]release gate failed: tag 42 exists only for vote; no GitOps change" in lines
    assert ci_output.github_outputs(passed) == f"tag=42\ndigest_vote={digest('a')}\n"


def test_github_passed_release(passed: dict) -> None:
    assert ci_output.github_lines(passed) == [
        f"::group::buildctl vote: released {digest('a')}", *VOTE_GROUP, "::endgroup::",
        f"::group::buildctl result-api: released {digest('d')}", *VOTE_GROUP, "::endgroup::",
    ]
    assert ci_output.github_outputs(passed) == (
        f"tag=42\ndigest_vote={digest('a')}\ndigest_result-api={digest('d')}\ngitops_commit={COMMIT}\n"
    )
    assert ci_output.github_summary(passed) == "\n".join([
        "## buildctl release `42`: passed",
        "",
        f"Registry `{REGISTRY}` · gate **passed**",
        "",
        "| service | platform | digest | checks |",
        "| --- | --- | --- | --- |",
        f"| vote | index | `{digest('a')}` | platforms: pass |",
        f"| vote | linux/amd64 | `{digest('b')}` | elf: pass |",
        f"| vote | linux/arm64 | `{digest('c')}` | elf: pass |",
        f"| result-api | index | `{digest('d')}` | platforms: pass |",
        f"| result-api | linux/amd64 | `{digest('b')}` | elf: pass |",
        f"| result-api | linux/arm64 | `{digest('c')}` | elf: pass |",
        "",
        "Released:",
        "",
        f"- `{REGISTRY}/voting-app/vote:42@{digest('a')}`",
        f"- `{REGISTRY}/voting-app/result-api:42@{digest('d')}`",
        "",
        f"GitOps: commit `{COMMIT}` pushed to `main` of {GITOPS_URL}",
        "",
    ])


def test_github_failed_release(failed: dict) -> None:
    lines = ci_output.github_lines(failed)
    assert lines[-3:] == [
        "::error title=result linux/arm64 elf::100%25 ]wrong; see https://h.example/x%0A\\u0023#vso[task.setvariable variable=X]evil",
        f"::error title=worker build failed::exit code: 1 (build log: {failed['services'][2]['build_log']})",
        "::error title=release gate failed::tag 42 was not created; no GitOps change",
    ]
    assert ci_output.github_outputs(failed) == ""
    summary = ci_output.github_summary(failed).splitlines()
    assert summary[0] == "## buildctl release `42`: **failed**"
    assert (f"| result | linux/arm64 | `{digest('c')}` | elf: **FAIL** (100% ]wrong; see https://h.example/x "
            "\\u0023#vso[task.setvariable variable=X]evil) |") in summary
    assert "| worker | — | — | build: **FAIL** (exit code: 1) |" in summary
    assert "Released:" not in summary
    assert summary[-1] == "GitOps: not run (the release gate did not pass)"


def test_summary_cells_cannot_break_the_table(passed: dict) -> None:
    passed["services"][0]["checks"][2] = {"platform": "linux/arm64", "name": "elf", "status": "fail",
                                          "detail": "a|b <script>\nnext"}
    assert f"| vote | linux/arm64 | `{digest('c')}` | elf: **FAIL** (a\\|b &lt;script&gt; next) |" in \
        ci_output.github_summary(passed).splitlines()


def test_multi_line_output_values_are_refused(passed: dict) -> None:
    passed["tag"] = "42\nevil=1"
    with pytest.raises(OperationError, match="multi-line value for step output tag"):
        ci_output.github_outputs(passed)


def test_emit_github_writes_outputs_summary_and_log_tail(failed: dict, passed: dict, tmp_path: Path) -> None:
    outputs, summary = tmp_path / "output", tmp_path / "summary"
    outputs.write_text("earlier=1\n")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)}
    out = io.StringIO()
    ci_output.emit(passed, environ=env, stdout=out)
    assert outputs.read_text() == "earlier=1\n" + ci_output.github_outputs(passed)
    assert summary.read_text() == ci_output.github_summary(passed)
    assert out.getvalue() == "".join(f"{line}\n" for line in ci_output.github_lines(passed))

    out = io.StringIO()
    ci_output.emit(failed, environ=env, stdout=out)  # the worker's log file is read for its tail
    assert "| ::error::forged by the build\n| \\u0023#vso[task.complete result=Succeeded]done\n::endgroup::\n" in out.getvalue()
    assert outputs.read_text() == "earlier=1\n" + ci_output.github_outputs(passed)  # nothing released: nothing added


def test_emit_azure_and_outside_ci(passed: dict) -> None:
    out = io.StringIO()
    ci_output.emit(passed, environ={"TF_BUILD": "True"}, stdout=out, record_path="/a/release.json")
    assert out.getvalue().splitlines() == ci_output.azure_lines(passed, record_path="/a/release.json")
    out = io.StringIO()
    ci_output.emit(passed, environ={}, stdout=out)
    assert out.getvalue() == ""


def test_emit_reports_an_unwritable_output_file(passed: dict, tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(tmp_path / "missing" / "output")}
    with pytest.raises(OperationError, match="cannot append to .*missing/output"):
        ci_output.emit(passed, environ=env, stdout=io.StringIO())


def test_services_that_map_to_one_variable_are_not_exported(passed: dict) -> None:
    passed["services"][1]["name"] = "vote.api"
    passed["services"][0]["name"] = "vote_api"
    lines = ci_output.azure_lines(passed)
    assert "##vso[task.logissue type=warning]services vote_api, vote.api all map to BUILDCTL_DIGEST_VOTE_API; not set" in lines
    assert not any("BUILDCTL_DIGEST" in line and "setvariable" in line for line in lines)
    assert ci_output.github_lines(passed)[-1] == "::warning::services vote_api, vote.api all map to digest_vote_api; not set"
    assert ci_output.github_outputs(passed) == f"tag=42\ngitops_commit={COMMIT}\n"

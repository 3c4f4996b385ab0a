"""pipeline/sign_step.AttestBesideTags: the attestation begun beside the tag writes is waited for
by the run; its error fails a released run, and is only logged when the run fails on its tags."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import pytest

from buildctl.engine.results import BuilderReport, EngineInfo
from buildctl.errors import OperationError
from buildctl.inspect.results import Check, PlatformImage, Verification
from buildctl.model import Config
from buildctl.pipeline import sign_step
from buildctl.pipeline.results import BuildResult, ReleaseOutcome, ServiceOutcome, TagFailure

REPO = "127.0.0.1:5000/buildctl-test/app"


def outcome(*, tag_failure: TagFailure | None = None) -> ReleaseOutcome:
    index = "sha256:" + "a" * 64
    build = BuildResult("app", REPO, "buildctl-staging-r1", True, index, 1.0)
    verification = Verification(f"{REPO}@{index}", index, (PlatformImage("linux/amd64", "sha256:" + "b" * 64),),
                                (Check("", "platforms", "pass", "linux/amd64"),))
    service = ServiceOutcome("app", REPO, build, verification, f"{REPO}:1", tagged=tag_failure is None)
    return ReleaseOutcome("r1", "1", "127.0.0.1:5000", "/tmp/r1", EngineInfo("28", "26", "", "linux/amd64"), (),
                          BuilderReport("default", "docker", "reused", ()), (service,), tag_failure=tag_failure)


class FakeAttest:
    """attest_services as the hook begins it: records what it was given, answers when released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.release = threading.Event()

    def __call__(self, config: Config, services, client, **kwargs) -> tuple:
        self.calls.append(tuple(s.service for s in services))
        self.release.wait(5)
        raise OperationError("cosign attach failed: registry said no")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAttest:
    fake = FakeAttest()
    monkeypatch.setattr(sign_step, "attest_services", fake)
    return fake


def test_begun_at_the_hook_and_its_error_fails_a_released_run(fake: FakeAttest) -> None:
    attest = sign_step.AttestBesideTags(Config.__new__(Config), client=None)  # type: ignore[arg-type]
    done = outcome()
    assert done.passed and done.tag_failure is None
    attest(done.services)  # gate_and_tag's hook: the tags are decided, not yet written
    fake.release.set()
    with pytest.raises(OperationError, match="registry said no"):
        attest.finish(done)
    assert fake.calls == [("app",)]
    attest.settle()  # finished: nothing waits twice


def test_when_the_run_fails_on_its_tags_the_attestation_error_is_only_logged(
        fake: FakeAttest, caplog: pytest.LogCaptureFixture) -> None:
    attest = sign_step.AttestBesideTags(Config.__new__(Config), client=None)  # type: ignore[arg-type]
    failed = outcome(tag_failure=TagFailure("writing 127.0.0.1:5000/buildctl-test/app:1 failed", "retry"))
    attest(failed.services)
    fake.release.set()
    with caplog.at_level(logging.WARNING):
        assert attest.finish(failed) == ()
    assert "attesting the verification failed too: cosign attach failed" in caplog.text


def test_never_begun_when_the_tags_were_never_decided(fake: FakeAttest) -> None:
    attest = sign_step.AttestBesideTags(Config.__new__(Config), client=None)  # type: ignore[arg-type]
    assert attest.finish(replace(outcome(), services=())) == ()
    attest.settle()
    assert fake.calls == []

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


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """attestation.attach recorded (subject per call) instead of run: what `verified` starts."""
    calls: list[str] = []

    def attach(repository, digest, body, *, key, password, insecure):
        assert key is None and body["passed"] is True
        calls.append(f"{repository}@{digest}")
        return sign_step.attestation.Attested(f"{repository}@{digest}", None)

    monkeypatch.setattr(sign_step.attestation, "attach", attach)
    return calls


def _config(tmp_path, sign: str = "") -> Config:
    from buildctl.config.loader import load_config
    from tests.helpers.project import GOOD, make_project

    root = make_project(tmp_path, {"app": GOOD})
    (root / "services.yaml").write_text(sign + (root / "services.yaml").read_text())
    return load_config(root / "services.yaml")


def test_a_built_index_is_attested_once_when_verified_and_the_gate_takes_that_one(tmp_path, attached) -> None:
    attest = sign_step.AttestBesideTags(_config(tmp_path), client=None)  # type: ignore[arg-type]
    done = outcome()
    verification = done.services[0].verification
    attest.verified(REPO, verification)
    attest.verified(REPO, verification)  # a round built again, the same digest: not attested twice
    attest(done.services)
    assert [a.subject for a in attest.finish(done)] == [f"{REPO}@{verification.index_digest}"]
    assert attached == [f"{REPO}@{verification.index_digest}"]


def test_a_round_the_builder_check_stopped_is_left_to_the_gate(tmp_path, attached) -> None:
    attest = sign_step.AttestBesideTags(_config(tmp_path), client=None)  # type: ignore[arg-type]
    done = outcome()
    attest.verified(REPO, done.services[0].verification, stopped=lambda: True)
    attest.settle()
    assert attached == []  # nothing attested for a round that is not what is released
    attest = sign_step.AttestBesideTags(attest._config, client=None)  # type: ignore[arg-type]
    attest.verified(REPO, done.services[0].verification, stopped=lambda: True)
    attest(done.services)
    assert len(attest.finish(done)) == 1 and len(attached) == 1  # the gate attested the released digest


def test_signed_ones_wait_for_the_gate(tmp_path, attached) -> None:
    key = tmp_path / "cosign.key"
    key.write_text("not read here")
    attest = sign_step.AttestBesideTags(_config(tmp_path, f"sign: {{key: {key}}}\n"), client=None)  # type: ignore[arg-type]
    attest.verified(REPO, outcome().services[0].verification)
    attest.settle()
    assert attached == []


def test_an_early_attestations_error_is_logged_when_the_run_fails_first(tmp_path, monkeypatch,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    def failing(*args, **kwargs):
        raise OperationError("cosign attach failed: registry said no")

    monkeypatch.setattr(sign_step.attestation, "attach", failing)
    attest = sign_step.AttestBesideTags(_config(tmp_path), client=None)  # type: ignore[arg-type]
    attest.verified(REPO, outcome().services[0].verification)
    with caplog.at_level(logging.WARNING):
        attest.settle()  # what run.py does when build_release raises
    assert "attesting the verification failed too: cosign attach failed" in caplog.text

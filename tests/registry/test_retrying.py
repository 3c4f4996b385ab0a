"""The registry client's backoff: a floor under every wait, so the attempts of a policy span a
known window (a registry restarting for a few seconds is ridden out every time, not by chance)."""

from __future__ import annotations

import httpx
import pytest

from buildctl.registry.results import RetryPolicy
from buildctl.registry.retrying import retrying
from buildctl.registry.wire import TransientStatusError


def waits_until_given_up(policy: RetryPolicy, exc: Exception) -> list[float]:
    slept: list[float] = []
    attempts = retrying(policy, "manifest R/app:1").copy(sleep=slept.append)

    def always_fails() -> None:
        raise exc

    with pytest.raises(type(exc)):
        attempts(always_fails)
    return slept


def test_every_wait_has_an_exponential_floor_and_the_default_window_outlasts_a_restart() -> None:
    policy = RetryPolicy()
    floors = [policy.initial_wait * 2 ** n for n in range(policy.attempts - 1)]  # 0.5, 1, 2, 4
    for _ in range(200):  # full jitter (uniform from 0) fails this within a few draws
        slept = waits_until_given_up(policy, httpx.ConnectError("refused"))
        assert len(slept) == policy.attempts - 1
        assert all(floor <= wait <= floor + policy.initial_wait for wait, floor in zip(slept, floors, strict=True)), slept
        assert sum(slept) >= 7.5


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    slept = waits_until_given_up(RetryPolicy(attempts=3), TransientStatusError(429, retry_after=3.0))
    assert slept == [3.0, 3.0]


def test_the_floor_never_exceeds_max_wait() -> None:
    policy = RetryPolicy(attempts=8, initial_wait=1.0, max_wait=4.0)
    slept = waits_until_given_up(policy, httpx.ReadError("reset"))
    assert max(slept) <= 4.0 and slept[-1] >= 3.0

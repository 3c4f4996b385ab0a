"""How the registry client retries: which failures are transient, and the bounded policy.

Transient: a refused, reset or cut connection, a timeout, and 429/500/502/503/504 answers
(wire.TransientStatusError). Retried with exponential backoff plus jitter, honouring Retry-After.
The waits have a floor (initial, 2x, 4x, ... plus up to `initial` at random), as the engine's
retries do: full jitter (uniform from 0) could spend the five attempts of a default policy in under
a second, so a registry restarting for a few seconds failed the release by chance (it did in CI).
"""

from __future__ import annotations

import logging

import httpx
import tenacity

from buildctl.registry.bounds import Deadline
from buildctl.registry.results import RetryPolicy
from buildctl.registry.wire import TransientStatusError, reason

log = logging.getLogger("buildctl.registry.client")

# 500 too: Distribution answered a HEAD with 500 during concurrent pushes (a transient fault, issue #14)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Transport errors that mean "try again": the request may not have reached the registry, or the
# connection broke mid-body. Every request here is a GET/HEAD, so repeating it is safe.
TRANSIENT_ERRORS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    TransientStatusError,
)


def jittered_backoff(policy: RetryPolicy) -> tenacity.wait.wait_base:
    """initial, 2x, 4x, ... plus up to `initial` at random, never above max_wait: a floor, so the
    attempts span a known window, and jitter, so parallel clients do not come back in lockstep.
    (Composed rather than wait_exponential_jitter, whose `initial` is deprecated from tenacity 9.2
    and whose replacement does not exist before it.)"""
    ceiling = max(policy.max_wait - policy.initial_wait, policy.initial_wait)
    return tenacity.wait_exponential(multiplier=policy.initial_wait, max=ceiling) + tenacity.wait_random(0, policy.initial_wait)


def retrying(policy: RetryPolicy, what: str, deadline: Deadline | None = None) -> tenacity.Retrying:
    """Retries of one idempotent request (a GET, a HEAD, or the DELETE of a tag): on TRANSIENT_ERRORS
    only, jittered exponential backoff with a floor, Retry-After honoured, bounded by attempts, total time and the deadline."""
    backoff = jittered_backoff(policy)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientStatusError) and exc.retry_after is not None:
            return exc.retry_after  # honoured; stop_before_delay gives up if it exceeds the budget
        return backoff(state)

    def past_deadline(state: tenacity.RetryCallState) -> bool:
        # the next wait would end after the image's deadline: give up now, with the real error
        return deadline is not None and deadline.remaining() <= state.upcoming_sleep

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s: %s; retrying in %.1fs (attempt %d of %d failed)",
            what, reason(exc), sleep, state.attempt_number, policy.attempts,
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TRANSIENT_ERRORS),
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_before_delay(policy.total_seconds)
        | past_deadline,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )

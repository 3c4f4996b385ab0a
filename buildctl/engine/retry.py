"""Retries for what docker/buildx (and cosign) do against a registry: the build's push,
`imagetools create` and the attestation's `cosign attach`.

docker reports registry failures only as text, so ``classify`` reads the ``ERROR:`` lines buildx
prints last (cosign's ``error during command execution:`` alike): a 5xx/429 answer or a refused,
reset or cut connection is transient (``TransientRegistryError``: retried with exponential backoff
and jitter, bounded in attempts and time); a 401 is a missing or expired login
(``RegistryAuthError``: the caller may log in again once); anything else — a failing RUN step, a
bad Dockerfile — is not retried.

These operations are idempotent: a retried build rebuilds from the BuildKit cache (the layers and
per-platform image manifests come back identical) and pushes the same bytes again; tagging points
the same tag at the same digest. BuildKit itself retries a failing push request 4 times within one
build (1, 2, 4 s apart, moby/buildkit#4104); these retries cover longer outages, and
`imagetools create`, which does not retry at all. Retry-After is invisible here (docker does not
print it); buildctl's own registry client (registry.py) honours it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import TypeVar

import tenacity

from buildctl.errors import CommandError
from buildctl.registry.results import RetryPolicy
from buildctl.registry.retrying import jittered_backoff

log = logging.getLogger("buildctl.engine.docker")
T = TypeVar("T")

# A build is long and BuildKit already retried inside it: few attempts, longer waits.
PUSH_RETRY = RetryPolicy(attempts=3, total_seconds=300.0, initial_wait=2.0, max_wait=30.0)
# imagetools create is one manifest PUT per tag, inside the release's critical section (an
# interrupt waits for it): more attempts, a short total bound.
TAG_RETRY = RetryPolicy(attempts=5, total_seconds=60.0, initial_wait=1.0, max_wait=10.0)

# buildx ends with "ERROR: ...", cosign with "error during command execution: ..."
_ERROR_LINE = re.compile(r"^(?:ERROR|error during command execution): (.*)$", re.MULTILINE)
_STATUS = re.compile(r"\b(429 Too Many Requests|500 Internal Server Error|502 Bad Gateway|503 Service Unavailable"
                     r"|504 Gateway Timeout)\b")
_CAUSES = (
    # dockerd's own push (buildx uses it when the image is in the local store already) reports
    # the error code of the registry's JSON body instead of the HTTP status
    (re.compile(r"Error response from daemon: unavailable: "), "answered 503 (UNAVAILABLE)"),
    (re.compile(r"Error response from daemon: toomanyrequests: "), "answered 429 (TOOMANYREQUESTS)"),
    (re.compile(r"connect: connection refused"), "refused the connection"),
    (re.compile(r"connection reset by peer|broken pipe|unexpected EOF|: EOF$|use of closed network connection"),
     "broke the connection"),
    (re.compile(r"i/o timeout|TLS handshake timeout|Client\.Timeout exceeded"), "timed out"),
)
_AUTH = re.compile(r"401 Unauthorized|authentication required|no basic auth credentials|failed to authorize",
                   re.IGNORECASE)


class TransientRegistryError(CommandError):
    """docker failed to talk to a registry in a way that may pass: 5xx, 429, a broken connection."""

    def __init__(self, what: str, *, cause: str, **kwargs) -> None:
        super().__init__(what, **kwargs)
        self.cause = cause


class RegistryAuthError(CommandError):
    """The registry answered 401: no login, or one that expired."""

    def __init__(self, what: str, *, cause: str, **kwargs) -> None:
        super().__init__(what, **kwargs)
        self.cause = cause


def classify(output: str) -> tuple[str, str] | None:
    """("transient" | "auth", a short cause) for docker's output, or None when not a registry fault."""
    for line in reversed(_ERROR_LINE.findall(output)):
        if "did not complete successfully" in line:  # a RUN step failed: its own output is not ours
            return None
        if status := _STATUS.search(line):
            return "transient", f"answered {status.group(1)}"
        for pattern, cause in _CAUSES:
            if pattern.search(line):
                return "transient", cause
        if _AUTH.search(line):
            return "auth", "answered 401 Unauthorized"
    return None


def typed(error: CommandError, *, registry: str) -> CommandError:
    """``error`` as a TransientRegistryError or RegistryAuthError when its output says so."""
    kind = classify(error.failure.output)
    if kind is None:
        return error
    cls = TransientRegistryError if kind[0] == "transient" else RegistryAuthError
    failure = error.failure
    return cls(error.message.split(": `", 1)[0], cause=f"registry {registry} {kind[1]}", command=failure.command,
               returncode=failure.returncode, output=failure.output, hint=error.hint)


def with_retries(what: str, action: Callable[[int], T], *, policy: RetryPolicy,
                 renew_login: Callable[[float], bool] | None = None) -> T:
    """Run ``action(attempt_number)``, retrying TransientRegistryError under ``policy``.

    On a RegistryAuthError, ``renew_login(attempt_started)`` may log in again (it returns whether
    it did, or whether another thread just did); the attempt is then repeated once.
    """
    started = time.monotonic()
    count = 0

    def attempt() -> T:
        nonlocal count
        count += 1
        began = time.monotonic()
        try:
            return action(count)
        except RegistryAuthError as exc:
            if renew_login is None or not renew_login(began):
                raise
            log.warning("%s: %s (the login expired?); logged in again from the environment, repeating attempt %d",
                        what, exc.cause, count)
            return action(count)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s: %s; attempt %d of %d failed, retrying in %.1f s",
                    what, getattr(exc, "cause", exc), state.attempt_number, policy.attempts, sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(TransientRegistryError),
        stop=tenacity.stop_after_attempt(policy.attempts) | tenacity.stop_before_delay(policy.total_seconds),
        # Exponential with jitter and a floor, so parallel builds hitting one sick registry do not
        # come back in lockstep, and the attempts span a known window.
        wait=jittered_backoff(policy),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except TransientRegistryError as exc:
        elapsed = time.monotonic() - started
        failure = exc.failure
        raise TransientRegistryError(
            f"{what}: {exc.cause}; gave up after {count} attempt(s) in {elapsed:.0f} s", cause=exc.cause,
            command=failure.command, returncode=failure.returncode, output=failure.output,
            hint="is the registry up and reachable? rerun when it is: the build cache makes it quick",
        ) from None
    except RegistryAuthError as exc:
        failure = exc.failure
        raise RegistryAuthError(
            f"{what}: {exc.cause}", cause=exc.cause, command=failure.command, returncode=failure.returncode,
            output=failure.output,
            hint="log in (BUILDCTL_REGISTRY_USERNAME / BUILDCTL_REGISTRY_PASSWORD) with push rights to it",
        ) from None

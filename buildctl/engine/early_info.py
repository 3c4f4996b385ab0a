"""`docker info`, started the moment the CLI knows a release runs: before its ~0.2 s of imports and
services.yaml, which it then runs beside instead of after (issue #20). `docker.engine_info` takes
the answer; one nobody took (the release failed first) is stopped by the CLI.

The answer stands only for the Docker it asked: one started under another DOCKER_HOST or
DOCKER_CONTEXT (a test, an embedding program that changed them since) is never taken.
DOCKER_CONFIG may differ: the run's scoped copy (engine/docker_config.py) keeps the user's context.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from buildctl.programs import ProgramError, Started, start_program

DOCKER = "docker"  # the client program, found on PATH (engine/docker.py runs the same one)
INFO_ARGV = (DOCKER, "info", "--format", "{{json .}}")
INFO_TIMEOUT = 30.0  # `docker info` against a DOCKER_HOST that does not answer
WHAT = "the Docker daemon is not reachable"
_KEYS = ("DOCKER_HOST", "DOCKER_CONTEXT", "PATH")
_early: dict[tuple[str | None, ...], Started] = {}  # at most one: started by start(), until taken


def _asked() -> tuple[str | None, ...]:
    return tuple(os.environ.get(key) for key in _KEYS)


@contextmanager
def started() -> Iterator[None]:
    """`docker info` started now, for `take` to collect within the block; forgotten after it."""
    discard()
    try:
        _early[_asked()] = start_program(INFO_ARGV, what=WHAT, timeout=INFO_TIMEOUT)
    except ProgramError:
        pass  # no docker client: `take` starts it again, and its error says so
    try:
        yield
    finally:
        discard()


def take() -> Started:
    """The `docker info` started early for this Docker (once), else one started now."""
    early = _early.pop(_asked(), None)
    discard()  # one for another Docker
    return early if early is not None else start_program(INFO_ARGV, what=WHAT, timeout=INFO_TIMEOUT)


def discard() -> None:
    """Stop what nobody took (a release that failed first, or asked another Docker)."""
    for early in list(_early.values()):
        early.stop()
    _early.clear()

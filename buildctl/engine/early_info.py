"""`docker info`, started the moment the CLI knows a release runs: before its ~0.2 s of imports and
services.yaml, which it then runs beside instead of after (issue #20). `docker.engine_info` takes
the answer; one nobody took (the release failed first) is stopped by the CLI. So is, on an agent
with no builder check remembered, `buildx inspect` of the builder services.yaml names
(config/builder_name.py): that release's builds wait for the check, whose first read it is
(`docker.inspect_builder`), 0.15-0.3 s that then hide behind the imports.

An answer stands only for the Docker it asked: one started under another DOCKER_HOST,
DOCKER_CONTEXT or BUILDX_CONFIG (a test, an embedding program that changed them since), or for
another builder, is never taken. DOCKER_CONFIG may differ: the run's scoped copy
(engine/docker_config.py) keeps the user's context and builders.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from buildctl.engine.buildx_program import DOCKER, program_argv
from buildctl.programs import ProgramError, Started, start_program

INFO_ARGV = (DOCKER, "info", "--format", "{{json .}}")
INFO_TIMEOUT = 30.0  # `docker info` against a DOCKER_HOST that does not answer
WHAT = "the Docker daemon is not reachable"
INSPECT_TIMEOUT = 30.0  # as engine/docker.py's BUILDX_TIMEOUT: buildx gives up on a node after 20 s
_KEYS = ("DOCKER_HOST", "DOCKER_CONTEXT", "BUILDX_CONFIG", "PATH")
_INFO = "info"
# At most one of each: started by started(), until taken. Keyed by what was asked and where.
_early: dict[tuple[str | None, ...], Started] = {}


def _asked(what: str) -> tuple[str | None, ...]:
    return (what, *(os.environ.get(key) for key in _KEYS))


@contextmanager
def started() -> Iterator[None]:
    """`docker info` started now, for `take` to collect within the block (and `start_inspect`'s
    program for `take_inspect`); forgotten after it."""
    discard()
    _start(_INFO, INFO_ARGV, WHAT, INFO_TIMEOUT)  # no docker client: `take` starts it again, and its error says so
    try:
        yield
    finally:
        discard()


def start_inspect(builder: str | None) -> None:
    """`buildx inspect` of ``builder`` (if any) started now, within `started`'s block."""
    if builder is not None:
        _start(f"inspect {builder}", program_argv(inspect_argv(builder)), inspect_what(builder), INSPECT_TIMEOUT)


def inspect_argv(builder: str) -> tuple[str, ...]:
    return (DOCKER, "buildx", "inspect", builder)


def inspect_what(builder: str) -> str:
    return f"cannot inspect buildx builder {builder!r}"


def _start(what: str, argv: tuple[str, ...] | list[str], message: str, timeout: float) -> None:
    try:
        _early[_asked(what)] = start_program(argv, what=message, timeout=timeout)
    except ProgramError:
        pass  # the taker runs it again, and says why it cannot


def take() -> Started:
    """The `docker info` started early for this Docker (once), else one started now."""
    early = _early.pop(_asked(_INFO), None)
    for key in [key for key in list(_early) if key[0] == _INFO]:  # one for another Docker (list: another thread may pop)
        _early.pop(key).stop()
    return early if early is not None else start_program(INFO_ARGV, what=WHAT, timeout=INFO_TIMEOUT)


def take_inspect(builder: str) -> Started | None:
    """The `buildx inspect` of ``builder`` started early for this Docker (once), or None."""
    return _early.pop(_asked(f"inspect {builder}"), None)


def discard() -> None:
    """Stop what nobody took (a release that failed first, or asked another Docker or builder)."""
    for early in list(_early.values()):
        early.stop()
    _early.clear()

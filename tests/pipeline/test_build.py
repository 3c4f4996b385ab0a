"""pipeline/build.py: what the build step tells its caller while the builds run."""

from __future__ import annotations

from types import SimpleNamespace

from buildctl.pipeline.build import _FirstLines


def services(*names: str) -> tuple:
    return tuple(SimpleNamespace(name=n) for n in names)


def test_on_started_once_every_build_has_printed_or_ended() -> None:
    calls: list[int] = []
    began = _FirstLines(services("vote", "result"), lambda: calls.append(1))
    began.saw("vote")
    began.saw("vote")  # each line of a build says it again
    assert calls == []
    began.saw("result")
    began.saw("result")
    began.saw("vote")
    assert calls == [1]


def test_on_started_at_once_when_nothing_builds() -> None:
    calls: list[int] = []
    _FirstLines((), lambda: calls.append(1))
    assert calls == [1]

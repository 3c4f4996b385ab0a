"""buildctl.registry.bounds: the deadline every registry read of one image shares, and JSON whose
nesting is bounded — what stops a registry that drip-feeds, stalls or sends a document 10^5 levels deep."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

from buildctl import interrupts
from buildctl.errors import EXIT_FAILED, OperationError
from buildctl.registry.bounds import MIN_TIMEOUT, Deadline, LimitError, parse_json


@pytest.fixture
def interrupted():
    """interrupts.interrupted set for the test, cleared afterwards whatever happens."""
    interrupts.interrupted.set()
    yield
    interrupts.interrupted.clear()


def test_limit_error_is_an_operation_failure() -> None:
    assert issubclass(LimitError, OperationError) and LimitError("x").exit_code == EXIT_FAILED


@pytest.mark.parametrize("seconds", [0, -1, -0.0, -math.inf])
def test_a_deadline_must_be_positive(seconds: float) -> None:
    with pytest.raises(ValueError, match="deadline must be a positive number of seconds"):
        Deadline(seconds)


def test_a_nan_deadline_is_refused() -> None:
    with pytest.raises(ValueError):
        Deadline(math.nan)


def test_remaining_and_expiry() -> None:
    deadline = Deadline(0.2, what="manifest")
    assert 0.1 < deadline.remaining() <= 0.2 and not deadline.expired
    deadline.check()
    time.sleep(0.25)
    assert deadline.expired and deadline.remaining() < 0
    with pytest.raises(LimitError) as err:
        deadline.check()
    assert str(err.value) == "manifest: deadline of 0.2 s exceeded (verify.deadline_seconds, --deadline)"


def test_a_cut_only_ever_brings_the_end_closer() -> None:
    deadline = Deadline(60, what="prefetch")
    deadline.cut(300)  # later than it is: no change
    assert 59 < deadline.remaining() <= 60
    deadline.cut(5)
    assert 4 < deadline.remaining() <= 5 and not deadline.expired
    deadline.cut(0)
    assert deadline.expired
    with pytest.raises(LimitError):
        deadline.check()


@pytest.mark.parametrize(("seconds", "text"), [(120.0, "120 s"), (0.05, "0.05 s"), (1e-3, "0.001 s"), (3600, "3600 s")])
def test_the_message_shows_the_deadline_as_configured(seconds: float, text: str) -> None:
    deadline = Deadline(seconds)
    deadline._end = time.monotonic() - 1  # as if it had run out; no other way short of waiting an hour
    with pytest.raises(LimitError, match=f"^verification: deadline of {text} exceeded"):
        deadline.check()


def test_timeout_is_capped_by_the_deadline_and_never_zero() -> None:
    deadline = Deadline(5)
    assert deadline.timeout(30.0) <= 5 and deadline.timeout(30.0) > 4
    assert deadline.timeout(1.0) == 1.0
    assert deadline.timeout(0.0) == MIN_TIMEOUT  # httpx reads 0 as "no timeout"
    assert deadline.timeout(-3.0) == MIN_TIMEOUT
    short = Deadline(0.01)
    time.sleep(0.05)
    assert short.timeout(30.0) == MIN_TIMEOUT > 0  # past the deadline: still a (tiny) timeout, not None/0


def test_an_interrupt_wins_over_the_deadline(interrupted) -> None:
    with pytest.raises(KeyboardInterrupt):
        Deadline(60).check()
    expired = Deadline(0.01)
    time.sleep(0.02)
    with pytest.raises(KeyboardInterrupt):
        expired.check()


def test_an_interrupt_stops_other_threads(interrupted) -> None:
    raised: list[BaseException] = []

    def worker() -> None:
        try:
            Deadline(60).check()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            raised.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert [type(e) for e in raised] == [KeyboardInterrupt]


def test_each_deadline_is_its_own() -> None:
    first = Deadline(0.05)
    time.sleep(0.06)
    second = Deadline(60)
    assert first.expired and not second.expired
    second.check()


# ------------------------------------------------------------------ parse_json


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


@pytest.mark.parametrize("depth", [1, 63, 64])
def test_nesting_up_to_the_limit_is_read(depth: int) -> None:
    assert parse_json(nested(depth).encode(), what="index") == json.loads(nested(depth))


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deeper_nesting_is_a_limit_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(LimitError, match=r"^image config nests JSON deeper than 64 levels \(limit\)$"):
        parse_json(nested(depth).encode(), what="image config")


def test_objects_count_as_levels_too() -> None:
    deep = '{"a": ' * 65 + "1" + "}" * 65
    with pytest.raises(LimitError):
        parse_json(deep, what="x")
    assert parse_json('{"a": ' * 64 + "1" + "}" * 64, what="x") is not None


@pytest.mark.parametrize("text", [
    json.dumps({"a": "[" * 500}),  # brackets in strings are text
    json.dumps({"a": '\\"[[[[' * 100, "b": [[1]]}),  # escaped quotes do not end the string
    json.dumps(["\\", nested(60)]),  # a string ending in an escaped backslash: the next bracket counts
    json.dumps({"[" * 70: "]" * 70}),  # in keys too
])
def test_strings_do_not_count(text: str) -> None:
    assert parse_json(text.encode(), what="x") == json.loads(text)


def test_the_limit_is_per_call() -> None:
    assert parse_json(nested(3), what="x", max_depth=3) == [[[1]]]
    with pytest.raises(LimitError, match="deeper than 2 levels"):
        parse_json(nested(3), what="x", max_depth=2)


@pytest.mark.parametrize("content", [b"", b"{", b"[1,]", b"\xff\xfe\x00", b"NaNa", b'{"a": 1} trailing'])
def test_malformed_is_value_error_not_limit(content: bytes) -> None:
    with pytest.raises(ValueError) as err:
        parse_json(content, what="x")
    assert not isinstance(err.value, LimitError)


def test_deep_and_malformed_is_still_a_limit() -> None:
    with pytest.raises(LimitError):
        parse_json(b"[" * 65, what="x")  # never closed: refused for its depth before the parser sees it

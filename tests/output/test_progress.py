"""progress: buildx plain-progress parsing and the line-oriented display for CI logs."""

from __future__ import annotations

import io

from buildctl.engine.build_log import progress_event
from buildctl.model import Phase, Progress
from buildctl.output.progress import PlainDisplay, QuietDisplay, make_display


def test_progress_event_reads_buildx_plain_lines() -> None:
    assert progress_event("#8 [linux/arm64 2/4] RUN python3 -c 'import flask'") == ("linux/arm64", Progress(Phase.BUILDING, (2, 4)))
    assert str(progress_event("#9 [linux/arm/v7 builder 3/7] COPY . .")[1]) == "building step 3/7"
    assert progress_event("#12 pushing layers 0.3s done") == ("", Progress(Phase.PUSHING))
    assert progress_event("#7 ERROR: failed to push: 503 Service Unavailable") is None  # may be retried
    assert progress_event("#3 DONE 0.1s") is None


def test_plain_display_prints_phases_not_steps() -> None:
    out = io.StringIO()
    display = PlainDisplay([("vote", ["linux/amd64", "linux/arm64"])], stream=out)
    display("vote", "", Progress(Phase.BUILDING))
    display("vote", "linux/arm64", Progress(Phase.BUILDING, (1, 4)))
    display("vote", "linux/arm64", Progress(Phase.BUILDING, (2, 4)))
    display("vote", "", Progress(Phase.PUSHING))
    display("vote", "linux/arm64", Progress(Phase.VERIFICATION_FAILED))
    lines = [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "vote linux/amd64: building", "vote linux/arm64: building",
        "vote linux/amd64: pushing", "vote linux/arm64: pushing",
        "vote linux/arm64: verification failed",
    ]


def test_quiet_and_non_tty_selection() -> None:
    assert isinstance(make_display([("a", ["linux/amd64"])], quiet=True), QuietDisplay)
    assert isinstance(make_display([("a", ["linux/amd64"])], quiet=False, plain=True), PlainDisplay)

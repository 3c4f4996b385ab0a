"""output.render: every human renderer prints data as it is — Rich markup, emoji codes and brackets
in names, paths, details and messages come out as typed (issue #18 item 7, issue #24), and
control characters are shown, not obeyed. Pure: result objects in, captured text out."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from buildctl.engine.results import BuilderAction, BuilderReport, LocalImage, NodeState
from buildctl.gitops.results import Drift, DriftReport, GitOpsResult
from buildctl.inspect.dockerfile import Finding, Severity
from buildctl.inspect.results import (
    Check,
    CheckStatus,
    DockerfileLint,
    DockerfileReport,
    PlatformImage,
    Verification,
)
from buildctl.output import console as output_console
from buildctl.output import render
from buildctl.pipeline.results import DoctorCheck, DoctorResult

TRAPS = ("[/bold]", "[prod]", "[red]x[/]", ":warning:", "[link=http://e.x]l[/link]")
DATA = "d " + " ".join(TRAPS)  # would raise MarkupError, vanish or turn into an emoji if parsed


def printed(result) -> str:
    """What ``render.render`` prints for a person, on the console it makes."""
    out = io.StringIO()
    made = render.console()
    made.file = out
    render.human(result, made)
    return out.getvalue()


RESULTS = {
    "doctor": DoctorResult(checks=(DoctorCheck(DATA, False, DATA, fix=DATA),)),
    "dockerfile": DockerfileReport(native="linux/amd64", services=(
        DockerfileLint(DATA, DATA, ("linux/arm64",), (Finding(DATA, 3, "emulated-build-stage", Severity.WARNING, DATA, DATA),)),
        DockerfileLint(DATA, DATA, ("linux/arm64",), ()))),
    "verification": Verification(DATA, None, (PlatformImage("linux/amd64", "sha256:" + "a" * 64),),
                                 (Check("linux/amd64", "elf", CheckStatus.FAIL, DATA),)),
    "gitops": GitOpsResult(repo=DATA, branch=DATA, commit=None, pushed=False, attempts=1, diff=f"+ {DATA}\n",
                           kept=(DATA,), rendered=(DATA,)),
    "gitops-commit": GitOpsResult(repo=DATA, branch=DATA, commit="c" * 40, pushed=True, attempts=2),
    "drift": DriftReport(repo=DATA, branch=DATA, drift=(Drift(DATA, DATA, DATA),)),
    "builder": BuilderReport(DATA, "docker-container", BuilderAction.CREATED, ("linux/amd64",),
                             nodes=(NodeState(DATA, DATA, "running", "v0.13", ("linux/amd64",)),)),
    "local-image": LocalImage(DATA, "linux/arm64", DATA, "sha256:" + "b" * 64, DATA),
}


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_data_prints_as_typed(name: str) -> None:
    text = printed(RESULTS[name])
    assert DATA in text, text


def test_control_characters_are_shown_not_obeyed() -> None:
    text = printed(DoctorResult(checks=(DoctorCheck("registry", False, "a\x1b[2Jb\rc\x07d"),)))
    assert "a\\x1b[2Jb\\x0dc\\x07d" in text
    assert "\x1b" not in text and "\r" not in text


def test_a_diff_keeps_its_crlf_line_ends_and_shows_other_controls() -> None:
    diff = "--- a/x.yaml\n+++ b/x.yaml\n-image: a:1\r\n+image: a:2\x1b]0;title\x07\rhidden\r\n"
    text = printed(GitOpsResult(repo="r", branch="main", commit=None, pushed=False, attempts=1, diff=diff))
    assert text.startswith("--- a/x.yaml\n+++ b/x.yaml\n-image: a:1\r\n+image: a:2\\x1b]0;title\\x07\\x0dhidden\r\n")


@pytest.mark.parametrize("invisible", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c", "\u2028", "\u2029"])
def test_bidi_controls_and_line_separators_are_shown_not_obeyed(invisible: str) -> None:
    """Trojan Source: "pass \\u202eliaf" displays as "pass fail" (a check detail, an ENTRYPOINT, a
    build arg in a reviewed services.yaml); a line separator starts a line no newline started."""
    shown = f"\\u{ord(invisible):04x}"
    text = printed(DoctorResult(checks=(DoctorCheck("registry", True, f"pass {invisible}liaf"),)))
    assert f"pass {shown}liaf" in text and invisible not in text
    diff = f"--- a/x.yaml\n+++ b/x.yaml\n+image: a:2  # {invisible}x\n"
    text = printed(GitOpsResult(repo="r", branch="main", commit=None, pushed=False, attempts=1, diff=diff))
    assert f"# {shown}x" in text and invisible not in text


def test_styles_are_ours_only() -> None:
    out = io.StringIO()
    colour = Console(file=out, width=80, force_terminal=True, color_system="standard", markup=False, emoji=False,
                     highlight=False)
    render.human(RESULTS["verification"], colour)
    text = out.getvalue()
    assert "\x1b[31mFAIL\x1b[0m" in text  # the verdict is red
    assert DATA in text  # the data is not: printed verbatim between our escapes


def test_the_console_reads_columns_even_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    for columns, width in (("80", 80), ("200", 200), ("", output_console.NOT_A_TERMINAL_WIDTH),
                           ("junk", output_console.NOT_A_TERMINAL_WIDTH)):
        monkeypatch.setenv("COLUMNS", columns)
        made = output_console.console()
        assert not made.is_terminal  # pytest captures stdout: a pipe
        assert made.width == width, columns


def test_the_renderers_warm_up_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """output/progress.py runs it on a thread while a release's builds run: its table goes nowhere."""
    render.warm()
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")

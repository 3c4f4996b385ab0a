"""output.ci_stream: the neutraliser every line goes through under CI. Pure: strings and streams."""

from __future__ import annotations

import io
import json
import random
import re
import sys

import pytest

from buildctl.output import ci_stream
from buildctl.output.ci_stream import (
    Command,
    NeutralisingWriter,
    neutralise,
    neutralise_line,
)
from tests.output import agents
from tests.output.icu_search import index_of


@pytest.mark.parametrize(("line", "expected"), [
    ("set ##vso[task.setvariable variable=x]y", "set \\u0023#vso[task.setvariable variable=x]y"),
    ("##vso[task.complete result=Failed]", "\\u0023#vso[task.complete result=Failed]"),
    ("a ##VSO[task.complete]b", "a \\u0023#VSO[task.complete]b"),  # matched case-insensitively
    ("##[group]x ##[error]y", "\\u0023#[group]x \\u0023#[error]y"),
    ("###vso[x]", "#\\u0023#vso[x]"),
    ("::set-output name=x::y", "\\u003a:set-output name=x::y"),
    ("   \t::error::x", "   \t\\u003a:error::x"),  # the runner trims leading white space
    ("\u00a0::error::x", "\u00a0\\u003a:error::x"),  # no-break space is white space too
    ("#\u200b#vso[x]y", "\\u0023\u200b#vso[x]y"),  # a zero-width space is skipped by culture-aware IndexOf
    ("#\u00ad#vso[x]y", "\\u0023\u00ad#vso[x]y"),  # so is a soft hyphen
    ("\ufeff::error::x", "\ufeff\\u003a:error::x"),
    ("\uff03\uff03vso\uff3bx]", "\\uff03\uff03vso\uff3bx]"),  # full-width look-alikes: escaped too
    ("#\u0640#vso[x]y", "\\u0023\u0640#vso[x]y"),  # ICU ignores the Arabic tatweel (a letter) entirely
    ("##v\ufe73so[x]y", "\\u0023#v\ufe73so[x]y"),  # and four more: see test_what_icu_finds_is_escaped
    ("\u180a::error::x", "\u180a\\u003a:error::x"),
    ("a::b ::c # x ## y [z]", "a::b ::c # x ## y [z]"),  # nothing a CI acts on: unchanged
    ("image: reg/app:1  # comment", "image: reg/app:1  # comment"),
    ("", ""),
])
def test_markers_are_broken_and_nothing_else_changes(line: str, expected: str) -> None:
    assert neutralise_line(line) == expected
    assert neutralise_line(expected) == expected  # idempotent: escaping twice changes nothing


def test_every_payload_is_inert_after_neutralising() -> None:
    for payload in agents.ALL:
        anywhere = ("prefix ", "+  ", "- x ") if payload.startswith("#") else ()
        for line in [f"{before}{payload}" for before in ("", "  ", " \t", *anywhere)] + [f" {payload.upper()}"]:
            assert agents.injected(line), line  # the model sees the raw line as a command...
            assert agents.injected(neutralise_line(line)) == [], line  # ...and nothing after


def test_carriage_returns_and_newlines_end_lines() -> None:
    text = f"ok\r{agents.GITHUB}\r\n{agents.AZURE}\nend"
    out = neutralise(text)
    assert agents.injected(out) == []
    assert out.count("\r") == 2 and out.count("\n") == 2  # line ends kept


def test_json_stays_valid_and_decodes_to_the_same_data() -> None:
    rng = random.Random(7)
    alphabet = ["#", "#", ":", ":", "[", "]", "vso", "VSO", "\\", '"', " ", "\n", "\r", "\t", "x", "\u200b", "é"]
    for _ in range(300):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        document = {"k" + value: [value, {"v": value}], "plain": value}
        for dumped in (json.dumps(document, indent=2), json.dumps(document), json.dumps(document, ensure_ascii=False)):
            out = neutralise(dumped)
            assert json.loads(out) == document
            assert agents.injected(out.replace("pwned", "")) == []
            assert agents.live_commands(out) == [], out


def test_writer_holds_a_line_until_it_ends() -> None:
    raw = io.StringIO()
    writer = NeutralisingWriter(raw)
    for chunk in ("one #", "#vso[task.setvariable variable=pwned]1\n:", ":set-output name=pwned::1\r", "\nlast"):
        writer.write(chunk)
    assert raw.getvalue() == ("one \\u0023#vso[task.setvariable variable=pwned]1\n"
                              "\\u003a:set-output name=pwned::1\r\n")
    writer.drain()
    assert raw.getvalue().endswith("\r\nlast")
    with pytest.raises(TypeError):
        writer.write(b"bytes")  # type: ignore[arg-type]


def test_commands_pass_verbatim_and_in_order() -> None:
    raw = io.StringIO()
    writer = NeutralisingWriter(raw)
    writer.write("partial ##vso[x]")
    ci_stream.write_lines(writer, [Command("##vso[task.setvariable variable=TAG]42"), f"detail {agents.AZURE}"])
    assert raw.getvalue().splitlines() == [
        "partial \\u0023#vso[x]",  # what was held comes first, on its own line's start
        "##vso[task.setvariable variable=TAG]42",
        "detail \\u0023#vso[task.setvariable variable=pwned]1",
    ]


def test_write_lines_neutralises_plain_lines_on_any_stream() -> None:
    out = io.StringIO()
    ci_stream.write_lines(out, [Command("::group::x"), agents.GITHUB, Command("::endgroup::")])
    assert out.getvalue() == "::group::x\n\\u003a:set-output name=pwned::1\n::endgroup::\n"


def test_installed_only_under_ci_and_restored_afterwards(capsys: pytest.CaptureFixture[str]) -> None:
    before = sys.stdout, sys.stderr
    with ci_stream.neutralised({}):
        assert (sys.stdout, sys.stderr) == before
    for environ in agents.ENVIRONMENTS.values():
        with ci_stream.neutralised(environ):
            assert isinstance(sys.stdout, NeutralisingWriter) and isinstance(sys.stderr, NeutralisingWriter)
            print(agents.AZURE)
            sys.stderr.write(f"no newline {agents.GITHUB}")  # held, written when the block ends
        assert (sys.stdout, sys.stderr) == before
    captured = capsys.readouterr()
    assert agents.injected(captured.out) == [] and agents.injected(captured.err) == []
    assert captured.out.count("pwned") == 2 and captured.err.count("pwned") == 2


def test_the_whole_text_path_agrees_with_line_by_line() -> None:
    """neutralise() takes one regex pass over plain ASCII text: the same result as each line alone."""
    rng = random.Random(11)
    alphabet = ["#", "#", "##vso[", "##[", ":", "::", " ", "  ", "\n", "\r", "\r\n", "x", "[", "VsO", "\t", "é"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        parts = re.split(r"(\r\n|\r|\n)", text)
        expected = "".join(neutralise_line(p) if i % 2 == 0 else p for i, p in enumerate(parts))
        assert neutralise(text) == expected, repr(text)
        assert agents.live_commands(neutralise(text)) == [], repr(text)


@pytest.mark.skipif(index_of is None, reason="libicu is not installed")
def test_what_icu_finds_is_escaped() -> None:
    """Every code point of the BMP that ICU's search (.NET's culture-aware IndexOf on Linux) skips
    between the ``#`` of ``##vso[``: the line is escaped (issue #24: the Arabic tatweel and four
    other letters and punctuation marks, which are no control, format or mark, were not)."""
    assert index_of is not None
    missed = []
    for cp in range(0x10000):
        ch = chr(cp)
        if 0xD800 <= cp < 0xE000 or ch in "\r\n#[":
            continue
        line = f"#{ch}#vso[x]"
        if index_of(line, "##vso[") == 0 and neutralise_line(line) == line:
            missed.append(f"U+{cp:04X}")
    assert missed == []

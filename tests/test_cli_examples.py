"""Every verb's --help ends with real examples (issue #15): each one names an existing verb and
options that verb has, checked against the real CLI, and the pure ones run."""

from __future__ import annotations

import functools
import json
import re
import shlex

import pytest
import typer

from buildctl import cli
from tests.helpers.cli import run_cli

_SHELL_OPERATORS = {">", ">>", "|", "&&", ";"}


@functools.cache
def verbs() -> tuple[str, ...]:
    result = run_cli("--help")
    assert result.code == 0, result.output
    return tuple(re.findall(r"^  ([a-z][\w-]*)(?:\s|$)", result.stdout.split("Commands:", 1)[1], re.MULTILINE))


def examples(help_text: str) -> list[list[str]]:
    """The argv of each example at the end of ``help_text`` (up to a shell redirection or pipe)."""
    assert "Examples:" in help_text, help_text
    lines = [line.strip() for line in help_text.split("Examples:", 1)[1].splitlines() if line.strip()]
    assert lines and not lines[-1].startswith("#"), "the help must end with a command"
    commands = []
    for line in lines:
        if line.startswith("#"):
            continue
        words = shlex.split(line)
        cut = next((i for i, word in enumerate(words) if word in _SHELL_OPERATORS), len(words))
        commands.append(words[:cut])
    return commands


def test_the_parser_reads_the_layout() -> None:
    text = "Options:\n  --help\n\n  Examples:\n\n    # why\n    buildctl plan --json\n    # more\n    buildctl schema | jq .\n"
    assert examples(text) == [["buildctl", "plan", "--json"], ["buildctl", "schema"]]
    with pytest.raises(AssertionError):
        examples("Options:\n  --help\n")


def test_every_verb_is_covered() -> None:
    assert {"plan", "doctor", "build", "run", "verify", "update-manifests", "completion", "schema"} <= set(verbs())


@pytest.mark.parametrize("verb", verbs())
def test_help_ends_with_real_examples(verb: str) -> None:
    result = run_cli(verb, "--help")
    assert result.code == 0, result.output
    commands = examples(result.stdout)
    assert 2 <= len(commands) <= 3, commands
    for argv in commands:
        assert argv[:2] == ["buildctl", verb], argv
        parse(argv[1:])


def parse(args: list[str]) -> None:
    """Parse ``args`` with the CLI's own click command, as `buildctl ARGS` would, without running
    it: an unknown verb or option, a bad value (e.g. a shell that is not a choice), a missing
    argument or an extra one raises."""
    command = typer.main.get_command(cli.app)
    sub = command.get_command(command.make_context("buildctl", list(args), resilient_parsing=True), args[0])
    assert sub is not None, f"unknown verb {args[0]!r}"
    sub.make_context(args[0], list(args[1:]))


def test_parse_rejects_what_the_cli_lacks() -> None:
    parse(["plan", "vote", "--json"])
    for bad in (["plan", "--weekly"], ["completion", "ksh"], ["schema", "extra"], ["release"]):
        with pytest.raises((AssertionError, typer.TyperException)):
            parse(bad)


def test_help_keeps_one_example_per_line() -> None:
    # click rewraps paragraphs; the \b marker keeps the examples as written, even at 80 columns.
    result = run_cli("verify", "--help", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert "    buildctl verify myacr.azurecr.io/app:2 --platform linux/arm64 --allow-extra-platforms" in lines


def test_the_plan_examples_run() -> None:
    # plan is pure: its examples run as written against the sample project.
    assert run_cli("plan").code == 0
    result = run_cli("plan", "vote", "--tag", "1.4.0", "--json")
    assert result.code == 0, result.output
    assert "1.4.0" in json.dumps(json.loads(result.stdout))

"""One error hierarchy for buildctl, and the exit codes the CLI maps it to.

Every error a user can cause or meet carries a one-line ``message`` and an optional ``hint``
(how to fix it). ``error_handler.run`` prints exactly that; ``--debug`` adds the traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from buildctl.redaction import redact_url

# Exit codes are part of the CLI contract (README, "Exit codes"); scripts depend on them.
EXIT_OK = 0
EXIT_FAILED = 1  # an operation failed: a build, a push, a verification that found a problem
EXIT_BAD_INPUT = 2  # bad input or configuration; nothing was done
EXIT_BUG = 3  # an unexpected exception: a bug in buildctl
EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM
# What each means, for `buildctl --help` and the README's table (tests/test_cli_conventions.py).
EXIT_CODES = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "an operation failed: a build, a push, a verification that found a problem, a Git push"),
    (EXIT_BAD_INPUT, "bad input or configuration (nothing was done)"),
    (EXIT_BUG, "a bug in buildctl (rerun with --debug and report it)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C or SIGTERM); child processes are stopped, nothing half-tagged"),
)


class BuildctlError(Exception):
    """Base of every error buildctl reports to the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(BuildctlError):
    """services.yaml (or another input file) is invalid. Carries file and line when known."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        what = f"{key}: " if key else ""
        super().__init__(f"{where}{what}{message}", hint=hint)
        self.file = file
        self.line = line
        self.key = key


class UsageError(BuildctlError):
    """A command-line argument or environment value is invalid."""

    exit_code = EXIT_BAD_INPUT


class OperationError(BuildctlError):
    """Something buildctl tried to do failed (build, push, verify, git push...)."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class CommandFailure:
    """What a failed external command left behind; secrets are redacted before this is built."""

    command: tuple[str, ...]
    returncode: int
    output: str


class CommandError(OperationError):
    """An external command (docker, git) exited non-zero.

    The message names the command, its exit code and the tail of its output, like pre-commit's
    CalledProcessError. Secrets travel via stdin or the environment only, so argv and output hold
    none of ours; a credential inside a URL (a user's remote, a registry's error text) is removed
    here, once, for every command that fails (redaction.redact_url).
    """

    def __init__(
        self,
        what: str,
        *,
        command: Sequence[str],
        returncode: int,
        output: str,
        hint: str | None = None,
        tail_lines: int = 20,
    ) -> None:
        command = tuple(redact_url(str(part)) for part in command)
        output = redact_url(output)
        tail = "\n".join(output.strip().splitlines()[-tail_lines:]) if tail_lines > 0 else ""
        shown = " ".join(command)
        message = f"{what}: `{shown}` exited {returncode}"
        if tail:
            message += "\n" + "\n".join(f"    {line}" for line in tail.splitlines())
        super().__init__(message, hint=hint)
        self.failure = CommandFailure(tuple(command), returncode, output)

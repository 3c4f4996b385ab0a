"""Exit codes decided in one place (README "Exit codes"), as pre-commit's error_handler does.

0 ok, 1 an operation failed, 2 bad input, 3 a bug, 130 interrupted. One error line (plus a hint)
on stderr; --debug adds the traceback. Every verb's errors reach the user through ``run``.

Under CI, everything printed while ``run`` runs (results, errors, log records, click's usage
errors, tracebacks) goes through one neutraliser (``output.ci_stream``): no text from outside
becomes an Azure Pipelines or GitHub Actions logging command; everywhere, control characters in
errors, log records and tracebacks are shown as escapes (``output/visible.py``).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import typer

from buildctl import cli_completion, errors, interrupts
from buildctl.output import ci_stream
from buildctl.output.visible import visible
from buildctl.redaction import redact


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return visible(redact(super().format(record)))


class _State:
    debug = False


class _StderrHandler(logging.StreamHandler):
    """Log records to the ``sys.stderr`` of the moment: the CI neutraliser while ``run`` runs."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns one; the property decides
        pass


def configure(*, debug: bool) -> None:
    """--debug: tracebacks, and every buildctl log record. Otherwise WARNING and up (retries, renewed
    logins) on stderr, so a CI log shows them. Only the ``buildctl`` loggers: libraries stay quiet."""
    _State.debug = debug
    logger = logging.getLogger("buildctl")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_RedactingFormatter("buildctl: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def run(app: typer.Typer, argv: list[str] | None) -> None:
    """Run the CLI ``app`` and exit with the code its outcome maps to."""
    with ci_stream.neutralised(os.environ):
        _run(app, argv)


def _run(app: typer.Typer, argv: list[str] | None) -> None:
    interrupts.install()
    if os.environ.get(cli_completion.COMPLETE_VAR):  # a completion request from the shell script
        cli_completion.enable()
    try:
        # standalone_mode=False: click returns typer.Exit codes instead of exiting, and lets
        # our errors through so they are printed here, once.
        rc = app(args=argv, standalone_mode=False, prog_name="buildctl")
    except (typer.Abort, KeyboardInterrupt):
        _report_interrupt()
        sys.exit(errors.EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # bad arguments (typer's bundled click): its message, exit 2
        exc.show()
        sys.exit(errors.EXIT_BAD_INPUT)
    except errors.BuildctlError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort: report a bug, exit 3
        if _State.debug:
            _print_traceback()
        # Even a bug's message may hold a URL with a token (a library's error about a remote).
        sys.stderr.write(f"buildctl: internal error (a bug): {type(exc).__name__}: {visible(redact(str(exc)))}\n"
                         "  rerun with --debug for the traceback and report it\n")
        sys.exit(errors.EXIT_BUG)
    if rc == errors.EXIT_INTERRUPTED:  # typer turns KeyboardInterrupt into Exit(130) itself
        _report_interrupt()
    sys.exit(rc if isinstance(rc, int) else errors.EXIT_OK)


def _report_interrupt() -> None:
    """Exits 130 (interrupts.exit_interrupted): children stopped, one line, within 2 s."""
    interrupts.exit_interrupted("buildctl: interrupted; stopped {stopped} child process(es); nothing half-tagged, "
                                "and Git changed only if a push had completed\n")


def _print_traceback() -> None:
    sys.stderr.write(visible(redact(traceback.format_exc())))  # registry secrets and URL credentials: never shown


def _print_error(exc: errors.BuildctlError) -> None:
    if _State.debug:
        _print_traceback()
    # Messages quote outside text (a git remote's rejection, a build's output): its control
    # characters show as \x1b, never set the terminal's title or rewrite the lines above.
    sys.stderr.write(f"buildctl: error: {visible(redact(exc.message))}\n")
    if exc.hint:
        sys.stderr.write(f"  hint: {visible(redact(exc.hint))}\n")

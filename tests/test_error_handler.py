"""buildctl.errors and buildctl.error_handler: each outcome maps to its documented exit code (README
"Exit codes": 1 failed, 2 bad input, 3 bug, 130 interrupted) with one error line and its hint, and
a failed command's message names it, its exit code and its output's tail, credentials removed.

error_handler.run is driven for real: a small typer app in a subprocess of this Python (it installs
signal handlers and may os._exit, which must not happen to the test process)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from buildctl import errors
from buildctl.errors import (
    BuildctlError,
    CommandError,
    ConfigError,
    OperationError,
    UsageError,
)
from tests.helpers.cli import PROJECT
from tests.output.agents import AZURE, ENVIRONMENTS, GITHUB, injected

TOKEN = "ghp_S3cr3tT0kenValue0123456789abcdef"
INTERRUPTED = ("buildctl: interrupted; stopped {n} child process(es); nothing half-tagged, "
               "and Git changed only if a push had completed\n")

APP = f"""
import os, signal, subprocess, sys, threading, time
import typer
from buildctl import error_handler, errors

app = typer.Typer(add_completion=False)
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]

@app.command()
def main(what: str, debug: bool = typer.Option(False, "--debug")) -> None:
    error_handler.configure(debug=debug)
    if what == "failed":
        raise errors.OperationError("pushing vote failed", hint="check the registry is up")
    if what == "config":
        raise errors.ConfigError("must be a list", file="services.yaml", line=12, key="services.api.platforms",
                                 hint="platforms: [linux/amd64]")
    if what == "usage":
        raise errors.UsageError("--jobs must be at least 1")
    if what == "command":
        raise errors.CommandError("pushing the GitOps commit", returncode=128,
                                  command=["git", "push", "https://u:{TOKEN}@h.io/o/r.git"],
                                  output="remote: denied to https://{TOKEN}@h.io/o/r.git")
    if what == "bug":
        raise KeyError("services")
    if what == "secret-bug":
        raise RuntimeError("cannot reach https://x-access-token:{TOKEN}@github.com/org/gitops.git")
    if what == "ctrl-c":
        raise KeyboardInterrupt
    if what == "abort":
        raise typer.Abort()
    if what in ("SIGINT", "SIGTERM"):
        os.kill(os.getpid(), getattr(signal, what))
        time.sleep(30)
    if what == "children":
        procs = [subprocess.Popen(SLEEPER) for _ in range(2)]
        print(" ".join(str(p.pid) for p in procs), flush=True)
        raise KeyboardInterrupt
    if what == "stuck-thread":
        threading.Thread(target=time.sleep, args=(60,)).start()  # not a daemon
        raise KeyboardInterrupt
    if what == "exit-7":
        raise typer.Exit(7)
    if what == "inject":  # text from outside in a log record, a partial line, a message and its hint
        import logging
        logging.getLogger("buildctl.registry").warning("registry said %s", {AZURE!r})
        print("partial " + {AZURE!r}, end="")
        raise errors.OperationError("tag refused\\n" + {GITHUB!r}, hint={AZURE!r})
    if what == "inject-bug":
        raise RuntimeError({AZURE!r} + "\\r" + {GITHUB!r})

error_handler.run(app, sys.argv[1:])
"""


@pytest.fixture(scope="module")
def app_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("app") / "app.py"
    path.write_text(APP)  # a file, so that tracebacks show its source lines
    return path


@pytest.fixture
def run_app(app_file: Path):
    def run(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(app_file), *args], check=False, capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "COLUMNS": "200",
                                   "PYTHONPATH": str(PROJECT), **(env or {})})
        return proc, time.monotonic() - started

    return run


# --------------------------------------------------------------------------- errors.py


@pytest.mark.parametrize(("error", "code"), [
    (BuildctlError("x"), 1), (OperationError("x"), 1), (UsageError("x"), 2), (ConfigError("x"), 2),
    (CommandError("x", command=["git"], returncode=1, output=""), 1),
])
def test_each_error_carries_its_exit_code(error: BuildctlError, code: int) -> None:
    assert error.exit_code == code
    assert (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_BAD_INPUT, errors.EXIT_BUG,
            errors.EXIT_INTERRUPTED) == (0, 1, 2, 3, 130)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"file": "services.yaml", "line": 12, "key": "services.api.image"}, "services.yaml:12: services.api.image: bad"),
    ({"file": "services.yaml", "line": 1}, "services.yaml:1: bad"),
    ({"file": "services.yaml"}, "services.yaml: bad"),  # no line known: the file alone, no ':None'
    ({"file": "k8s/a b.yaml", "line": 3}, "k8s/a b.yaml:3: bad"),
    ({"key": "--tag"}, "--tag: bad"),
    ({}, "bad"),
])
def test_config_errors_say_where(kwargs: dict, message: str) -> None:
    error = ConfigError("bad", hint="fix it", **kwargs)
    assert str(error) == error.message == message
    assert (error.file, error.line, error.key, error.hint) == (kwargs.get("file"), kwargs.get("line"),
                                                               kwargs.get("key"), "fix it")


def test_a_command_error_names_the_command_its_code_and_its_output_tail() -> None:
    output = "\n".join(f"line {i}" for i in range(1, 31)) + "\n\n"
    error = CommandError("building vote", command=["docker", "buildx", "build", "."], returncode=17, output=output)
    head, *tail = str(error).splitlines()
    assert head == "building vote: `docker buildx build .` exited 17"
    assert tail == [f"    line {i}" for i in range(11, 31)]  # the last 20 lines, indented
    assert error.exit_code == errors.EXIT_FAILED and isinstance(error, OperationError)
    assert error.failure == errors.CommandFailure(("docker", "buildx", "build", "."), 17, output)  # all of it


def test_a_command_error_without_output_is_one_line() -> None:
    error = CommandError("x", command=["git", "fetch"], returncode=1, output=" \n\t\n", tail_lines=5)
    assert str(error) == "x: `git fetch` exited 1"
    short = CommandError("x", command=["git"], returncode=2, output="a\nb\nc\n", tail_lines=2)
    assert str(short) == "x: `git` exited 2\n    b\n    c"


def test_a_command_error_removes_credentials_everywhere() -> None:
    error = CommandError("cloning", returncode=128,
                         command=["git", "clone", f"https://x-access-token:{TOKEN}@github.com/o/r.git", "dir"],
                         output=f"fatal: unable to access 'https://{TOKEN}@github.com/o/r.git/'\n"
                                f"remote: u:{TOKEN}@host.io:o/r\n")
    for text in (str(error), error.message, " ".join(error.failure.command), error.failure.output):
        assert TOKEN not in text
    assert str(error).splitlines()[0] == "cloning: `git clone https://github.com/o/r.git dir` exited 128"
    assert error.failure.command[2] == "https://github.com/o/r.git"


def test_tail_lines_zero_shows_no_output() -> None:
    error = CommandError("x", command=["git"], returncode=1, output="one\ntwo\n", tail_lines=0)
    assert str(error) == "x: `git` exited 1"


# --------------------------------------------------------------------------- error_handler.run


@pytest.mark.parametrize(("what", "code", "stderr"), [
    ("failed", 1, "buildctl: error: pushing vote failed\n  hint: check the registry is up\n"),
    ("config", 2, ("buildctl: error: services.yaml:12: services.api.platforms: must be a list\n"
                   "  hint: platforms: [linux/amd64]\n")),
    ("usage", 2, "buildctl: error: --jobs must be at least 1\n"),
    ("command", 1, ("buildctl: error: pushing the GitOps commit: `git push https://h.io/o/r.git` exited 128\n"
                    "    remote: denied to https://h.io/o/r.git\n")),
    ("bug", 3, ("buildctl: internal error (a bug): KeyError: 'services'\n"
                "  rerun with --debug for the traceback and report it\n")),
])
def test_each_outcome_is_one_message_and_its_exit_code(run_app, what: str, code: int, stderr: str) -> None:
    proc, _ = run_app(what)
    assert (proc.returncode, proc.stderr, proc.stdout) == (code, stderr, "")


def test_success_and_explicit_exit_codes_pass_through(run_app) -> None:
    assert run_app("nothing")[0].returncode == 0
    assert run_app("exit-7")[0].returncode == 7


@pytest.mark.parametrize("args", [["--bogus", "x"], [], ["a", "b"]])
def test_bad_arguments_exit_2_without_a_traceback(run_app, args: list[str]) -> None:
    proc, _ = run_app(*args)
    assert proc.returncode == errors.EXIT_BAD_INPUT
    assert "Usage: buildctl" in proc.stderr and "Traceback" not in proc.stderr


def test_debug_adds_the_traceback_and_keeps_the_exit_code(run_app) -> None:
    bug, _ = run_app("bug", "--debug")
    assert bug.returncode == 3
    assert bug.stderr.startswith("Traceback (most recent call last):")
    assert 'raise KeyError("services")' in bug.stderr
    assert bug.stderr.endswith("buildctl: internal error (a bug): KeyError: 'services'\n"
                               "  rerun with --debug for the traceback and report it\n")
    failed, _ = run_app("config", "--debug")
    assert failed.returncode == 2
    assert "Traceback" in failed.stderr and "errors.ConfigError" in failed.stderr
    assert "buildctl: error: services.yaml:12: services.api.platforms: must be a list\n" in failed.stderr
    assert "Traceback" not in run_app("config")[0].stderr


@pytest.mark.parametrize("what", ["ctrl-c", "abort", "SIGINT", "SIGTERM"])
def test_interrupts_exit_130_with_one_line(run_app, what: str) -> None:
    proc, took = run_app(what)
    assert proc.returncode == errors.EXIT_INTERRUPTED, proc.stderr
    assert proc.stderr == INTERRUPTED.format(n=0)  # one line, no traceback, no "Aborted!"
    assert took < 20  # not the 30 s the command would have slept


def test_an_interrupt_stops_the_children_it_started(run_app) -> None:
    proc, _ = run_app("children")
    assert proc.returncode == 130
    assert INTERRUPTED.format(n=2) in proc.stderr
    pids = [int(pid) for pid in proc.stdout.split()]
    assert len(pids) == 2
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_thread_still_blocked_does_not_keep_the_process_alive(run_app) -> None:
    proc, took = run_app("stuck-thread")
    assert proc.returncode == 130
    assert INTERRUPTED.format(n=0) in proc.stderr
    assert took < 10  # the thread sleeps 60 s


def test_an_unexpected_error_does_not_print_credentials(run_app) -> None:
    proc, _ = run_app("secret-bug")
    assert proc.returncode == 3
    assert TOKEN not in proc.stderr


# --------------------------------------------------------------------------- CI logs (issue #24)


@pytest.mark.parametrize("ci", sorted(ENVIRONMENTS))
@pytest.mark.parametrize("what", ["inject", "inject-bug"])
def test_under_ci_no_printed_text_is_a_log_command(run_app, ci: str, what: str) -> None:
    proc, _ = run_app(what, env=ENVIRONMENTS[ci])
    assert proc.returncode == (errors.EXIT_FAILED if what == "inject" else errors.EXIT_BUG)
    assert injected(proc.stdout) == [] and injected(proc.stderr) == [], proc.stdout + proc.stderr
    shown = proc.stdout + proc.stderr
    assert shown.count("pwned") == (4 if what == "inject" else 2)  # escaped, never dropped
    if what == "inject":
        assert proc.stdout == "partial \\u0023#vso[task.setvariable variable=pwned]1"  # held, then written at exit
        assert "buildctl: WARNING: registry said \\u0023#vso[" in proc.stderr


def test_outside_ci_text_is_printed_as_it_is(run_app) -> None:
    proc, _ = run_app("inject")
    assert proc.stdout == "partial " + AZURE
    assert proc.stderr.splitlines()[1:] == ["buildctl: error: tag refused", GITHUB, f"  hint: {AZURE}"]

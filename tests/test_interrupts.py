"""buildctl.interrupts: SIGINT and SIGTERM become one KeyboardInterrupt, critical() defers it to the
section's end, children are stopped (then killed) within the grace time, and an interrupted exit is
130 even with a thread still blocked.

Real signals, sent by a subprocess of this Python to itself: installing handlers, killing every
child and os._exit must not happen to the test process. (The CLI end to end: tests/e2e.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from buildctl import interrupts
from tests.helpers.cli import PROJECT

PRELUDE = """
import os, signal, subprocess, sys, threading, time
from buildctl import interrupts
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
"""


def python(code: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], check=False, capture_output=True,
                          text=True, timeout=timeout, cwd=PROJECT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT)})


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_both_signals_raise_keyboard_interrupt_and_set_the_event(signum: str) -> None:
    proc = python(f"""
        interrupts.install()
        try:
            os.kill(os.getpid(), signal.{signum})
            time.sleep(10)
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", interrupts.interrupted.is_set())
    """)
    assert (proc.returncode, proc.stdout) == (0, "interrupted True\n"), proc.stderr


def test_a_critical_section_runs_to_its_end_then_raises_once() -> None:
    proc = python("""
        interrupts.install()
        steps = []
        try:
            with interrupts.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)
                steps.append("after-signal")
                with interrupts.critical():  # nested: only the outermost end raises
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.2)
                steps.append("inner-done")
            steps.append("past the section")
        except KeyboardInterrupt:
            steps.append("interrupted")
        time.sleep(0.2)  # a second, pending interrupt would surface here
        steps.append("calm")
        print(",".join(steps))
    """)
    assert proc.stdout == "after-signal,inner-done,interrupted,calm\n", proc.stderr
    assert proc.returncode == 0


def test_an_interrupt_during_a_failing_section_wins_over_its_error() -> None:
    proc = python("""
        interrupts.install()
        try:
            with interrupts.critical():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.1)
                raise ValueError("tagging failed")
        except KeyboardInterrupt as exc:
            print("interrupted after", type(exc.__context__).__name__)
    """)
    assert proc.stdout == "interrupted after ValueError\n", proc.stderr


def test_a_section_left_by_an_error_defers_nothing_afterwards() -> None:
    proc = python("""
        interrupts.install()
        try:
            with interrupts.critical():
                raise ValueError("x")
        except ValueError:
            print("error passed through")
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            print("deferred")
        except KeyboardInterrupt:
            print("immediate")
    """)
    assert proc.stdout == "error passed through\nimmediate\n", proc.stderr


def test_a_section_without_a_signal_raises_nothing() -> None:
    with interrupts.critical(), interrupts.critical():  # in-process: critical() touches no signal handler
        pass
    with pytest.raises(LookupError), interrupts.critical():
        raise LookupError
    with interrupts.critical():  # the depth came back to zero: an error above did not leave it raised
        pass


def test_install_off_the_main_thread_changes_nothing() -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            interrupts.install()
            interrupts.ignore()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert errors == []
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook) == before


def test_ignore_lets_the_exit_finish() -> None:
    proc = python("""
        interrupts.install()
        interrupts.ignore()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        print("still here")
    """)
    assert (proc.returncode, proc.stdout) == (0, "still here\n")


def test_an_interrupt_lost_in_a_destructor_is_delivered_again() -> None:
    proc = python("""
        interrupts.install()

        class Holder:
            def __del__(self):
                raise KeyboardInterrupt  # Python can only print this one ("Exception ignored")

        try:
            Holder()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.01)
            print("lost")
        except KeyboardInterrupt:
            print("delivered")
    """)
    assert proc.stdout == "delivered\n", proc.stderr
    assert "Exception ignored" not in proc.stderr


def test_other_unraisable_errors_are_still_reported() -> None:
    proc = python("""
        interrupts.install()

        class Holder:
            def __del__(self):
                raise ValueError("in a destructor")

        Holder()
        time.sleep(0.3)
        print("done")
    """)
    assert (proc.returncode, proc.stdout) == (0, "done\n")
    assert "Exception ignored" in proc.stderr and "ValueError: in a destructor" in proc.stderr


def test_terminate_children_stops_the_whole_tree_and_kills_the_stubborn() -> None:
    proc = python("""
        import psutil
        stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                     "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                                     "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; p = subprocess.Popen("
                                   "[sys.executable, '-c', 'import time; time.sleep(60)']); print(p.pid, flush=True); "
                                   "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        plain = subprocess.Popen(SLEEPER)
        assert stubborn.stdout.readline() == "ready\\n"
        grandchild = int(parent.stdout.readline())
        started = time.monotonic()
        count = interrupts.terminate_children(timeout=0.5)
        took = time.monotonic() - started
        deadline = time.monotonic() + 5
        for pid in (stubborn.pid, parent.pid, plain.pid, grandchild):
            while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                assert time.monotonic() < deadline, f"{pid} survived"
                time.sleep(0.05)
        print(count, 0.4 < took < 1.5)  # the grace for the stubborn one, then SIGKILL
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "4 True\n"


@pytest.mark.parametrize("stuck", [False, True])
def test_exit_interrupted_is_130_now(stuck: bool) -> None:
    proc = python(f"""
        if {stuck}:
            threading.Thread(target=time.sleep, args=(60,)).start()  # not a daemon
        child = subprocess.Popen(SLEEPER)
        try:
            interrupts.exit_interrupted("interrupted; stopped {{stopped}} child process(es)\\n")
        finally:
            print("finally ran", interrupts.interrupted.is_set(), flush=True)
        print("after the exit")
    """, timeout=15)
    assert proc.returncode == interrupts.EXIT_INTERRUPTED == 130
    assert proc.stderr == "interrupted; stopped 1 child process(es)\n"
    # sys.exit unwinds through finally; with a thread left, os._exit (after flushing) does not.
    assert proc.stdout == ("" if stuck else "finally ran True\n")


def test_the_grace_time_keeps_the_exit_within_two_seconds() -> None:
    assert 0 < interrupts.CHILD_GRACE_SECONDS <= 1.5
    proc = python("""
        child = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                  "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                                  "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline() == "ready\\n"
        started = time.monotonic()
        try:
            interrupts.exit_interrupted("stopped {stopped}\\n")
        finally:
            print(time.monotonic() - started < 2.0, flush=True)
    """)
    assert (proc.returncode, proc.stdout, proc.stderr) == (130, "True\n", "stopped 1\n")


def test_a_deferred_interrupt_sets_the_event_too() -> None:
    proc = python("""
        interrupts.install()
        try:
            with interrupts.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.1)
        except KeyboardInterrupt:
            print("interrupted", interrupts.interrupted.is_set())
    """)
    assert proc.stdout == "interrupted True\n", proc.stderr

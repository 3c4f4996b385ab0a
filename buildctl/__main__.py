"""`python -m buildctl` and the `buildctl` script.

Signal handlers first, before typer, rich and the rest are imported (~0.3 s): a SIGTERM during
start-up is then an interrupt (exit 130) like any other, not the default death by signal (143).
"""

import os
import sys
import threading

from buildctl import interrupts


def main() -> None:
    interrupts.install()
    try:
        from buildctl.cli import main as cli_main

        cli_main()  # reports its own interrupts; this catches one before (or between) its handlers
    except KeyboardInterrupt:
        interrupts.exit_interrupted("buildctl: interrupted; stopped {stopped} child process(es)\n")
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    finally:
        # The work is over and the exit code decided: a signal now must not turn it into 143
        # (Python restores the default handlers while it shuts down).
        interrupts.ignore()
    _exit(code)


def _exit(code: object) -> None:
    """Exit with ``code`` without the interpreter's teardown: freeing every module and object one
    by one costs ~0.1 s after a release (issue #20), and nothing is left to do — every `finally`
    and context manager of the main thread has run, and the atexit functions run here. Only when no other thread still works (their
    writes are atomic, but a normal exit would wait for them) and ``code`` is a number."""
    if not isinstance(code, int) or any(t.is_alive() and not t.daemon for t in threading.enumerate()
                                        if t is not threading.main_thread()):
        raise SystemExit(code)
    import atexit

    atexit._run_exitfuncs()  # what a normal exit runs first: logging's flush, coverage, tests' probes
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: as Python's own exit, nothing to add
            code = code or 120  # what Python exits with when it cannot flush stdout
    os._exit(code)


if __name__ == "__main__":
    main()

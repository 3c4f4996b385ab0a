"""`python -m buildctl` and the `buildctl` script.

Signal handlers first, before typer, rich and the rest are imported (~0.3 s): a SIGTERM during
start-up is then an interrupt (exit 130) like any other, not the default death by signal (143).
"""

from buildctl import interrupts


def main() -> None:
    interrupts.install()
    try:
        from buildctl.cli import main as cli_main

        cli_main()  # reports its own interrupts; this catches one before (or between) its handlers
    except KeyboardInterrupt:
        interrupts.exit_interrupted("buildctl: interrupted; stopped {stopped} child process(es)\n")
    finally:
        # The work is over and the exit code decided: a signal now must not turn it into 143
        # (Python restores the default handlers while it shuts down).
        interrupts.ignore()


if __name__ == "__main__":
    main()

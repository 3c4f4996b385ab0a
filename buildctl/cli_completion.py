"""Shell completion: `buildctl completion bash|zsh|fish` prints the script; the script calls
buildctl back with _BUILDCTL_COMPLETE set, and typer answers before parsing anything.

The app is built with add_completion=False (no --install-completion/--show-completion options,
which edit rc files), so nothing registers typer's shell classes: its bundled click then answers
every completion request with "Shell bash not supported." ``enable()`` registers them.
"""

from __future__ import annotations

from enum import StrEnum

PROG = "buildctl"
COMPLETE_VAR = "_BUILDCTL_COMPLETE"


class Shell(StrEnum):
    BASH = "bash"
    ZSH = "zsh"
    FISH = "fish"


def enable() -> None:
    from typer.completion import completion_init

    completion_init()


def script(shell: Shell) -> str:
    """The completion script for ``shell``: the one typer's own --show-completion prints."""
    from typer.completion import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value)

"""Shell completion: `buildctl completion bash|zsh|fish` prints the script; the script calls
buildctl back with _BUILDCTL_COMPLETE set, and typer answers before parsing anything: verbs and
options (click), service names (from the services.yaml that -f/--config names) and platforms.

bash loads ~/.local/share/bash-completion/completions/buildctl only through the bash-completion
package's loader (Debian: `apt-get install bash-completion`, then a new shell); without it, source
the script from ~/.bashrc instead.

The app is built with add_completion=False (no --install-completion/--show-completion options,
which edit rc files), so nothing registers typer's shell classes: its bundled click then answers
every completion request with "Shell bash not supported." ``enable()`` registers them.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

PROG = "buildctl"
COMPLETE_VAR = "_BUILDCTL_COMPLETE"
DEFAULT_CONFIG = "services.yaml"


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


def services(ctx, incomplete: str) -> list[str]:
    """Service names of the services.yaml the command line names so far (-f/--config, default
    ./services.yaml). Read leniently: no validation, no ${VAR} (a completion must never fail)."""
    import yaml

    path = Path((ctx.params.get("config") if ctx is not None else None) or DEFAULT_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    names = data.get("services") if isinstance(data, dict) else None
    if not isinstance(names, dict):
        return []
    chosen = set(ctx.params.get("services") or ()) if ctx is not None else set()
    return [str(n) for n in names if str(n).startswith(incomplete) and str(n) not in chosen]


def platforms(incomplete: str) -> list[str]:
    """Supported platforms; in a comma list (``linux/amd64,linux/a``), the last item."""
    from buildctl.platforms import names

    done, _, last = incomplete.rpartition(",")
    prefix = done + "," if done else ""
    taken = set(done.split(",")) if done else set()
    return [prefix + name for name in names() if name.startswith(last) and name not in taken]

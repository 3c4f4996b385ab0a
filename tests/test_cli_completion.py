"""`buildctl completion bash|zsh|fish`: the script, and completion answering for real (issue #15)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, run_cli

VENV_BIN = Path(sys.executable).parent


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_prints_the_script(shell: str) -> None:
    result = run_cli("completion", shell)
    assert result.code == 0, result.output
    assert "_BUILDCTL_COMPLETE=complete_" + shell in result.stdout
    assert result.stdout.count("buildctl") >= 2  # registered for the command, and calls it back


def test_an_unknown_shell_is_bad_input() -> None:
    result = run_cli("completion", "ksh")
    assert result.code == 2 and "'ksh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def _complete(env: dict[str, str]) -> subprocess.CompletedProcess:
    # The console script, as the shell runs it: through cli.main (standalone_mode=False).
    return subprocess.run([sys.executable, "-m", "buildctl"], env={**os.environ, **env}, cwd=PROJECT,
                          check=False, capture_output=True, text=True, timeout=60)


def test_the_completion_protocol_answers() -> None:
    result = _complete({"_BUILDCTL_COMPLETE": "complete_bash", "COMP_WORDS": "buildctl pl", "COMP_CWORD": "1"})
    assert (result.returncode, result.stdout.split()) == (0, ["plan"])
    result = _complete({"_BUILDCTL_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "buildctl build --lo"})
    assert result.returncode == 0 and "--local" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_with_the_printed_script() -> None:
    """The whole loop in a real bash: source the script, then call its completion function the way
    bash's programmable completion does (COMP_WORDS, COMP_CWORD, the command name as $1)."""
    script = run_cli("completion", "bash").stdout
    probe = script + '''
complete -p buildctl >/dev/null || exit 9
for words in "buildctl pl" "buildctl build --lo" "buildctl completion z"; do
  read -r -a COMP_WORDS <<<"$words"; COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
  _buildctl_completion buildctl; echo "${COMPREPLY[*]}"
done
'''
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("buildctl", path=str(VENV_BIN)), "the console script: pip install -e ."
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], env=env, cwd=PROJECT,
                            check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["plan", "--local", "zsh"]

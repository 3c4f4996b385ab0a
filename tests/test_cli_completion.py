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


def _words(line: str, *, cwd: Path = PROJECT) -> list[str]:
    """What completion offers for the last word of ``line`` (the protocol bash's script speaks)."""
    words = line.split(" ")
    result = subprocess.run([sys.executable, "-m", "buildctl"], cwd=cwd, check=False, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "_BUILDCTL_COMPLETE": "complete_bash",
                                                        "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)})
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_service_names_complete_from_the_config(tmp_path: Path) -> None:
    assert _words("buildctl build ") == ["vote", "result", "worker"]
    assert _words("buildctl plan vote w") == ["worker"]
    assert _words("buildctl run vote ") == ["result", "worker"]  # one already named
    other = tmp_path / "deploy.yaml"
    other.write_text("tag: ${UNSET_IN_COMPLETION}\nservices:\n  api: {}\n  web: {}\n")  # not valid: names still
    assert _words(f"buildctl plan -f {other} ") == ["api", "web"]
    assert _words(f"buildctl plan --config {other} w") == ["web"]
    assert _words("buildctl plan ", cwd=tmp_path) == []  # no services.yaml here: nothing, no error


def test_platforms_complete_also_inside_a_comma_list() -> None:
    assert _words("buildctl verify img --platform linux/arm6") == ["linux/arm64"]
    assert _words("buildctl verify img --platform linux/amd64,linux/arm6") == ["linux/amd64,linux/arm64"]
    assert "linux/arm/v7" in _words("buildctl build --local --platform linux/ar")
    assert "linux/amd64,linux/amd64" not in _words("buildctl verify img --platform linux/amd64,linux/amd")


def test_options_complete_with_the_buildx_spellings() -> None:
    offered = _words("buildctl build --")
    assert {"--file", "--builder", "--progress", "--metadata-file", "--platform", "--help"} <= set(offered)
    assert _words("buildctl build --progress ") == ["auto", "plain", "tty", "quiet"]


@pytest.mark.skipif(not Path("/usr/share/bash-completion/bash_completion").is_file(),
                    reason="needs the bash-completion package (scripts/stack.sh installs it)")
def test_bash_completion_loads_the_installed_script_as_the_readme_says(tmp_path: Path) -> None:
    """A login shell of a fresh Debian user with bash-completion installed: the script goes where the
    README says, and bash-completion's loader (complete -D) finds it on the first Tab."""
    home = tmp_path / "home"
    target = home / ".local/share/bash-completion/completions/buildctl"
    target.parent.mkdir(parents=True)
    target.write_text(run_cli("completion", "bash").stdout)
    path = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    probe = f'''
export PATH="{path}"   # /etc/profile sets its own
complete -p buildctl 2>/dev/null && exit 7   # not loaded until asked for
loader=$(complete -p -D); loader=${{loader#*-F }}; loader=${{loader%% *}}
"$loader" buildctl; [ $? = 124 ] || exit 8    # 124: "loaded, try again", as on a Tab
complete -p buildctl | grep -q _buildctl_completion || exit 9
for words in "buildctl pl" "buildctl build w" "buildctl verify x --platform linux/arm6"; do
  read -r -a COMP_WORDS <<<"$words"; COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
  _buildctl_completion buildctl; echo "${{COMPREPLY[*]}}"
done
'''
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "TERM": "dumb", "LANG": "C.UTF-8"}
    result = subprocess.run(["bash", "--login", "-i", "-c", probe], env=env, cwd=PROJECT, check=False,
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-3:] == ["plan", "worker", "linux/arm64"]

"""Release tools the stack installs (scripts/stack.sh up: Debian trixie's cosign and kustomize).

``need(tool)`` skips a test when the tool is missing on a laptop; under CI (CI=true) a missing
tool fails instead, as a missing engine does: skipping is not passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    message = f"{tool} is not installed (scripts/stack.sh up installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {message}")
    pytest.skip(message)


def cosign_key_pairs(tmp_path: Path, *names: str) -> list[Path]:
    """One cosign key pair per name (tmp_path/NAME/cosign.key, .pub), each with password "pw-NAME"."""
    folders = []
    for name in names:
        where = tmp_path / name
        where.mkdir()
        subprocess.run(["cosign", "generate-key-pair"], cwd=where, env={**os.environ, "COSIGN_PASSWORD": f"pw-{name}"},
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
        folders.append(where)
    return folders

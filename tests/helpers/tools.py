"""Release tools the stack installs (scripts/stack.sh up: Debian trixie's cosign and kustomize).

``need(tool)`` skips a test when the tool is missing on a laptop; under CI (CI=true) a missing
tool fails instead, as a missing engine does: skipping is not passing.
"""

from __future__ import annotations

import os
import shutil

import pytest


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is not None:
        return path
    message = f"{tool} is not installed (scripts/stack.sh up installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {message}")
    pytest.skip(message)

"""Docker configs and real credential helpers (executables on PATH) for the credential tests."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

# A docker-credential-NAME that answers for one server address, logs every call, and for any other
# address says "not found" as docker-credential-helpers do.
HELPER = """#!/bin/sh
server="$(cat)"
echo "$1 $server" >> "{log}"
{body}
"""
ANSWER = """if [ "$1" = get ] && [ "$server" = "{address}" ]; then
  printf '%s' '{answer}'
  exit 0
fi
echo "credentials not found in native keychain"
exit 1"""


def auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def write_config(folder: Path, settings: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(settings))
    return folder


def install_helper(bin_dir: Path, name: str, *, body: str) -> Path:
    """``bin_dir/docker-credential-NAME`` running ``body`` (sh; ``$server`` is what came on stdin)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = bin_dir / f"docker-credential-{name}"
    program.write_text(HELPER.format(log=bin_dir / f"{name}.log", body=body))
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return program


def answering_helper(bin_dir: Path, name: str, address: str, username: str, secret: str) -> Path:
    answer = json.dumps({"ServerURL": address, "Username": username, "Secret": secret})
    return install_helper(bin_dir, name, body=ANSWER.format(address=address, answer=answer))


def helper_calls(bin_dir: Path, name: str) -> list[str]:
    log = bin_dir / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


def missing_login_lines(host: str, what: str, config: Path, *, variables_apply: bool) -> list[str]:
    """The two stderr lines of a 401 with no credentials anywhere for ``host`` (Docker config ``config``)."""
    also = ", or set BUILDCTL_REGISTRY_USERNAME and BUILDCTL_REGISTRY_PASSWORD" if variables_apply else ""
    return [f"buildctl: error: registry {host} requires authentication (HTTP 401) for {what}; looked in "
            f"BUILDCTL_REGISTRY_USERNAME/BUILDCTL_REGISTRY_PASSWORD (not set); Docker config {config}/config.json "
            f"(no credHelpers, credsStore or auths entry for {host})",
            f"  hint: run `docker login {host}`{also}"]

"""A Docker client configuration that lives as long as one run: where this run's `docker login` goes.

`docker login` stores the password (base64) in the Docker config. On a shared CI agent the user's
``~/.docker/config.json`` would keep it after the run (issue #14), so a run that logs in points
DOCKER_CONFIG at a private temporary folder (0700) instead, removed when the run ends — on
success, failure and Ctrl-C/SIGTERM alike (only a SIGKILL leaves it, in the temp folder).

The folder keeps what the user has: every entry of their config folder but config.json is a
symlink to the original (``buildx/`` builders and their state, ``contexts/``, ``cli-plugins/``,
TLS ``*.pem`` files), so builders created during the run persist as usual; config.json is a copy
without the login for the run's registry and without ``credsStore`` (a credential store would
keep the login outside the folder; file-based logins to other registries stay usable).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from buildctl import jsonsafe
from buildctl.registry import docker_credentials

_KEPT = ("buildx", "contexts")  # created in the user's folder when missing, so builders persist


def user_config_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    return docker_credentials.config_path(environ).parent


def scoped_settings(original: dict[str, Any], registry: str) -> dict[str, Any]:
    """The user's config.json settings minus what would store or shadow the run's login."""
    settings = {k: v for k, v in original.items() if k != "credsStore"}
    for field in ("auths", "credHelpers"):
        if isinstance(settings.get(field), dict):
            settings[field] = {k: v for k, v in settings[field].items() if _host(k) != _host(registry)}
    return settings


def _host(key: str) -> str:
    """``https://myacr.azurecr.io/v1/`` and ``myacr.azurecr.io`` are one registry to docker; Docker
    Hub's names are one too (docker keeps its login under https://index.docker.io/v1/)."""
    host = docker_credentials.hostname_of(key)
    return "docker.io" if host in docker_credentials.DOCKER_HUB_NAMES else host


@contextmanager
def run_scoped(registry: str) -> Iterator[Path]:
    """DOCKER_CONFIG -> a private copy of the user's Docker config while the block runs."""
    user = user_config_dir()
    previous = os.environ.get("DOCKER_CONFIG")
    for name in _KEPT:
        try:
            (user / name).mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # a read-only home: builders then live for the run only
    scoped = Path(tempfile.mkdtemp(prefix="buildctl-docker-"))  # mode 0700
    try:
        for entry in user.iterdir() if user.is_dir() else ():
            if entry.name != "config.json":
                (scoped / entry.name).symlink_to(entry.resolve())
        try:
            original = jsonsafe.loads(jsonsafe.read_file(user / "config.json", max_bytes=4 << 20))  # a FIFO: {}
        except (OSError, ValueError):
            original = {}
        settings = scoped_settings(original if isinstance(original, dict) else {}, registry)
        fd = os.open(scoped / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(settings, fh, indent=1)
        os.environ["DOCKER_CONFIG"] = str(scoped)
        yield scoped
    finally:
        if previous is None:
            os.environ.pop("DOCKER_CONFIG", None)
        else:
            os.environ["DOCKER_CONFIG"] = previous
        shutil.rmtree(scoped, ignore_errors=True)

"""The program that runs a `docker buildx ...` command: the buildx plugin itself, found where the
Docker CLI looks for it, when the `docker` on PATH is the Docker CLI; otherwise `docker`, as written.

Through `docker`, each buildx command costs two more processes: the CLI, and the
`docker-buildx docker-cli-plugin-metadata` it runs to validate the plugin before running it
(~60 ms and ~50 ms of CPU per command; a release runs `buildx inspect` and one `buildx build` per
service, issue #20). buildx run directly is its standalone mode (`docker-buildx build ...`), which
reads the same DOCKER_HOST, DOCKER_CONTEXT, DOCKER_CONFIG, builders and credentials.

"The Docker CLI" means an ELF program: a `docker` that is a script (podman-docker's, or a wrapper
that logs or rewrites its arguments) is always the one that runs, so it sees every command.
The plugin folders are the CLI's, in its order (docker/cli cli-plugins/manager): DOCKER_CONFIG's
``cli-plugins``, then config.json's ``cliPluginsExtraDirs``, then the system folders.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from buildctl import jsonsafe
from buildctl.registry import docker_credentials

DOCKER = "docker"  # the client program, found on PATH (python-on-whales' default client_call)

SYSTEM_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                      "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")
PLUGIN = "docker-buildx"
_ELF = b"\x7fELF"


def program_argv(argv: Sequence[object], *, environ: Mapping[str, str] | None = None) -> list[str]:
    """What runs ``argv`` (a docker command line, from "docker"): `docker buildx X ...` as
    ``[plugin, X, ...]`` when the plugin can run directly, every other command as ``[docker, ...]``."""
    words = [str(word) for word in argv]
    if len(words) > 1 and words[1] == "buildx" and (plugin := buildx_plugin(environ)) is not None:
        return [plugin, *words[2:]]
    return [DOCKER, *words[1:]]


def buildx_plugin(environ: Mapping[str, str] | None = None) -> str | None:
    """The buildx plugin the Docker CLI on PATH would run, or None (no such CLI, or no plugin)."""
    env = os.environ if environ is None else environ
    docker = shutil.which(DOCKER, path=env.get("PATH"))
    if docker is None or not _is_elf(Path(docker)):
        return None
    for folder in plugin_dirs(env):
        candidate = Path(folder) / PLUGIN
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def plugin_dirs(environ: Mapping[str, str]) -> list[str]:
    config_file = docker_credentials.config_path(environ)
    config_dir = config_file.parent
    try:
        settings = jsonsafe.loads(jsonsafe.read_file(config_file, max_bytes=4 << 20))
    except (OSError, ValueError):  # none, unreadable or not JSON: the CLI then uses its defaults too
        settings = {}
    extra = settings.get("cliPluginsExtraDirs") if isinstance(settings, dict) else None
    extra_dirs = [d for d in extra if isinstance(d, str)] if isinstance(extra, list) else []
    return [str(config_dir / "cli-plugins"), *extra_dirs, *SYSTEM_PLUGIN_DIRS]


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == _ELF
    except OSError:
        return False

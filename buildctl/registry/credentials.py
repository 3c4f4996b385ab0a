"""Registry credentials from the environment, handed to docker via stdin only.

BUILDCTL_REGISTRY_USERNAME / BUILDCTL_REGISTRY_PASSWORD (in Azure Pipelines, map a service
connection's service principal id/secret to these; see README "ACR").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from buildctl.errors import UsageError
from buildctl.registry.auth import RegistryCredentials

USERNAME_ENV = "BUILDCTL_REGISTRY_USERNAME"
PASSWORD_ENV = "BUILDCTL_REGISTRY_PASSWORD"


def registry_credentials_from_env(environ: Mapping[str, str] | None = None) -> RegistryCredentials | None:
    env = os.environ if environ is None else environ
    username, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise UsageError(f"{missing} is not set (set both registry credential variables, or neither)")
    return RegistryCredentials(username=username, password=password)

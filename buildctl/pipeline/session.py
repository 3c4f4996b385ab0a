"""The registry session of a run: the run's own login (when BUILDCTL_REGISTRY_* are set) and one
registry client, for `run`/`build` and for a native agent's `build --by-digest` alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from buildctl.engine import logins
from buildctl.model import Config
from buildctl.registry import credentials
from buildctl.registry.client import RegistryClient


@dataclass(frozen=True)
class Session:
    client: RegistryClient
    creds: credentials.RegistryCredentials | None  # from the environment, for config.registry only


@contextmanager
def registry_session(config: Config) -> Iterator[Session]:
    creds = credentials.registry_credentials_from_env()
    # One lookup for every registry call of the run: BUILDCTL_REGISTRY_* for config.registry only, then
    # the user's Docker config (made before the login points DOCKER_CONFIG at the run's own copy).
    lookup = credentials.CredentialLookup(release_registry=config.registry)
    # The run's login lives in a run-scoped Docker config, gone when the run ends however it ends.
    login = (logins.scoped_login(config.registry, username=creds.username, password=creds.password)
             if creds is not None else nullcontext())
    with login, RegistryClient(credentials=lookup) as client:
        yield Session(client, creds)

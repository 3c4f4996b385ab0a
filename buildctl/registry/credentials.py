"""The one credential lookup of every registry call buildctl makes (preflight, verify, tags, signing,
doctor), per registry host, in this order (README "Registry credentials and ACR"):

1. ``BUILDCTL_REGISTRY_USERNAME`` / ``BUILDCTL_REGISTRY_PASSWORD``, for the *release registry only*
   (services.yaml ``registry:`` / ``--registry``): an image of another registry named on the
   command line never receives them;
2. the Docker config, as docker and buildx read it (docker_credentials.py): ``credHelpers[host]``,
   ``credsStore``, ``auths`` (``auth``, ``identitytoken``).

Credentials of one host are only ever sent to that host (and to the token endpoint its own Bearer
challenge names, over HTTPS, as docker does). Every secret found is registered with
``redaction.remember_secret``, so no message, log line or traceback can show it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from buildctl.errors import BuildctlError, UsageError
from buildctl.redaction import remember_secret
from buildctl.registry import docker_credentials as dc
from buildctl.registry.auth import CredentialSource, RegistryCredentials

USERNAME_ENV = "BUILDCTL_REGISTRY_USERNAME"
PASSWORD_ENV = "BUILDCTL_REGISTRY_PASSWORD"
ENV_SOURCE = f"{USERNAME_ENV}/{PASSWORD_ENV}"


def registry_credentials_from_env(environ: Mapping[str, str] | None = None) -> RegistryCredentials | None:
    env = os.environ if environ is None else environ
    username, password = env.get(USERNAME_ENV), env.get(PASSWORD_ENV)
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise UsageError(f"{missing} is not set (set both registry credential variables, or neither)")
    remember_secret(password, username=username)
    return RegistryCredentials(username=username, password=password, source=ENV_SOURCE)


def same_registry(a: str, b: str) -> bool:
    """One registry to docker: Docker Hub's names are one; others compare as ``host[:port]``, any case."""
    def canonical(host: str) -> str:
        host = host.lower()
        return "docker.io" if host in dc.DOCKER_HUB_NAMES else host
    return canonical(a) == canonical(b)


def login_command(host: str) -> str:
    """What a user runs to put credentials for ``host`` where buildctl (and docker) finds them."""
    name, _, domain = host.partition(".")
    if domain.lower().startswith("azurecr.") and ":" not in host:
        return f"az acr login -n {name}"
    return "docker login" if host.lower() in dc.DOCKER_HUB_NAMES else f"docker login {host}"


class CredentialLookup(CredentialSource):
    """Credentials per registry host, resolved once per host (a helper runs at most once) and lazily:
    only when a registry asks for them."""

    def __init__(self, *, release_registry: str | None, environ: Mapping[str, str] | None = None,
                 helper_timeout: float = dc.HELPER_TIMEOUT_SECONDS) -> None:
        env = dict(os.environ if environ is None else environ)
        self.release_registry = release_registry
        self._env = registry_credentials_from_env(env)  # half-set variables: bad input, before anything runs
        self._env_set = self._env is not None
        self.config_path = dc.config_path(env)
        self._helper_timeout = helper_timeout
        self._config: dc.DockerConfig | None = None
        self._found: dict[str, RegistryCredentials | None] = {}
        self._failed: dict[str, BuildctlError] = {}
        self._lock = threading.Lock()

    def find(self, host: str) -> RegistryCredentials | None:
        key = host.lower()
        with self._lock:
            if key in self._failed:  # a helper that failed or hung is not asked again for every request
                raise self._failed[key]
            if key not in self._found:
                try:
                    self._found[key] = self._resolve(host)
                except BuildctlError as exc:
                    self._failed[key] = exc
                    raise
            return self._found[key]

    def docker_config(self) -> dc.DockerConfig:
        if self._config is None:
            self._config = dc.load(self.config_path)
        return self._config

    def _resolve(self, host: str) -> RegistryCredentials | None:
        if self._env is not None and self._is_release(host):
            return self._env
        config = self.docker_config()
        address = dc.server_address(host)
        if (helper := dc.helper_for(config, address)) is not None:
            name, setting = helper
            answer = dc.ask_helper(name, address, timeout=self._helper_timeout)
            if answer is None:
                return None  # docker: a configured helper's "not found" is anonymous; auths is not consulted
            source = f"{dc.HELPER_PREFIX}{name} ({setting} in {config.path})"
            if answer.username == dc.TOKEN_USERNAME:
                return _remembered(RegistryCredentials("", identity_token=answer.secret, source=source))
            return _remembered(RegistryCredentials(answer.username, answer.secret, source=source))
        entry = dc.file_entry(config, address)
        if entry is None:
            return None
        key, auth = entry
        where = f'auths["{key}"] in {config.path}'
        if auth.malformed:  # the value is never shown: it is a credential
            raise UsageError(f"{where}: auth is not base64 of user:password", hint=f"log in again: {login_command(host)}")
        if auth.identity_token:  # docker and buildx prefer it over a user name and password
            return _remembered(RegistryCredentials(auth.username, identity_token=auth.identity_token, source=where))
        if auth.username and auth.password:
            return _remembered(RegistryCredentials(auth.username, auth.password, source=where))
        return None

    def _is_release(self, host: str) -> bool:
        return self.release_registry is not None and same_registry(host, self.release_registry)

    # ------------------------------------------------------------------ what a 401 says

    def searched(self, host: str) -> str:
        """Where this lookup looked for ``host``, one clause per place; never a secret."""
        if not self._env_set:
            env = f"{ENV_SOURCE} (not set)"
        elif self._is_release(host):
            env = f"{ENV_SOURCE} (used)"
        else:
            env = f"{ENV_SOURCE} (set, but sent only to the release registry {self.release_registry})"
        return f"{env}; {self._docker_searched(host)}"

    def _docker_searched(self, host: str) -> str:
        try:
            config = self.docker_config()
        except UsageError as exc:
            return exc.message
        if not config.exists:
            return f"Docker config {config.path} (no such file)"
        address = dc.server_address(host)
        if (helper := dc.helper_for(config, address)) is not None:
            name, setting = helper
            return f"{dc.HELPER_PREFIX}{name} ({setting} in {config.path}: nothing for {address})"
        return f"Docker config {config.path} (no credHelpers, credsStore or auths entry for {address})"

    def missing(self, host: str) -> tuple[str, str]:
        fix = login_command(host)
        also = f", or set {USERNAME_ENV} and {PASSWORD_ENV}" if self._is_release(host) or self.release_registry is None \
            else ""
        return f"; looked in {self.searched(host)}", f"run `{fix}`{also}"

    def refused(self, host: str, creds: RegistryCredentials) -> str:
        if creds.source == ENV_SOURCE:
            return f"check {USERNAME_ENV} and {PASSWORD_ENV} (they are used for {host})"
        return f"they came from {creds.source}; renew them: `{login_command(host)}`"


def _remembered(creds: RegistryCredentials) -> RegistryCredentials:
    if creds.password:
        remember_secret(creds.password, username=creds.username)
    if creds.identity_token:
        remember_secret(creds.identity_token)
    return creds


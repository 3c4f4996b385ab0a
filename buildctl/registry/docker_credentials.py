"""Registry credentials from the Docker client configuration, resolved as docker/cli resolves them.

docker/cli (cli/config/configfile/file.go, cli/config/credentials/{file,native}_store.go):

* the file is ``$DOCKER_CONFIG/config.json``, default ``~/.docker/config.json``;
* a registry is looked up by its *server address*: ``https://index.docker.io/v1/`` for Docker Hub
  (whichever of docker.io, index.docker.io, registry-1.docker.io is named), else ``host[:port]``;
* ``credHelpers[address]`` names the helper for that registry, else ``credsStore`` for all; a
  configured helper is the only source (its "not found" means anonymous, the ``auths`` entry is not
  used then), run as ``docker-credential-NAME get`` with the address on stdin, answering JSON
  ``{"ServerURL", "Username", "Secret"}``; user name ``<token>`` makes Secret an identity token;
* without a helper, ``auths[address]``, else the first key that is that address once reduced to a
  host (``https://myacr.azurecr.io/v1/`` is myacr.azurecr.io): ``auth`` is base64 ``user:password``,
  ``identitytoken`` an OAuth2 refresh token (what ``az acr login`` stores for ACR).

Not taken from the docker SDK for Python (``docker.auth``): its helper runner has no timeout, and a
helper that hangs must be one bounded error here.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from buildctl import jsonsafe
from buildctl.errors import OperationError, UsageError
from buildctl.programs import run_program

DOCKER_HUB_ADDRESS = "https://index.docker.io/v1/"
DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
HELPER_PREFIX = "docker-credential-"
HELPER_TIMEOUT_SECONDS = 20.0
TOKEN_USERNAME = "<token>"  # docker-credential-helpers: Secret is an identity token
_NOT_FOUND = "credentials not found in native keychain"
_MAX_CONFIG_BYTES = 4 << 20


@dataclass(frozen=True)
class AuthEntry:
    """One ``auths`` entry, decoded."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    malformed: bool = False  # ``auth`` is not base64 of user:password (an error when it is used)


@dataclass(frozen=True)
class DockerConfig:
    path: Path
    exists: bool
    auths: Mapping[str, AuthEntry] = field(default_factory=dict, repr=False)
    creds_store: str = ""
    cred_helpers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HelperAnswer:
    username: str
    secret: str = field(repr=False)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    folder = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path.home() / ".docker"
    return folder / "config.json"


def server_address(registry: str) -> str:
    """The key docker stores and asks helpers for: Docker Hub's v1 URL, else ``host[:port]``."""
    return DOCKER_HUB_ADDRESS if registry in DOCKER_HUB_NAMES else registry


def hostname_of(key: str) -> str:
    """docker's ConvertToHostname: ``https://h:5000/v1/`` -> ``h:5000``; ``h/x`` -> ``h``."""
    if "://" in key:
        parts = urlsplit(key)
        if parts.hostname:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            try:
                port = parts.port
            except ValueError:
                port = None
            return f"{host}:{port}" if port else host
    return key.split("/", 1)[0]


def load(path: Path) -> DockerConfig:
    """The config file at ``path``; an absent file is an empty config, an unreadable one bad input."""
    try:  # a FIFO there would block until a writer came: refused, like a record (jsonsafe.read_file)
        raw = jsonsafe.read_file(path, max_bytes=_MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return DockerConfig(path, exists=False)
    except jsonsafe.NotARegularFile:
        raise UsageError(f"{path}: the Docker config is not a regular file") from None
    except jsonsafe.FileTooLarge:
        raise UsageError(f"{path}: the Docker config is larger than {_MAX_CONFIG_BYTES >> 20} MiB") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the Docker config ({exc.strerror})") from None
    try:
        doc = jsonsafe.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        line = f":{exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise UsageError(f"{path}{line}: the Docker config is not valid JSON",
                         hint="fix or remove it (docker login writes it again)") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{path}: the Docker config is not a JSON object")
    auths = {}
    for key, entry in (doc.get("auths") or {}).items() if isinstance(doc.get("auths"), dict) else ():
        if isinstance(entry, dict):
            auths[str(key)] = _decode_entry(entry)
    helpers = doc.get("credHelpers")
    helpers = {str(k): v for k, v in helpers.items() if isinstance(v, str) and v} if isinstance(helpers, dict) else {}
    store = doc.get("credsStore")
    return DockerConfig(path, True, auths, store if isinstance(store, str) else "", helpers)


def _decode_entry(entry: Mapping[str, object]) -> AuthEntry:
    username, password = _str(entry.get("username")), _str(entry.get("password"))
    token = _str(entry.get("identitytoken"))
    auth = _str(entry.get("auth"))
    if auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, sep, secret = decoded.partition(":")
        if not sep or not user:  # docker refuses it too ("Invalid auth configuration file")
            return AuthEntry(malformed=True)
        username, password = user, secret.strip("\x00")
    return AuthEntry(username, password, token)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def helper_for(config: DockerConfig, address: str) -> tuple[str, str] | None:
    """(helper name, which setting named it) for ``address``, or None: credHelpers first, then credsStore."""
    if address in config.cred_helpers:
        return config.cred_helpers[address], f'credHelpers["{address}"]'
    if config.creds_store:
        return config.creds_store, "credsStore"
    return None


def file_entry(config: DockerConfig, address: str) -> tuple[str, AuthEntry] | None:
    """The ``auths`` entry for ``address`` and its key: exact key first, then a key that reduces to it."""
    if address in config.auths:
        return address, config.auths[address]
    return next(((k, e) for k, e in config.auths.items() if hostname_of(k) == address), None)


def ask_helper(name: str, address: str, *, timeout: float = HELPER_TIMEOUT_SECONDS) -> HelperAnswer | None:
    """``docker-credential-NAME get`` for ``address``; None when it has no credentials for it.

    Any other failure is one OperationError naming the helper; its output is never shown (a
    helper that misbehaves may print the secret it was about to answer with)."""
    program = HELPER_PREFIX + name
    what = f"credential helper {program} (for {address})"
    result = run_program([program, "get"], what=what, input=address, timeout=timeout)
    if result.returncode != 0:
        if result.stdout.strip() == _NOT_FOUND or result.stderr.strip() == _NOT_FOUND:
            return None
        raise OperationError(f"{what} failed (exit {result.returncode})",
                             hint=f"run `echo {address} | {program} get` to see why, or log in again")
    try:
        answer = jsonsafe.loads(result.stdout)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("Secret"), str) \
            or not isinstance(answer.get("Username"), str):
        raise OperationError(f"{what} answered something that is not its JSON credentials",
                             hint=f'it must print {{"Username": ..., "Secret": ...}}; check {program}')
    return HelperAnswer(answer["Username"], answer["Secret"])

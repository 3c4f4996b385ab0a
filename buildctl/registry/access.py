"""Can this machine release to a registry? For doctor: reachable, credentials found and accepted,
and for token registries a token with push scope for a release repository.

Each answer names what is missing and the fix for that kind of registry: ACR -> ``az acr login``,
the local default registry -> ``scripts/stack.sh up``, others -> ``docker login HOST``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from buildctl import jsonsafe
from buildctl.errors import BuildctlError
from buildctl.redaction import redact
from buildctl.registry.auth import answered_by_origin, is_loopback, parse_challenge
from buildctl.registry.client import RegistryClient
from buildctl.registry.credentials import CredentialLookup, login_command
from buildctl.registry.results import RetryPolicy
from buildctl.registry.wire import reason

LOCAL_DEFAULT = "127.0.0.1:5000"
STACK_FIX = "run scripts/stack.sh up (installs and starts the engine, QEMU and the local registry)"


@dataclass(frozen=True)
class Answer:
    ok: bool
    detail: str
    fix: str = ""


def unreachable_fix(registry: str) -> str:
    if registry == LOCAL_DEFAULT:
        return f"start it: {STACK_FIX}; or set registry: in services.yaml"
    name, _, domain = registry.partition(".")
    if domain.startswith("azurecr."):
        return (f"check the name (az acr show -n {name}) and that this machine reaches {registry} "
                "(network, proxy, private endpoint DNS)")
    if is_loopback(registry):
        return f"start the registry at {registry}, or fix registry: in services.yaml / --registry"
    return f"check the address and that this machine reaches {registry} (network, proxy, firewall)"


def check(registry: str, repository: str, lookup: CredentialLookup) -> tuple[Answer, Answer]:
    """(reachable?, may push to ``repository`` with the credentials found?)."""
    with RegistryClient(credentials=lookup, retry=RetryPolicy(attempts=1), timeout=15.0) as client:
        host, url = client.host_and_url(registry, "/v2/")
        try:
            first = client.http.get(url, auth=None)  # no auth flow: the challenge itself is what we want
        except httpx.HTTPError as exc:
            return Answer(False, f"{registry} unreachable ({reason(exc)})", unreachable_fix(registry)), \
                Answer(False, "not checked: the registry is unreachable", unreachable_fix(registry))
        if first.status_code == 200:
            return Answer(True, f"{registry} answers /v2/"), \
                Answer(True, f"{registry} needs no credentials for /v2/ (push rights are checked by the push)")
        if first.status_code != 401:
            return Answer(False, f"{registry} answered /v2/ with HTTP {first.status_code}", unreachable_fix(registry)), \
                Answer(False, "not checked: /v2/ did not answer", unreachable_fix(registry))
        reachable = Answer(True, f"{registry} answers /v2/ (requires authentication)")
        if not answered_by_origin(httpx.URL(url), first.url):  # its realm would get the credentials
            return reachable, Answer(False, f"{registry} redirects /v2/ to {first.url.netloc.decode('ascii')}, which "
                                            f"asks for credentials: buildctl sends them only to {registry}'s own challenge",
                                     "point registry: at the host that answers /v2/ itself")
        try:
            answer = _credentials(client, lookup, host=host, url=url, repository=repository,
                                  header=first.headers.get("WWW-Authenticate", ""))
            return reachable, Answer(answer.ok, redact(answer.detail), answer.fix)  # a header may echo a secret
        except BuildctlError as exc:  # a helper that failed, a malformed auth entry, a refusal
            return reachable, Answer(False, redact(exc.message), redact(exc.hint or login_command(host)))


def _credentials(client: RegistryClient, lookup: CredentialLookup, *, host: str, url: str, repository: str,
                 header: str) -> Answer:
    challenge = parse_challenge(header)
    creds = lookup.find(host)
    if creds is None:
        detail, fix = lookup.missing(host)
        return Answer(False, f"no credentials for {host}{detail}", fix)
    if challenge is None or challenge.scheme not in ("basic", "bearer"):
        return Answer(False, f"{host} asks for an authentication scheme buildctl does not speak: {header[:80]!r}")
    if challenge.scheme == "basic":
        if client.http.get(url).status_code != 200:  # through the auth flow: Basic with the credentials found
            raise lookup.unauthorized(host, "/v2/")
        return Answer(True, f"credentials from {creds.source} accepted (Basic)")
    scope = f"repository:{repository}:pull,push"
    token = client.auth.token(client.http, host, challenge, scope)
    granted = _granted_actions(token, repository)
    if granted is None:
        return Answer(True, f"credentials from {creds.source} accepted: token issued for {scope} "
                            "(an opaque token: its scope cannot be read here)")
    if "push" in granted or "*" in granted:
        return Answer(True, f"credentials from {creds.source} accepted: token grants push to {repository}")
    return Answer(False, f"credentials from {creds.source} are accepted but the token grants "
                         f"{','.join(sorted(granted)) or 'nothing'} on {repository}, not push",
                  _push_fix(host))


def _push_fix(host: str) -> str:
    name, _, domain = host.partition(".")
    if domain.startswith("azurecr."):
        return f"give the identity the AcrPush role on {name} (az role assignment create --role AcrPush ...)"
    return f"log in as an account that may push: docker login {host}"


def _granted_actions(token: str, repository: str) -> set[str] | None:
    """The actions a JWT access token (distribution's token spec, ACR) grants on ``repository``;
    None when the token is not a readable JWT. Read, not verified: the registry verifies it."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = jsonsafe.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    access = claims.get("access") if isinstance(claims, dict) else None
    if not isinstance(access, list):
        return None
    actions: set[str] = set()
    for item in access:
        if isinstance(item, dict) and item.get("type") == "repository" and item.get("name") == repository:
            actions.update(a for a in item.get("actions") or () if isinstance(a, str))
    return actions

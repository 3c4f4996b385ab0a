"""buildctl.registry.access, its pure parts: the fix for each kind of registry, and the actions a
JWT access token grants (distribution's token spec; ACR tokens have the same claims)."""

from __future__ import annotations

import base64
import json

import pytest

from buildctl.registry.access import _granted_actions, unreachable_fix


@pytest.mark.parametrize(("registry", "fix"), [
    ("127.0.0.1:5000", "start it: run scripts/stack.sh up (installs and starts the engine, QEMU and the local "
                       "registry); or set registry: in services.yaml"),
    ("myacr.azurecr.io", "check the name (az acr show -n myacr) and that this machine reaches myacr.azurecr.io "
                         "(network, proxy, private endpoint DNS)"),
    ("127.0.0.1:5999", "start the registry at 127.0.0.1:5999, or fix registry: in services.yaml / --registry"),
    ("ghcr.io", "check the address and that this machine reaches ghcr.io (network, proxy, firewall)"),
])
def test_each_kind_of_registry_gets_its_own_fix(registry: str, fix: str) -> None:
    assert unreachable_fix(registry) == fix
    if registry != "127.0.0.1:5000":
        assert "stack.sh" not in fix  # an unreachable ACR is not fixed by starting the local stack


def jwt(claims: object) -> str:
    def part(doc: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'ES256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(("token", "granted"), [
    (jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]}), {"pull", "push"}),
    (jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["pull"]},
                     {"type": "repository", "name": "other", "actions": ["push"]}]}), {"pull"}),
    (jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["*"]}]}), {"*"}),
    (jwt({"access": []}), set()),
    (jwt({"sub": "x"}), None), (jwt([1]), None), ("opaque-token", None), ("a.!!!.c", None),
    (jwt({"access": [{"type": "repository", "name": "team/app", "actions": None}, "junk"]}), set()),
])
def test_granted_actions(token: str, granted: set[str] | None) -> None:
    assert _granted_actions(token, "team/app") == granted

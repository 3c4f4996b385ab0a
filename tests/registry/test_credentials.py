"""buildctl.registry.credentials and RegistryCredentials: both variables or neither, and a password
that no message, repr or header other than the Basic one ever shows; the one lookup's order (variables
for the release registry only, then credHelpers, credsStore, auths), and what a missing login says."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from buildctl.errors import EXIT_BAD_INPUT, OperationError, UsageError
from buildctl.redaction import redact
from buildctl.registry.auth import RegistryCredentials
from buildctl.registry.credentials import (
    ENV_SOURCE,
    PASSWORD_ENV,
    USERNAME_ENV,
    CredentialLookup,
    login_command,
    registry_credentials_from_env,
    same_registry,
)
from tests.registry.helpers import answering_helper, auth_entry, helper_calls, install_helper, write_config

SECRET = "pa55-Wörd:with:colons"


def test_variable_names_are_the_documented_ones() -> None:
    assert (USERNAME_ENV, PASSWORD_ENV) == ("BUILDCTL_REGISTRY_USERNAME", "BUILDCTL_REGISTRY_PASSWORD")


@pytest.mark.parametrize("environ", [{}, {USERNAME_ENV: "", PASSWORD_ENV: ""}, {USERNAME_ENV: ""}, {"OTHER": "x"}])
def test_neither_means_anonymous(environ: dict[str, str]) -> None:
    assert registry_credentials_from_env(environ) is None


def test_both_give_credentials_verbatim() -> None:
    creds = registry_credentials_from_env({USERNAME_ENV: "00000000-0000-0000-0000-000000000000", PASSWORD_ENV: SECRET})
    assert creds == RegistryCredentials("00000000-0000-0000-0000-000000000000", SECRET)


@pytest.mark.parametrize(("environ", "missing"), [
    ({USERNAME_ENV: "sp-id"}, PASSWORD_ENV),
    ({USERNAME_ENV: "sp-id", PASSWORD_ENV: ""}, PASSWORD_ENV),
    ({PASSWORD_ENV: SECRET}, USERNAME_ENV),
    ({USERNAME_ENV: "", PASSWORD_ENV: SECRET}, USERNAME_ENV),
])
def test_one_without_the_other_is_bad_input(environ: dict[str, str], missing: str) -> None:
    with pytest.raises(UsageError) as err:
        registry_credentials_from_env(environ)
    assert str(err.value) == f"{missing} is not set (set both registry credential variables, or neither)"
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert SECRET not in f"{err.value} {err.value.hint} {err.value!r}"


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USERNAME_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    assert registry_credentials_from_env() is None
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    with pytest.raises(UsageError, match=USERNAME_ENV):
        registry_credentials_from_env()
    monkeypatch.setenv(USERNAME_ENV, "ci")
    assert registry_credentials_from_env() == RegistryCredentials("ci", SECRET)


def test_an_explicit_empty_mapping_is_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USERNAME_ENV, "ci")
    monkeypatch.setenv(PASSWORD_ENV, SECRET)
    assert registry_credentials_from_env({}) is None


def test_the_password_is_never_shown() -> None:
    creds = RegistryCredentials("ci", SECRET)
    logged = "%s %r" % (creds, creds)  # noqa: UP031 - as logging formats it
    shown = [repr(creds), str(creds), f"{creds}", logged, repr([creds]), repr({"r": creds})]
    encoded = base64.b64encode(SECRET.encode()).decode()
    assert all(SECRET not in text and encoded not in text and "***" in text for text in shown)
    assert all("'ci'" in text for text in shown)


def test_basic_header_is_utf8_and_splits_at_the_first_colon() -> None:
    header = RegistryCredentials("ci", SECRET).basic_header()
    scheme, _, encoded = header.partition(" ")
    user, _, password = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    assert (scheme, user, password) == ("Basic", "ci", SECRET)
    assert header.isascii()


def test_credentials_are_immutable() -> None:
    creds = RegistryCredentials("ci", SECRET)
    with pytest.raises(AttributeError):
        creds.password = "other"  # type: ignore[misc]


# ------------------------------------------------------------------ CredentialLookup: order, scope, messages


RELEASE = "myacr.azurecr.io"


def lookup(folder: Path, settings: dict | None = None, **env: str) -> CredentialLookup:
    if settings is not None:
        write_config(folder, settings)
    return CredentialLookup(release_registry=RELEASE, environ={"DOCKER_CONFIG": str(folder), **env})


ENV = {USERNAME_ENV: "sp-id", PASSWORD_ENV: SECRET}


def test_variables_go_to_the_release_registry_only(tmp_path: Path) -> None:
    found = lookup(tmp_path, {}, **ENV)
    assert found.find(RELEASE) == RegistryCredentials("sp-id", SECRET)
    assert found.find(RELEASE).source == ENV_SOURCE
    assert found.find("MyAcr.AzureCR.io") is not None  # host names have no case
    for other in ("third-party.example", "myacr.azurecr.io:443", "evil.azurecr.io", "127.0.0.1:5000"):
        assert found.find(other) is None, other
    assert "(set, but sent only to the release registry myacr.azurecr.io)" in found.searched("third-party.example")


def test_docker_hub_names_are_one_registry() -> None:
    assert same_registry("docker.io", "registry-1.docker.io") and same_registry("index.docker.io", "docker.io")
    assert not same_registry("docker.io", "docker.io:443")


def test_variables_come_before_the_docker_config(tmp_path: Path) -> None:
    found = lookup(tmp_path, {"auths": {RELEASE: auth_entry("from-config", "other")}}, **ENV)
    assert found.find(RELEASE).username == "sp-id"


def test_auths_then_identity_token_preferred(tmp_path: Path) -> None:
    found = lookup(tmp_path, {"auths": {
        "https://myacr.azurecr.io/v1/": {**auth_entry("00000000-0000-0000-0000-000000000000", "x"),
                                         "identitytoken": "refresh-" + SECRET},
        "plain.example": auth_entry("bob", SECRET)}})
    acr = found.find(RELEASE)
    assert (acr.identity_token, acr.source) == ("refresh-" + SECRET,
                                                f'auths["https://myacr.azurecr.io/v1/"] in {tmp_path}/config.json')
    assert found.find("plain.example") == RegistryCredentials("bob", SECRET)
    assert found.find("absent.example") is None


def test_a_malformed_auth_is_bad_input_when_used_without_showing_it(tmp_path: Path) -> None:
    bad = "no-colon-" + os.urandom(4).hex()
    found = lookup(tmp_path, {"auths": {"bad.example": {"auth": base64.b64encode(bad.encode()).decode()},
                                        "good.example": auth_entry("u", "p4ssword")}})
    assert found.find("good.example") is not None  # one broken entry spoils no other
    with pytest.raises(UsageError) as err:
        found.find("bad.example")
    assert err.value.message == f'auths["bad.example"] in {tmp_path}/config.json: auth is not base64 of user:password'
    assert bad not in err.value.message and base64.b64encode(bad.encode()).decode() not in err.value.message


def test_cred_helpers_then_creds_store_and_their_not_found_is_anonymous(tmp_path: Path, bin_dir: Path) -> None:
    answering_helper(bin_dir, "acr", RELEASE, "<token>", "refresh-" + SECRET)
    answering_helper(bin_dir, "store", "store.example", "carol", SECRET)
    found = lookup(tmp_path / "cfg", {"credHelpers": {RELEASE: "acr"}, "credsStore": "store",
                                      "auths": {"plain.example": auth_entry("bob", SECRET)}})
    acr = found.find(RELEASE)
    assert (acr.username, acr.password, acr.identity_token) == ("", "", "refresh-" + SECRET)
    assert acr.source == f'docker-credential-acr (credHelpers["{RELEASE}"] in {tmp_path}/cfg/config.json)'
    assert found.find("store.example") == RegistryCredentials("carol", SECRET)
    # docker: with a store configured, the store is the only source; its "not found" means anonymous
    assert found.find("plain.example") is None
    assert found.searched("plain.example").endswith(
        f"docker-credential-store (credsStore in {tmp_path}/cfg/config.json: nothing for plain.example)")
    found.find(RELEASE), found.find("store.example")  # asked again: answered from memory
    assert helper_calls(bin_dir, "acr") == [f"get {RELEASE}"]
    assert helper_calls(bin_dir, "store") == ["get store.example", "get plain.example"]


def test_docker_hub_is_asked_for_by_its_v1_address(tmp_path: Path, bin_dir: Path) -> None:
    answering_helper(bin_dir, "hub", "https://index.docker.io/v1/", "dave", SECRET)
    assert lookup(tmp_path, {"credsStore": "hub"}).find("registry-1.docker.io") == RegistryCredentials("dave", SECRET)


def test_every_secret_found_is_redacted_everywhere(tmp_path: Path) -> None:
    password, token = "Redact-Me-" + os.urandom(4).hex(), "Refresh-" + os.urandom(4).hex()
    found = lookup(tmp_path, {"auths": {"a.example": auth_entry("erin", password),
                                        "b.example": {"identitytoken": token}}})
    found.find("a.example"), found.find("b.example")
    basic = base64.b64encode(f"erin:{password}".encode()).decode()
    text = redact(f"echoed: Basic {basic} / {password} / Bearer {token} / {base64.b64encode(password.encode()).decode()}")
    assert text == "echoed: Basic *** / *** / Bearer *** / ***"


@pytest.mark.parametrize(("host", "fix"), [
    ("myacr.azurecr.io", "run `az acr login -n myacr`, or set BUILDCTL_REGISTRY_USERNAME and BUILDCTL_REGISTRY_PASSWORD"),
    ("other.azurecr.io", "run `az acr login -n other`"),
    ("registry-1.docker.io", "run `docker login`"),
    ("127.0.0.1:5001", "run `docker login 127.0.0.1:5001`"),
])
def test_what_a_missing_login_says(tmp_path: Path, host: str, fix: str) -> None:
    detail, hint = lookup(tmp_path).missing(host)
    assert hint == fix
    assert detail == (f"; looked in {ENV_SOURCE} (not set); Docker config {tmp_path}/config.json (no such file)")


def test_login_commands() -> None:
    assert login_command("myacr.azurecr.io") == "az acr login -n myacr"
    assert login_command("myacr.azurecr.cn") == "az acr login -n myacr"
    assert login_command("docker.io") == "docker login"
    assert login_command("ghcr.io") == "docker login ghcr.io"


def test_a_failing_helper_is_asked_once_and_its_error_kept(tmp_path: Path, bin_dir: Path) -> None:
    install_helper(bin_dir, "broken", body="exit 2")
    found = lookup(tmp_path / "cfg", {"credsStore": "broken"})
    for _ in range(3):
        with pytest.raises(OperationError, match=r"^credential helper docker-credential-broken \(for h\) failed"):
            found.find("h")
    assert helper_calls(bin_dir, "broken") == ["get h"]

"""buildctl.registry.credentials and RegistryCredentials: both variables or neither, and a password
that no message, repr or header other than the Basic one ever shows."""

from __future__ import annotations

import base64

import pytest

from buildctl.errors import EXIT_BAD_INPUT, UsageError
from buildctl.registry.auth import RegistryCredentials
from buildctl.registry.credentials import PASSWORD_ENV, USERNAME_ENV, registry_credentials_from_env

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

"""buildctl.registry.docker_credentials: the Docker config read as docker/cli reads it (server
addresses, key normalisation, helper precedence), and real credential helper programs: answers,
"not found", failures, garbage and a hang — each one bounded, clear, and never showing the output."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from buildctl.errors import OperationError, UsageError
from buildctl.registry import docker_credentials as dc
from tests.registry.helpers import answering_helper, auth_entry, helper_calls, install_helper, write_config

SECRET = "s3cr3t-Helper-Pa55"


@pytest.mark.parametrize(("registry", "address"), [
    ("docker.io", "https://index.docker.io/v1/"), ("index.docker.io", "https://index.docker.io/v1/"),
    ("registry-1.docker.io", "https://index.docker.io/v1/"), ("myacr.azurecr.io", "myacr.azurecr.io"),
    ("127.0.0.1:5000", "127.0.0.1:5000"), ("[::1]:5000", "[::1]:5000"),
])
def test_server_address(registry: str, address: str) -> None:
    assert dc.server_address(registry) == address


@pytest.mark.parametrize(("key", "host"), [
    ("https://myacr.azurecr.io/v1/", "myacr.azurecr.io"), ("http://h:5000", "h:5000"), ("h:5000/v2/", "h:5000"),
    ("myacr.azurecr.io", "myacr.azurecr.io"), ("https://[::1]:5000/", "[::1]:5000"),
    ("https://index.docker.io/v1/", "index.docker.io"),
])
def test_hostname_of_as_docker_converts_legacy_keys(key: str, host: str) -> None:
    assert dc.hostname_of(key) == host


def test_config_path(tmp_path: Path) -> None:
    assert dc.config_path({"DOCKER_CONFIG": str(tmp_path)}) == tmp_path / "config.json"
    assert dc.config_path({"DOCKER_CONFIG": ""}) == Path.home() / ".docker" / "config.json"


def test_auths_decoded_exact_key_first_then_legacy_keys(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {
        "https://myacr.azurecr.io/v1/": auth_entry("legacy", SECRET),
        "other.example": {**auth_entry("00000000-0000-0000-0000-000000000000", ""), "identitytoken": "refresh-tok"},
        "h:5000": auth_entry("exact", "pw:with:colons"), "http://h:5000": auth_entry("legacy", "x"),
    }})
    config = dc.load(tmp_path / "config.json")
    key, entry = dc.file_entry(config, "myacr.azurecr.io")
    assert (key, entry.username, entry.password) == ("https://myacr.azurecr.io/v1/", "legacy", SECRET)
    assert dc.file_entry(config, "h:5000")[1].password == "pw:with:colons"
    acr = dc.file_entry(config, "other.example")[1]
    assert (acr.username, acr.password, acr.identity_token) == ("00000000-0000-0000-0000-000000000000", "", "refresh-tok")
    assert dc.file_entry(config, "myacr.azurecr.io:443") is None  # another port is another registry
    assert SECRET not in repr(config) + repr(entry)


@pytest.mark.parametrize("auth", ["bm90LWJhc2U2NA", base64.b64encode(b"no-colon").decode(),
                                  base64.b64encode(b":no-user").decode(), "!!!"])
def test_an_auth_value_docker_would_refuse_is_marked_not_shown(tmp_path: Path, auth: str) -> None:
    write_config(tmp_path, {"auths": {"h": {"auth": auth}}})
    assert dc.file_entry(dc.load(tmp_path / "config.json"), "h")[1].malformed


def test_helper_precedence_is_credhelpers_then_credsstore(tmp_path: Path) -> None:
    write_config(tmp_path, {"credsStore": "store", "credHelpers": {"myacr.azurecr.io": "acr"}})
    config = dc.load(tmp_path / "config.json")
    assert dc.helper_for(config, "myacr.azurecr.io") == ("acr", 'credHelpers["myacr.azurecr.io"]')
    assert dc.helper_for(config, "other.example") == ("store", "credsStore")
    assert dc.helper_for(dc.load(tmp_path / "absent.json"), "x") is None


@pytest.mark.parametrize(("text", "message"), [
    ("{", "config.json:1: the Docker config is not valid JSON"), ("[]", "config.json: the Docker config is not a JSON object"),
])
def test_a_broken_config_is_bad_input_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(UsageError) as err:
        dc.load(tmp_path / "config.json")
    assert err.value.message == f"{tmp_path}/{message}"


def test_an_absent_or_empty_config_is_empty(tmp_path: Path) -> None:
    assert not dc.load(tmp_path / "config.json").exists
    (tmp_path / "config.json").write_text("")
    assert dc.load(tmp_path / "config.json").auths == {}


# ------------------------------------------------------------------ real helper programs


def test_a_config_that_is_a_fifo_or_a_device_is_refused_without_waiting(tmp_path: Path) -> None:
    """A FIFO at config.json blocked every registry call until a writer came (issue #24's record
    case, in the Docker config); /dev/zero is refused without reading it."""
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(UsageError, match="the Docker config is not a regular file"):
        dc.load(fifo)
    assert time.monotonic() - started < 2
    with pytest.raises(UsageError, match="not a regular file"):
        dc.load(Path("/dev/zero"))


def test_a_helper_answers_with_the_address_on_stdin(bin_dir: Path) -> None:
    answering_helper(bin_dir, "fake", "myacr.azurecr.io", "sp-id", SECRET)
    answer = dc.ask_helper("fake", "myacr.azurecr.io")
    assert (answer.username, answer.secret) == ("sp-id", SECRET)
    assert dc.ask_helper("fake", "https://index.docker.io/v1/") is None  # "not found": anonymous
    assert helper_calls(bin_dir, "fake") == ["get myacr.azurecr.io", "get https://index.docker.io/v1/"]
    assert SECRET not in repr(answer)


@pytest.mark.parametrize(("body", "message"), [
    (f"echo 'fatal: {SECRET}' >&2; echo {SECRET}; exit 3",
     "credential helper docker-credential-bad (for h.example) failed (exit 3)"),
    (f"echo 'not json {SECRET}'", "credential helper docker-credential-bad (for h.example) answered something that is "
                                  "not its JSON credentials"),
    (f'echo \'{{"Username": "u", "Secret": 42, "x": "{SECRET}"}}\'',
     "credential helper docker-credential-bad (for h.example) answered something that is not its JSON credentials"),
])
def test_a_failing_helper_is_one_error_naming_it_never_its_output(bin_dir: Path, body: str, message: str) -> None:
    install_helper(bin_dir, "bad", body=body)
    with pytest.raises(OperationError) as err:
        dc.ask_helper("bad", "h.example")
    assert err.value.message == message
    assert SECRET not in f"{err.value.message} {err.value.hint} {err.value!r}"


def test_a_missing_helper_is_named(bin_dir: Path) -> None:
    with pytest.raises(OperationError) as err:
        dc.ask_helper("nope", "h")
    assert err.value.message == ("credential helper docker-credential-nope (for h): cannot run docker-credential-nope "
                                 "(No such file or directory)")


def test_a_hanging_helper_is_stopped_in_bounded_time_with_its_children(bin_dir: Path) -> None:
    install_helper(bin_dir, "hang", body="sleep 300 & sleep 300")  # a grandchild holds the pipes too
    started = time.monotonic()
    with pytest.raises(OperationError) as err:
        dc.ask_helper("hang", "h.example", timeout=1.0)
    assert time.monotonic() - started < 5
    assert err.value.message == ("credential helper docker-credential-hang (for h.example): docker-credential-hang "
                                 "did not answer within 1 s (stopped)")


def test_the_default_timeout_is_bounded() -> None:
    assert 0 < dc.HELPER_TIMEOUT_SECONDS <= 30


def test_token_username_means_identity_token(bin_dir: Path) -> None:
    answering_helper(bin_dir, "tok", "h.example", "<token>", SECRET)
    answer = dc.ask_helper("tok", "h.example")
    assert (answer.username, answer.secret) == ("<token>", SECRET) and dc.TOKEN_USERNAME == "<token>"

"""The credentials users already have, through the real CLI against real registries (issue #18), and
credentials that stay where they belong (issue #24).

* a Distribution registry with htpasswd auth, credentials ONLY in a Docker config (``auths``), or
  ONLY through a credential helper (a real ``docker-credential-*`` program on PATH, as
  ``credsStore`` and as ``credHelpers``): ``verify`` and ``doctor`` pass; with none, they fail
  saying where buildctl looked and what to run;
* a token registry with an identity token in ``auths`` (ACR's ``az acr login`` form): the OAuth2
  refresh flow; doctor asks for push scope;
* BUILDCTL_REGISTRY_* never reach a registry other than the release one (a real server records
  every Authorization header); a registry that echoes what it was sent makes nothing print it.

Every captured output is grepped for the secrets.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from buildctl.registry.docker_credentials import HELPER_TIMEOUT_SECONDS
from tests.helpers.cli import CliResult, run_cli
from tests.helpers.registry import PASSWORD, REFRESH_TOKEN, USER
from tests.registry.conftest import REPO
from tests.registry.helpers import (
    answering_helper,
    auth_entry,
    helper_calls,
    install_helper,
    missing_login_lines,
    write_config,
)

pytestmark = pytest.mark.engine

PLATFORMS = ("--platform", "linux/amd64", "--platform", "linux/arm64")  # repeated: works with and without comma lists
ENV_PASSWORD = "env-Pa55-" + "q" * 16


def secrets_in(text: str) -> list[str]:
    forms = [PASSWORD, REFRESH_TOKEN, ENV_PASSWORD]
    forms += [base64.b64encode(f.encode()).decode() for f in forms]
    forms += [base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
              base64.b64encode(f"ci:{ENV_PASSWORD}".encode()).decode()]
    return [f for f in forms if f in text]


def cli(*args: str, docker_config: Path, path_prefix: Path | None = None, **env: str) -> CliResult:
    full = {"DOCKER_CONFIG": str(docker_config), "BUILDCTL_REGISTRY_USERNAME": "", "BUILDCTL_REGISTRY_PASSWORD": "",
            **env}
    if path_prefix is not None:
        full["PATH"] = f"{path_prefix}:{os.environ['PATH']}"
    result = run_cli(*args, env=full, timeout=300)
    assert not secrets_in(result.output), result.output
    return result


# ------------------------------------------------------------------ verify: Docker config only, helpers only


def test_verify_with_credentials_only_in_the_docker_config(basic_registry: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"auths": {basic_registry: auth_entry(USER, PASSWORD)}})
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config)
    assert result.code == 0, result.output


def test_verify_after_a_real_docker_login(basic_registry: str, tmp_path: Path) -> None:
    """What `docker login` itself writes (not a hand-made config) is what buildctl reads."""
    config = tmp_path / "docker"
    login = subprocess.run(["docker", "login", "--username", USER, "--password-stdin", basic_registry],
                           input=PASSWORD, capture_output=True, text=True, timeout=60,
                           env={**os.environ, "DOCKER_CONFIG": str(config)})
    assert login.returncode == 0, login.stderr
    assert basic_registry in json.loads((config / "config.json").read_text())["auths"]
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config)
    assert result.code == 0, result.output


@pytest.mark.parametrize("setting", ["credsStore", "credHelpers"])
def test_verify_with_credentials_only_in_a_helper(basic_registry: str, tmp_path: Path,
                                                  setting: str) -> None:
    bin_dir = tmp_path / "bin"
    answering_helper(bin_dir, "fake", basic_registry, USER, PASSWORD)
    settings = {"credsStore": "fake"} if setting == "credsStore" else {"credHelpers": {basic_registry: "fake"}}
    config = write_config(tmp_path / "docker", settings)
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config, path_prefix=bin_dir)
    assert result.code == 0, result.output
    assert helper_calls(bin_dir, "fake") == [f"get {basic_registry}"]  # asked once for the whole verification


def test_verify_without_credentials_says_where_it_looked(basic_registry: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"auths": {"elsewhere.example": auth_entry(USER, PASSWORD)}})
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config)
    assert result.code == 1, result.output
    # the variables are for the release registry (services.yaml's 127.0.0.1:5000): not offered here
    assert result.stderr.splitlines() == missing_login_lines(basic_registry, f"manifest {basic_registry}/{REPO}:1",
                                                             config, variables_apply=False)


def test_a_failing_helper_is_one_clear_error(basic_registry: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install_helper(bin_dir, "broken", body=f"echo 'token {PASSWORD}'; exit 1")
    config = write_config(tmp_path / "docker", {"credHelpers": {basic_registry: "broken"}})
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config, path_prefix=bin_dir)
    assert result.code == 1, result.output
    assert f"credential helper docker-credential-broken (for {basic_registry}) failed (exit 1)" in result.output


def test_a_hanging_helper_is_a_bounded_clear_error(basic_registry: str, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    install_helper(bin_dir, "stuck", body="sleep 600 & sleep 600")  # a grandchild holds the pipes too
    config = write_config(tmp_path / "docker", {"credsStore": "stuck"})
    started = time.monotonic()
    result = cli("verify", *PLATFORMS, f"{basic_registry}/{REPO}:1", docker_config=config, path_prefix=bin_dir)
    assert time.monotonic() - started < HELPER_TIMEOUT_SECONDS + 15
    assert result.code == 1, result.output
    assert (f"credential helper docker-credential-stuck (for {basic_registry}): docker-credential-stuck did not "
            f"answer within {HELPER_TIMEOUT_SECONDS:g} s (stopped)") in result.stderr


def test_an_identity_token_goes_through_the_refresh_flow(bearer_registry, tmp_path: Path) -> None:
    address, tokens = bearer_registry
    config = write_config(tmp_path / "docker", {"auths": {address: {
        **auth_entry("00000000-0000-0000-0000-000000000000", ""), "identitytoken": REFRESH_TOKEN}}})
    tokens.requests.clear()
    result = cli("--debug", "verify", *PLATFORMS, f"{address}/{REPO}:1", docker_config=config)
    assert result.code == 0, result.output
    assert tokens.requests == [{"method": "POST", "grant_type": "refresh_token", "service": "buildctl-test-registry",
                                "scope": f"repository:{REPO}:pull", "client_id": "buildctl"}]


# ------------------------------------------------------------------ credentials stay where they belong


class Recorder(BaseHTTPRequestHandler):
    """A registry that wants Basic auth, records every Authorization header, and answers an
    authenticated request with an error that echoes the header and everything it was sent."""

    seen: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        header = self.headers.get("Authorization", "")
        self.server.seen.append(header)  # type: ignore[attr-defined]
        if not header:
            body, status = b"", 401
        else:
            decoded = base64.b64decode(header.split()[-1]).decode(errors="replace") if " " in header else ""
            body = json.dumps({"errors": [{"code": "BAD", "message": f"rejected header {header!r} = {decoded!r}"}]})
            body, status = body.encode(), 400
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="recorder"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_port}", server.seen  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_the_variables_never_go_to_another_registry(recorder, tmp_path: Path) -> None:
    address, seen = recorder
    env = {"BUILDCTL_REGISTRY_USERNAME": "ci", "BUILDCTL_REGISTRY_PASSWORD": ENV_PASSWORD}
    result = cli("verify", "--registry", "myacr.azurecr.io", *PLATFORMS, f"{address}/third/party:1",
                 docker_config=write_config(tmp_path / "docker", {}), **env)
    assert result.code == 1, result.output
    assert seen and not [h for h in seen if h], seen  # asked, and sent nothing
    assert "(set, but sent only to the release registry myacr.azurecr.io)" in result.output


@pytest.mark.parametrize("where", ["variables", "docker config"])
def test_a_registry_echoing_the_credentials_makes_nothing_print_them(recorder, tmp_path: Path, where: str) -> None:
    address, seen = recorder
    if where == "variables":
        env = {"BUILDCTL_REGISTRY_USERNAME": "ci", "BUILDCTL_REGISTRY_PASSWORD": ENV_PASSWORD}
        config = write_config(tmp_path / "docker", {})
    else:
        env = {}
        config = write_config(tmp_path / "docker", {"auths": {address: auth_entry(USER, PASSWORD)}})
    for args in (["--debug", "verify", "--registry", address], ["verify", "--json", "--registry", address]):
        result = cli(*args, *PLATFORMS, f"{address}/team/app:1", docker_config=config, **env)  # greps the output
        assert result.code == 1, result.output
        assert "rejected header 'Basic ***' = " in result.output, result.output
    assert [h for h in seen if h], "the credentials were sent (and echoed), so the redaction was exercised"


# ------------------------------------------------------------------ doctor checks access


def doctor(registry: str, config: Path, *, image: str = REPO, path_prefix: Path | None = None,
           project: Path) -> tuple[int, dict[str, dict]]:
    (project / "services.yaml").write_text(f"registry: {registry}\nservices:\n  app: {{context: ., image: {image}}}\n")
    (project / "Dockerfile").write_text("FROM scratch\n")
    result = run_cli("doctor", "--json", cwd=project, timeout=300,
                     env={"DOCKER_CONFIG": str(config), **({"PATH": f"{path_prefix}:{os.environ['PATH']}"}
                                                           if path_prefix else {})})
    assert not secrets_in(result.output), result.output
    return result.code, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_doctor_with_credentials_in_the_docker_config_or_a_helper(basic_registry: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"auths": {basic_registry: auth_entry(USER, PASSWORD)}})
    code, checks = doctor(basic_registry, config, project=tmp_path)
    assert checks["registry credentials"] == {
        "name": "registry credentials", "ok": True, "fix": "",
        "detail": f'credentials from auths["{basic_registry}"] in {config}/config.json accepted (Basic)'}
    assert code == 0, checks
    bin_dir = tmp_path / "bin"
    answering_helper(bin_dir, "fake", basic_registry, USER, PASSWORD)
    code, checks = doctor(basic_registry, write_config(tmp_path / "d2", {"credsStore": "fake"}), project=tmp_path,
                          path_prefix=bin_dir)
    assert code == 0 and checks["registry credentials"]["ok"], checks


def test_doctor_fails_without_credentials_naming_the_fix(basic_registry: str, tmp_path: Path) -> None:
    code, checks = doctor(basic_registry, write_config(tmp_path / "docker", {}), project=tmp_path)
    assert code == 1
    assert checks["registry"]["ok"] and "requires authentication" in checks["registry"]["detail"]
    creds = checks["registry credentials"]
    assert not creds["ok"] and creds["detail"].startswith(f"no credentials for {basic_registry}; looked in ")
    assert creds["fix"] == (f"run `docker login {basic_registry}`, or set BUILDCTL_REGISTRY_USERNAME and "
                            "BUILDCTL_REGISTRY_PASSWORD")


def test_doctor_fails_with_refused_credentials(basic_registry: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "docker", {"auths": {basic_registry: auth_entry(USER, "wrong-" + PASSWORD)}})
    code, checks = doctor(basic_registry, config, project=tmp_path)
    assert code == 1
    assert checks["registry credentials"]["detail"] == f"registry {basic_registry} rejected the credentials (HTTP 401) for /v2/"
    assert checks["registry credentials"]["fix"].endswith(f"renew them: `docker login {basic_registry}`")


def test_doctor_asks_a_token_registry_for_push_scope(bearer_registry, tmp_path: Path) -> None:
    address, tokens = bearer_registry
    config = write_config(tmp_path / "docker", {"auths": {address: auth_entry(USER, PASSWORD)}})
    tokens.grant_push = False
    code, checks = doctor(address, config, project=tmp_path)
    assert code == 1
    assert checks["registry credentials"]["detail"].endswith(f"are accepted but the token grants pull on {REPO}, not push")
    tokens.grant_push = True
    try:
        code, checks = doctor(address, config, project=tmp_path)
    finally:
        tokens.grant_push = False
    assert code == 0, checks
    assert checks["registry credentials"]["detail"].endswith(f"accepted: token grants push to {REPO}")

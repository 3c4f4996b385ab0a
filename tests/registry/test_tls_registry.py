"""A registry like ACR — TLS with a private CA, username/password — end to end (issue #5): login from
the environment through stdin only, build, push, verify, tag; wrong credentials; a login that
expires mid-run is renewed once."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.gitops import CmdlineWatcher
from tests.helpers.reliability import record, scratch_project, unique_tag
from tests.helpers.tls_registry import TlsRegistry, docker_trusts, tls_registry_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.engine

IMAGE = "buildctl-acr/app"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_project(tmp_path_factory.mktemp("acr"), IMAGE)


def new_tag() -> str:
    return unique_tag("acr")


def machine_docker_config() -> bytes | None:
    path = Path.home() / ".docker" / "config.json"
    return path.read_bytes() if path.exists() else None


def test_login_build_push_verify_and_tag_over_tls(tls_registry: TlsRegistry, project: Path, tmp_path: Path) -> None:
    reg, tag = tls_registry, new_tag()
    # The registry really is TLS-only and authenticated.
    assert httpx.get(f"https://{reg.address}/v2/", verify=reg.ssl_context()).status_code == 401
    assert b"HTTP request to an HTTPS server" in httpx.get(f"http://{reg.address}/v2/").content
    machine_before = machine_docker_config()
    with CmdlineWatcher() as ps:
        result = run_cli("build", "--registry", reg.address, "--tag", tag, "--record", "rec.json", cwd=project,
                         env=reg.env(tmp_path / "docker"))
    assert result.code == 0, result.output
    service = record(project / "rec.json")["services"][0]
    assert service["verified"] and service["tagged"]
    assert {c["name"] for c in service["checks"] if c["status"] == "pass"} >= {"platforms", "config", "elf"}
    assert reg.resolve(IMAGE, tag) == service["index_digest"]
    # The login went through stdin, into a Docker config of this run only (deleted at its end, so
    # it is not left in the job's config either); the password never in argv.
    logins = [c for c in ps.seen if " login " in c and reg.address in c]
    assert logins and all("--password-stdin" in c for c in logins), logins
    assert not [c for c in ps.seen if reg.password in c]
    job_config = tmp_path / "docker" / "config.json"
    assert not job_config.exists() or reg.address not in json.loads(job_config.read_text()).get("auths", {})
    assert machine_docker_config() == machine_before
    assert reg.password not in result.output


def test_wrong_credentials_give_one_clear_line(tls_registry: TlsRegistry, project: Path, tmp_path: Path) -> None:
    reg, tag = tls_registry, new_tag()
    wrong = "not-" + reg.password
    result = run_cli("build", "--registry", reg.address, "--tag", tag, cwd=project,
                     env=reg.env(tmp_path / "docker", password=wrong))
    assert result.code == 1, result.output
    assert result.stderr.splitlines() == [
        f"buildctl: error: registry {reg.address} refused the login of '{reg.username}' (401 Unauthorized)",
        "  hint: check BUILDCTL_REGISTRY_USERNAME / BUILDCTL_REGISTRY_PASSWORD",
    ]
    assert result.stdout == ""
    assert wrong not in result.output
    assert reg.resolve(IMAGE, tag) is None  # nothing was built or pushed


@pytest.mark.parametrize("renewable", [True, False], ids=["renewed", "revoked"])
def test_a_login_that_expires_before_tagging_is_renewed_once(tls_registry: TlsRegistry, project: Path, tmp_path: Path,
                                                             renewable: bool) -> None:
    reg, tag = tls_registry, new_tag()
    host = reg.address.rsplit(":", 1)[0]
    # A TLS proxy in front of the registry answers the tag's PUT with 401 — a session that expired
    # after the push — until a new `docker login` arrives (or, revoked, whatever happens).
    with FaultProxy(reg.address, tls=(reg.cert_file, reg.key_file), upstream_ca=reg.ca_file, host=host) as proxy, \
            docker_trusts(proxy.address, reg.ca_file):
        proxy.expire_login(method="PUT", path=rf"/manifests/{tag}$", renewable=renewable)
        (project / "rec.json").unlink(missing_ok=True)  # the project is shared: no other case's record
        result = run_cli("build", "--registry", proxy.address, "--tag", tag, "--record", "rec.json", cwd=project,
                         env=reg.env(tmp_path / "docker"))
        refused, logins = proxy.count("injected 401"), proxy.count("login seen")
    renewals = re.findall(rf"WARNING: tagging {re.escape(proxy.address)}/{IMAGE}:{tag}: registry \S+ answered 401 "
                          r"Unauthorized \(the login expired\?\); logged in again from the environment", result.stderr)
    assert len(renewals) == 1, result.stderr  # once, and only once
    assert refused >= 1 and logins == 1
    if renewable:
        assert result.code == 0, result.output
        assert reg.resolve(IMAGE, tag) == record(project / "rec.json")["services"][0]["index_digest"]
    else:
        assert result.code == 1, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("buildctl: error:")]
        # the whole line, the command included (the staged index by digest)
        ref = re.escape(f"{proxy.address}/{IMAGE}")
        command = rf"{re.escape(shutil.which('docker'))} buildx imagetools create --tag {ref}:{tag} {ref}@sha256:[0-9a-f]{{64}}"
        assert len(errors) == 1 and re.fullmatch(
            rf"buildctl: error: tagging {ref}:{tag}: registry {re.escape(proxy.address)} answered 401 Unauthorized: "
            rf"`{command}` exited 1", errors[0]), result.stderr
        assert reg.resolve(IMAGE, tag) is None
    assert reg.password not in result.output

"""`buildctl build` to an ACR-like registry (TLS, htpasswd) with the user's own login and no
BUILDCTL_REGISTRY_* at all: credentials only in a Docker config, or only in a credential helper on
PATH. buildx pushes with them and buildctl's own client (preflight, verify, tags) reads the same;
without any, the release stops before building, saying where it looked (issue #18)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.cli import CliResult, run_cli
from tests.helpers.reliability import record, scratch_project, unique_tag
from tests.helpers.tls_registry import TlsRegistry, tls_registry_fixture  # noqa: F401 (the fixture)
from tests.registry.helpers import answering_helper, auth_entry, helper_calls, missing_login_lines, write_config

pytestmark = pytest.mark.engine

IMAGE = "buildctl-creds/app"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_project(tmp_path_factory.mktemp("creds-build"), IMAGE)


def build(reg: TlsRegistry, project: Path, docker_config: Path, tag: str, *, bin_dir: Path | None = None) -> CliResult:
    env = {"SSL_CERT_FILE": str(reg.ca_file), "DOCKER_CONFIG": str(docker_config),
           "BUILDCTL_REGISTRY_USERNAME": "", "BUILDCTL_REGISTRY_PASSWORD": ""}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    result = run_cli("build", "--registry", reg.address, "--tag", tag, "--record", "rec.json", cwd=project, env=env)
    assert reg.password not in result.output
    return result


def released(reg: TlsRegistry, project: Path, tag: str) -> None:
    service = record(project / "rec.json")["services"][0]
    assert service["verified"] and service["tagged"]
    assert reg.resolve(IMAGE, tag) == service["index_digest"]


def test_build_with_credentials_only_in_the_docker_config(tls_registry: TlsRegistry, project: Path,
                                                          tmp_path: Path) -> None:
    reg, tag = tls_registry, unique_tag("cfg")
    config = write_config(tmp_path / "docker", {"auths": {reg.address: auth_entry(reg.username, reg.password)}})
    result = build(reg, project, config, tag)
    assert result.code == 0, result.output
    released(reg, project, tag)


def test_build_with_credentials_only_in_a_helper(tls_registry: TlsRegistry, project: Path, tmp_path: Path) -> None:
    reg, tag = tls_registry, unique_tag("helper")
    bin_dir = tmp_path / "bin"
    answering_helper(bin_dir, "buildctl-test", reg.address, reg.username, reg.password)
    config = write_config(tmp_path / "docker", {"credHelpers": {reg.address: "buildctl-test"}})
    result = build(reg, project, config, tag, bin_dir=bin_dir)
    assert result.code == 0, result.output
    released(reg, project, tag)
    assert f"get {reg.address}" in helper_calls(bin_dir, "buildctl-test")  # asked by buildctl and by buildx


def test_build_without_credentials_stops_before_building(tls_registry: TlsRegistry, project: Path,
                                                         tmp_path: Path) -> None:
    reg, tag = tls_registry, unique_tag("none")
    config = write_config(tmp_path / "docker", {})
    result = build(reg, project, config, tag)
    assert result.code == 1, result.output
    assert result.stderr.splitlines() == missing_login_lines(reg.address, "/v2/", config, variables_apply=True)
    assert reg.resolve(IMAGE, tag) is None

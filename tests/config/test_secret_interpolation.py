"""No secret interpolated into a services.yaml field (issue #24): `${BUILDCTL_REGISTRY_PASSWORD}` in a
build arg or `${SYSTEM_ACCESSTOKEN}` as the tag would be printed by `plan`/`plan --json`, passed to
buildx on its command line and stored in the image's provenance. Refused by the variable's name,
set or not; the message names file:line, the field and the variable, never the value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import run_cli

SECRET = "hunter2-Very-S3cret-value"
ENVIRON = {name: SECRET for name in ("BUILDCTL_REGISTRY_PASSWORD", "SYSTEM_ACCESSTOKEN", "BUILDCTL_GIT_TOKEN",
                                     "GITHUB_TOKEN", "NPM_TOKEN", "DB_PASSWORD", "AZURE_CLIENT_SECRET")}  # fmt: skip


def write(project: Path, text: str) -> Path:
    path = project / "services.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def message(name: str) -> str:
    return (f"${{{name}}} holds a secret, and services.yaml fields are printed by `plan`, passed to buildx on its "
            "command line and stored in the image's provenance: it may not be interpolated")


@pytest.mark.parametrize(("text", "where", "name"), [
    ('services:\n  api:\n    context: api\n    image: team/api\n    build_args: {X: "${BUILDCTL_REGISTRY_PASSWORD}"}\n',
     "services.yaml:5: services.api.build_args.X", "BUILDCTL_REGISTRY_PASSWORD"),
    ('tag: "${SYSTEM_ACCESSTOKEN}"\nservices:\n  api: {context: api, image: team/api}\n',
     "services.yaml:1: tag", "SYSTEM_ACCESSTOKEN"),
    ('tag: "v-${GITHUB_TOKEN:-none}"\nservices:\n  api: {context: api, image: team/api}\n',  # with a default too
     "services.yaml:1: tag", "GITHUB_TOKEN"),
    ('services:\n  api:\n    context: api\n    image: team/api\n    labels: {who: "${BUILDCTL_GIT_TOKEN}"}\n',
     "services.yaml:5: services.api.labels.who", "BUILDCTL_GIT_TOKEN"),
    ('services:\n  api:\n    context: api\n    image: team/${NPM_TOKEN}\n', "services.yaml:4: services.api.image", "NPM_TOKEN"),
    ('gitops: {repo: "https://x:${DB_PASSWORD}@h/x.git"}\nservices:\n  api: {context: api, image: team/api}\n',
     "services.yaml:1: gitops.repo", "DB_PASSWORD"),
    ('services:\n  api:\n    context: api\n    image: team/api\n    build_args:\n      A: "1"\n      B: "x${AZURE_CLIENT_SECRET}"\n',
     "services.yaml:7: services.api.build_args.B", "AZURE_CLIENT_SECRET"),
    ('services:\n  api:\n    context: api\n    image: team/api\n    build_args: {X: "${UNSET_BUT_A_TOKEN}"}\n',  # unset
     "services.yaml:5: services.api.build_args.X", "UNSET_BUT_A_TOKEN"),
])  # fmt: skip
def test_a_secret_variable_is_refused_in_any_field(project_dir, monkeypatch, text, where, name):
    monkeypatch.chdir(project_dir)
    write(project_dir, text)
    with pytest.raises(ConfigError) as err:
        load_config(Path("services.yaml"), environ=ENVIRON)
    assert str(err.value) == f"{where}: {message(name)}"
    assert err.value.exit_code == EXIT_BAD_INPUT
    assert f"env: {name}" in err.value.hint
    assert SECRET not in str(err.value) + err.value.hint


def test_plain_variables_and_escapes_still_interpolate(project_dir):
    path = write(project_dir, """\
        tag: ${BUILD_BUILDID}
        services:
          api: {context: api, image: team/api, build_args: {COST: "$${GITHUB_TOKEN}", PORT: "${PORT:-80}", K: "${MONKEY}"}}
        """)
    cfg = load_config(path, environ={"BUILD_BUILDID": "42", "MONKEY": "m", **ENVIRON})
    assert cfg.tag == "42"
    assert dict(cfg.services[0].build_args) == {"COST": "${GITHUB_TOKEN}", "PORT": "80", "K": "m"}  # $$ is literal


@pytest.mark.parametrize("args", [["plan"], ["plan", "--json"]])
def test_plan_refuses_and_never_prints_the_secret(project_dir, args):
    write(project_dir, """\
        tag: "${SYSTEM_ACCESSTOKEN}"
        services:
          api: {context: api, image: team/api, build_args: {X: "${BUILDCTL_REGISTRY_PASSWORD}"}}
        """)
    result = run_cli(*args, cwd=project_dir, env=ENVIRON, timeout=60)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert f"buildctl: error: services.yaml:1: tag: {message('SYSTEM_ACCESSTOKEN')}" in result.stderr
    assert SECRET not in result.output

"""services.yaml loading: defaults, interpolation, and the bad-input corpus with exact messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from buildctl.config.loader import load_config, select_services
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import named, run_cli

VALID = """\
services:
  api:
    context: api
    image: team/api
"""


def write(project: Path, text: str) -> Path:
    path = project / "services.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults(project_dir: Path) -> None:
    cfg = load_config(write(project_dir, VALID), environ={})
    assert cfg.registry == "127.0.0.1:5000"
    assert cfg.tag == "latest"
    assert cfg.platforms == ("linux/amd64", "linux/arm64")
    svc = named(cfg.services, "api")
    assert svc.context == (project_dir / "api").resolve()
    assert svc.dockerfile == (project_dir / "api" / "Dockerfile").resolve()
    assert svc.platforms == cfg.platforms
    assert cfg.gitops is None and cfg.builder.name == "default" and cfg.build.provenance is True


def test_interpolation_and_overrides(project_dir: Path) -> None:
    path = write(project_dir, """\
        registry: ${REG:-myacr.azurecr.io}
        tag: build-${BUILD_BUILDID}
        gitops: {repo: ../gitops.git, branch: release}
        services:
          api: {context: api, image: team/api, platforms: [linux/arm64/v8], build_args: {PORT: 80, COST: $$5}}
        """)
    cfg = load_config(path, environ={"BUILD_BUILDID": "4711"})
    assert (cfg.registry, cfg.tag) == ("myacr.azurecr.io", "build-4711")
    assert named(cfg.services, "api").platforms == ("linux/arm64/v8",)
    assert dict(named(cfg.services, "api").build_args) == {"PORT": "80", "COST": "$5"}
    assert cfg.gitops.repo == str((project_dir.parent / "gitops.git").resolve())
    cfg = load_config(path, tag="v2", registry="localhost:5001", environ={"BUILD_BUILDID": "1", "REG": "x.io"})
    assert (cfg.registry, cfg.tag) == ("localhost:5001", "v2")


def test_select_services(project_dir: Path) -> None:
    path = write(project_dir, VALID + "  web:\n    context: web\n    image: team/web\n")
    cfg = load_config(path, environ={})
    assert [s.name for s in select_services(cfg, ["web"]).services] == ["web"]
    with pytest.raises(ConfigError, match=r"^SERVICE: unknown service 'db' \(services: api, web\)$"):
        select_services(cfg, ["db"])


# (services.yaml text, exact message). Lines are 1-based lines of services.yaml.
BAD = [
    ("services: [\n", "services.yaml:2: not valid YAML: expected the node content, but found '<stream end>'"),
    ("", "services.yaml:1: the file is empty"),
    ("- a\n- b\n", "services.yaml:1: expected a mapping, got list ['a', 'b']"),
    ("registry: x.io\n", "services.yaml:1: missing required key 'services'"),
    ("regsitry: x.io\n" + VALID, "services.yaml:1: unknown key 'regsitry' (did you mean 'registry'?)"),  # more: test_unknown_keys.py
    (VALID + "    contxt: api\n", "services.yaml:5: services.api: unknown key 'contxt' (did you mean 'context'?)"),
    ("services:\n  api:\n    image: team/api\n", "services.yaml:2: services.api: missing required key 'context'"),
    ("platforms: [arm64]\n" + VALID, "services.yaml:1: platforms[0]: invalid platform 'arm64': expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7"),
    ("platforms: linux/amd64\n" + VALID, "services.yaml:1: platforms: expected a list, got string 'linux/amd64'"),
    ("platforms: []\n" + VALID, "services.yaml:1: platforms: must not be empty"),
    ("platforms: [linux/amd64, linux/amd64]\n" + VALID, "services.yaml:1: platforms[1]: duplicate 'linux/amd64' (the same as item 0)"),
    (VALID + "    platforms: [linux/arm64/v8, Linux/ARM64]\n", "services.yaml:5: services.api.platforms[1]: invalid platform 'Linux/ARM64': platforms are lowercase, 'linux/arm64'"),
    ("services:\n  api:\n    context: api\n    image: Team/API\n", "services.yaml:4: services.api.image: invalid image name 'Team/API': must be lowercase"),
    ("services:\n  api:\n    context: api\n    image: team/api:v1\n", "services.yaml:4: services.api.image: invalid image name 'team/api:v1': expected a path like voting-app/vote (lowercase, no registry, no tag)"),
    ("registry: 'https://x.io'\n" + VALID, "services.yaml:1: registry: invalid registry 'https://x.io': expected host[:port], e.g. myacr.azurecr.io"),
    ("tag: 'v1 beta'\n" + VALID, "services.yaml:1: tag: invalid tag 'v1 beta': tags are 1-128 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')"),
    ("tag: " + "x" * 129 + "\n" + VALID, "services.yaml:1: tag: invalid tag '" + "x" * 129 + "': tags are 1-128 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')"),
    ("tag: ${NOPE_NOT_SET}\n" + VALID, "services.yaml:1: tag: environment variable NOPE_NOT_SET is not set (write ${NOPE_NOT_SET:-default} to give a default)"),
    ("services:\n  api:\n    context: ../../etc\n    image: team/api\n", "services.yaml:3: services.api.context: context '../../etc' is outside the project folder {root}"),
    ("services:\n  api:\n    context: missing\n    image: team/api\n", "services.yaml:3: services.api.context: context folder 'missing' does not exist"),
    ("services:\n  api:\n    context: api\n    dockerfile: api/Dockerfile.prod\n    image: team/api\n", "services.yaml:4: services.api.dockerfile: Dockerfile 'api/Dockerfile.prod' does not exist"),
    ("services:\n  api:\n    context: api\n    dockerfile: ../../x/Dockerfile\n    image: team/api\n", "services.yaml:4: services.api.dockerfile: Dockerfile '../../x/Dockerfile' is outside the project folder {root}"),
    ("services:\n  api: {context: api, image: team/x}\n  web: {context: web, image: team/x}\n", "services.yaml:3: services.web.image: image 'team/x' is also used by service 'api'"),
    ("services:\n  api: {context: api, image: team/api}\n  api: {context: web, image: team/web}\n", "services.yaml:3: services.api: duplicate key"),
    ("services:\n  API: {context: api, image: team/api}\n", "services.yaml:2: services.API: service names must be lowercase: 'api'"),
    ("services: {}\n", "services.yaml:1: services: must not be empty"),
    (VALID + "    build_args: {GITHUB_TOKEN: abc}\n", "services.yaml:5: services.api.build_args.GITHUB_TOKEN: build arg 'GITHUB_TOKEN' looks like a secret; build args are stored in provenance attestations"),
    (VALID + "    build_args: {OPTS: [a, b]}\n", "services.yaml:5: services.api.build_args.OPTS: expected a string or a number or true or false, got list ['a', 'b']"),
    ("builder: {driver: swarm}\n" + VALID, "services.yaml:1: builder.driver: must be one of docker, docker-container, remote, kubernetes, got 'swarm'"),
    ("binfmt: {method: magic}\n" + VALID, "services.yaml:1: binfmt.method: must be one of host, image, got 'magic'"),
    ("build: {provenance: 'yes'}\n" + VALID, "services.yaml:1: build.provenance: expected true or false, got string 'yes'"),
    ("gitops: {branch: main}\n" + VALID, "services.yaml:1: gitops: missing required key 'repo'"),
    ("gitops: {repo: 'https://user:s3cret@dev.azure.com/org/_git/repo'}\n" + VALID, "services.yaml:1: gitops.repo: the repository URL contains credentials; remove them and set BUILDCTL_GIT_TOKEN instead"),
    ("gitops: {repo: x, push_retries: 0}\n" + VALID, "services.yaml:1: gitops.push_retries: 0 is less than the minimum of 1"),
    (VALID + "    manifests: [{containers: [api]}]\n", "services.yaml:5: services.api.manifests[0]: a manifest is a path or {path: ..., containers: [...]}"),
    (VALID + "    manifests: [../other/deploy.yaml]\n", "services.yaml:5: services.api.manifests[0]: manifest path '../other/deploy.yaml' must be relative to the GitOps repository root, without '..'"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[f"bad{i:02d}" for i in range(len(BAD))])
def test_bad_input_has_one_exact_message(project_dir: Path, monkeypatch, text: str, message: str) -> None:
    monkeypatch.chdir(project_dir)
    (project_dir / "services.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Path("services.yaml"), environ={})
    assert info.value.message == message.replace("{root}", str(project_dir.resolve()))
    assert info.value.exit_code == EXIT_BAD_INPUT


def test_secret_password_never_echoed(project_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(project_dir)
    write(project_dir, "gitops: {repo: 'https://user:s3cret@dev.azure.com/org/_git/repo'}\n" + VALID)
    with pytest.raises(ConfigError) as info:
        load_config(Path("services.yaml"), environ={})
    assert "s3cret" not in str(info.value) and "s3cret" not in (info.value.hint or "")


def test_unreadable_dockerfile(project_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(project_dir)
    (project_dir / "api" / "Dockerfile").unlink()
    (project_dir / "api" / "Dockerfile").mkdir()  # unreadable as a file, even for root
    write(project_dir, VALID)
    with pytest.raises(ConfigError, match=r"^services.yaml:3: services.api.context: Dockerfile 'api/Dockerfile' is a folder, not a file$"):
        load_config(Path("services.yaml"), environ={})


@pytest.mark.parametrize(("text", "message"), [BAD[0], BAD[7], BAD[20]], ids=["yaml", "platform", "dockerfile"])
def test_cli_prints_one_line_and_exits_2(project_dir: Path, text: str, message: str) -> None:
    (project_dir / "services.yaml").write_text(text)
    result = run_cli("plan", cwd=project_dir)
    assert result.code == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == "buildctl: error: " + message
    assert "Traceback" not in result.stderr


def test_cli_bad_tag_override(project_dir: Path) -> None:
    write(project_dir, VALID)
    result = run_cli("plan", "--tag", "-bad", cwd=project_dir)
    assert result.code == EXIT_BAD_INPUT
    assert "--tag: invalid tag '-bad'" in result.stderr


def test_cli_missing_config(tmp_path: Path) -> None:
    result = run_cli("plan", "-c", "nowhere/services.yaml", cwd=tmp_path)
    assert result.code == EXIT_BAD_INPUT
    assert result.stderr.splitlines()[0] == "buildctl: error: nowhere/services.yaml: file not found"


def test_verify_section(project_dir: Path) -> None:
    cfg = load_config(write(project_dir, VALID), environ={})
    assert cfg.verify.allow_foreign == () and cfg.verify.deadline_seconds == 120.0
    text = ("verify: {allow_foreign: [/lib/firmware/*], deadline_seconds: 30}\n" + VALID
            + "    verify: {allow_foreign: [/opt/cross/*]}\n")
    cfg = load_config(write(project_dir, text), environ={})
    assert cfg.verify.allow_foreign == ("/lib/firmware/*",) and cfg.verify.deadline_seconds == 30.0
    assert named(cfg.services, "api").allow_foreign == ("/opt/cross/*",)
    with pytest.raises(ConfigError, match=r"services.yaml:1: verify.allow_foreign\[0\]: invalid glob 'lib/\*'"):
        load_config(write(project_dir, "verify: {allow_foreign: [lib/*]}\n" + VALID), environ={})
    with pytest.raises(ConfigError, match=r"services.yaml:1: verify.deadline_seconds"):
        load_config(write(project_dir, "verify: {deadline_seconds: 0}\n" + VALID), environ={})

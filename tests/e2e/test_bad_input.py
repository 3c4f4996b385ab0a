"""Bad input beyond services.yaml: CLI arguments, manifests, environment, the machine.

Each case: one clear line on stderr, the documented exit code, and no side effect — nothing
pushed or tagged, nothing changed in Git. (services.yaml cases: tests/test_config.py.)
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, run_cli
from tests.helpers.gitops import git
from tests.helpers.project import GOOD, index_digest, make_project, seed_gitops

ERROR = "buildctl: error: "


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(ERROR)]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0][len(ERROR):]


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "--jobs", "0"], "Invalid value for '--jobs' / '-j'"),
    (["build", "--bogus"], "No such option: --bogus"),
    (["deploy"], "No such command 'deploy'"),
    (["verify"], "Missing argument 'IMAGE...'"),
])
def test_cli_argument_errors_exit_2(args: list[str], expected: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, result.output
    assert expected in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["plan", "nosuch"], "SERVICE: unknown service 'nosuch' (services: result, vote, worker)"),
    (["plan", "-c", "vote"], "vote: is a folder, not a file"),
    (["build", "--platform", "linux/arm64"], "--platform goes with --local or --by-digest; for releases set platforms: in services.yaml"),
    (["verify", "Bad/Image:1", "--platform", "linux/amd64"],
     "invalid image reference 'Bad/Image:1': repository names must be lowercase"),
    (["verify", "127.0.0.1:5000/x:1", "--platform", "arm64"],
     "invalid platform 'arm64': expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7"),
    (["update-manifests"], "--record PATH is required: the release record of a verified build (buildctl build --record PATH)"),
    (["update-manifests", "--record", "missing.json"], "missing.json: release record not found"),
    (["binfmt", "--method", "magic"], "--method must be host or image, got 'magic'"),
])
def test_usage_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.code == 2, result.output
    # The whole line: a message that only echoes the input back, or a prefix of the right one, fails.
    assert one_error_line(result.stderr) == message


def test_half_set_registry_credentials_exit_2() -> None:
    result = run_cli("build", "-q", env={"BUILDCTL_REGISTRY_USERNAME": "sp-id", "BUILDCTL_REGISTRY_PASSWORD": ""})
    assert result.code == 2
    assert one_error_line(result.stderr) == "BUILDCTL_REGISTRY_PASSWORD is not set (set both registry credential variables, or neither)"


def test_unverified_record_is_refused(tmp_path: Path) -> None:
    record = {"tag": "1", "registry": "127.0.0.1:5000", "services": [
        {"name": "vote", "repository": "127.0.0.1:5000/voting-app/vote", "tag": "1",
         "index_digest": "sha256:" + "a" * 64, "verified": False, "tagged": False}]}
    (tmp_path / "r.json").write_text(json.dumps(record))
    result = run_cli("update-manifests", "--record", str(tmp_path / "r.json"))
    assert result.code == 2
    assert "vote" in one_error_line(result.stderr) and "verified" in one_error_line(result.stderr)


@pytest.mark.engine
def test_no_daemon_is_one_clear_line() -> None:
    result = run_cli("build", "-q", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.code == 1
    assert one_error_line(result.stderr).startswith("the Docker daemon is not reachable")
    assert "scripts/stack.sh up" in result.stderr


@pytest.mark.engine
def test_builder_missing_a_platform_builds_nothing(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text(
        "platforms: [linux/amd64, linux/arm/v7]\nservices:\n  api: {context: api, image: buildctl-e2e/v7}\n")
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    result = run_cli("build", "--tag", tag, "-q", cwd=project_dir)
    assert result.code == 1
    assert "does not support linux/arm/v7" in one_error_line(result.stderr)
    assert not (project_dir / ".buildctl" / "runs").exists() or not any((project_dir / ".buildctl" / "runs").rglob("*.log"))
    assert index_digest("buildctl-e2e/v7", tag) is None


def _gitops_project(tmp_path: Path, manifest: str, *, branch: str = "main") -> tuple[Path, Path]:
    (tmp_path / "p").mkdir()
    project = make_project(tmp_path / "p", {"api": GOOD})
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    (deploy / "api.yaml").write_text(manifest)
    remote = seed_gitops(tmp_path, deploy)
    text = (project / "services.yaml").read_text().replace(
        "services:\n", f"gitops: {{repo: {remote}, branch: {branch}}}\nservices:\n", 1)
    (project / "services.yaml").write_text(text + "    manifests: [deploy/api.yaml]\n")
    return project, remote


@pytest.mark.engine
@pytest.mark.parametrize(("manifest", "branch", "message"), [
    ("just: [a, list\n", "main", "deploy/api.yaml:2: not valid YAML"),
    ("apiVersion: v1\nkind: ConfigMap\ndata: {image: x}\n", "main", "deploy/api.yaml"),
    ("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n    - {name: a, image: 127.0.0.1:5000/buildctl-e2e/api:1}\n",
     "release", "gitops.branch: branch 'release' does not exist in"),
], ids=["malformed-manifest", "no-matching-image", "missing-branch"])
def test_bad_gitops_input_fails_before_anything_is_built(tmp_path: Path, manifest: str, branch: str, message: str) -> None:
    project, remote = _gitops_project(tmp_path, manifest, branch=branch)
    before = git("--git-dir", str(remote), "rev-parse", "main")
    tag = f"bad-{uuid.uuid4().hex[:8]}"
    result = run_cli("run", "--tag", tag, "-q", cwd=project)
    assert result.code == 2, result.output
    assert message in one_error_line(result.stderr)
    assert index_digest("buildctl-e2e/api", tag) is None
    assert git("--git-dir", str(remote), "rev-parse", "main") == before
    assert subprocess.run(["git", "--git-dir", str(remote), "branch", "--list"], capture_output=True,
                          text=True).stdout.split() == ["*", "main"]


def test_plan_does_not_need_a_daemon() -> None:
    result = run_cli("plan", "--json", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, cwd=PROJECT)
    assert result.code == 0 and json.loads(result.stdout)["services"]


def test_run_without_a_gitops_section_refuses_before_building(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("services:\n  api: {context: api, image: buildctl-e2e/nogitops}\n")
    result = run_cli("run", "--tag", "never", "-q", cwd=project_dir)
    assert result.code == 2
    assert one_error_line(result.stderr) == (
        "`buildctl run` needs a gitops: section in services.yaml (or use `buildctl build`)")
    assert not (project_dir / ".buildctl").exists()


# --------------------------------------------------------------------------- issue #14: the table
# Hostile input of every class, none needing the engine: per case the files of a scratch project
# ({tmp} is its folder), the command, the exit code and the exact error line. Each must also be
# quick, print no traceback and no secret, and leave nothing behind (no .buildctl/ folder).

API = "  api: {context: api, image: team/api, manifests: [a.yaml]}\n"
SECRET = "s3cr3t-T0KEN"
RECORD = json.dumps({"services": [{"name": "api", "repository": "127.0.0.1:5000/team/api", "tag": "1",
                                   "index_digest": "sha256:" + "a" * 64, "verified": True, "tagged": True}]})


def _laughs(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _record_with(**changes) -> str:
    data = json.loads(RECORD)
    data["services"][0].update(changes)
    return json.dumps(data)


TABLE = [
    # YAML that expands or nests
    ("alias-bomb", {"services.yaml": _laughs(9) + "services:\n" + API}, ["plan"], 2,
     "services.yaml:6: aliases expand the document past 100000 nodes (an alias bomb?)"),
    ("alias-bomb-in-a-key", {"services.yaml": _laughs(8) + "services:\n  ? *a8\n  : {context: api}\n"}, ["plan"], 2,
     "services.yaml:6: aliases expand the document past 100000 nodes (an alias bomb?)"),
    ("alias-cycle", {"services.yaml": "x-loop: &l [*l]\nservices:\n" + API}, ["plan"], 2,
     "services.yaml:1: alias *l is inside the node it refers to (a cycle)"),
    ("deep-yaml", {"services.yaml": "services:\n" + API + "x-deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"},
     ["plan"], 2, "services.yaml:3: nested deeper than 64 levels"),
    ("merge-of-a-scalar", {"services.yaml": "services:\n  api:\n    <<: base\n    context: api\n"}, ["plan"], 2,
     "services.yaml:3: services.api: `<<:` merges a mapping or a list of mappings (e.g. <<: *defaults)"),
    ("merged-bad-value-names-its-line", {"services.yaml": "x-d: &d {context: api, image: Team/API}\nservices:\n  api: {<<: *d}\n"},
     ["plan"], 2, "services.yaml:1: services.api.image: invalid image name 'Team/API': must be lowercase"),
    # Records: nesting, duplicates
    ("deep-record", {"services.yaml": "services:\n" + API, "r.json": '{"services": ' + "[" * 50_000 + "]" * 50_000 + "}"},
     ["update-manifests", "--record", "r.json", "--gitops-repo", "nowhere"], 2, "r.json:1: nested deeper than 64 levels"),
    ("record-service-twice", {"services.yaml": "services:\n" + API,
                              "r.json": json.dumps({"services": json.loads(RECORD)["services"] + json.loads(_record_with(tag="2"))["services"]})},
     ["update-manifests", "--record", "r.json", "--gitops-repo", "nowhere"], 2,
     "r.json: services[1].name: service api is listed twice (services[0] and services[1]) with tag '1' and '2'"),
    ("record-name-too-long", {"services.yaml": "services:\n" + API, "r.json": _record_with(repository="127.0.0.1:5000/" + "a" * 256)},
     ["update-manifests", "--record", "r.json", "--gitops-repo", "nowhere"], 2,
     ("r.json: services[0].repository: invalid image reference '127.0.0.1:5000/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'…: "
     f"the repository path {'a' * 40}… is 256 characters; registries allow at most 255 (the registry not counted)")),
    ("record-other-repository", {"services.yaml": "services:\n" + API, "r.json": _record_with(repository="docker.io/library/redis")},
     ["update-manifests", "--record", "r.json", "--gitops-repo", "nowhere"], 2,
     "r.json: service api was released as docker.io/library/redis, but services.yaml builds it as 127.0.0.1:5000/team/api"),
    # Validation gaps
    ("registry-port-out-of-range", {"services.yaml": "services:\n" + API}, ["plan", "--registry", "127.0.0.1:999999"], 2,
     "--registry: invalid registry '127.0.0.1:999999': port 999999 is out of range (1-65535)"),
    ("registry-port-zero", {"services.yaml": "services:\n" + API}, ["plan", "--registry", "localhost:0"], 2,
     "--registry: invalid registry 'localhost:0': port 0 is out of range (1-65535)"),
    ("registry-empty", {"services.yaml": "services:\n" + API}, ["plan", "--registry", ""], 2,
     "--registry: invalid registry '': empty; expected host[:port], e.g. myacr.azurecr.io"),
    ("registry-port-in-yaml", {"services.yaml": "registry: myacr.azurecr.io:70000\nservices:\n" + API}, ["plan"], 2,
     "services.yaml:1: registry: invalid registry 'myacr.azurecr.io:70000': port 70000 is out of range (1-65535)"),
    ("registry-empty-in-yaml", {"services.yaml": "registry: ''\nservices:\n" + API}, ["plan"], 2,
     "services.yaml:1: registry: invalid registry '': empty; expected host[:port], e.g. myacr.azurecr.io"),
    ("image-name-too-long", {"services.yaml": "services:\n  api: {context: api, image: team/" + "x" * 251 + "}\n"}, ["plan"], 2,
     (f"services.yaml:2: services.api.image: image name too long: the repository path team/{'x' * 35}… is 256 "
     "characters; registries allow at most 255 (the registry not counted)")),
    ("tag-too-long", {"services.yaml": "services:\n" + API}, ["plan", "--tag", "t" * 129], 2,
     f"--tag: invalid tag '{'t' * 129}': tags are 1-128 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')"),
    ("verify-name-too-long", {}, ["verify", "127.0.0.1:5000/" + "a" * 256 + ":1", "--platform", "linux/amd64"], 2,
     ("invalid image reference '127.0.0.1:5000/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'…: the repository path "
     f"{'a' * 40}… is 256 characters; registries allow at most 255 (the registry not counted)")),
    ("windows-platform", {"services.yaml": "platforms: [windows/arm64]\nservices:\n" + API}, ["plan"], 2,
     "services.yaml:1: platforms[0]: unsupported platform 'windows/arm64': buildctl verifies Linux (ELF) images only"),
    # A GitOps repository that is missing or not one
    ("gitops-repo-missing", {"services.yaml": "gitops: {repo: nosuch}\nservices:\n" + API}, ["plan", "--diff"], 2,
     "gitops.repo: the GitOps repository {tmp}/nosuch does not exist"),
    ("gitops-repo-plain-folder", {"services.yaml": "gitops: {repo: plain}\nservices:\n" + API, "plain/x": ""}, ["plan", "--diff"], 2,
     "gitops.repo: {tmp}/plain is not a Git repository"),
    ("gitops-repo-a-file", {"services.yaml": "gitops: {repo: a.yaml}\nservices:\n" + API, "a.yaml": "x: 1\n"}, ["plan", "--diff"], 2,
     "gitops.repo: {tmp}/a.yaml is not a Git repository"),
    ("gitops-url-with-no-repository", {"services.yaml": "services:\n" + API, "r.json": RECORD},
     ["update-manifests", "--record", "r.json", "--gitops-repo", "file:///nonexistent/deploy.git"], 2,
     "gitops.repo: no Git repository at file:///nonexistent/deploy.git (or the token cannot see it)"),
    ("in-place-not-a-checkout", {"services.yaml": "services:\n" + API, "r.json": RECORD, "plain/x": ""},
     ["update-manifests", "--record", "r.json", "--in-place", "--gitops-repo", "{tmp}/plain"], 2,
     "--in-place: {tmp}/plain is not a Git repository"),
    # Credentials in a GitOps URL: refused whatever the scheme's case, also scp-like; never printed
    ("url-token-upper-case-scheme", {"services.yaml": f"gitops: {{repo: 'HTTPS://user:{SECRET}@host/x.git'}}\nservices:\n" + API},
     ["plan", "--diff"], 2,
     "services.yaml:1: gitops.repo: the repository URL contains credentials; remove them and set BUILDCTL_GIT_TOKEN instead"),
    ("url-token-scp-like", {"services.yaml": f"gitops: {{repo: 'user:{SECRET}@host:x.git'}}\nservices:\n" + API},
     ["plan", "--diff"], 2,
     "services.yaml:1: gitops.repo: the repository URL contains credentials; remove them and set BUILDCTL_GIT_TOKEN instead"),
    ("url-token-as-user-mixed-case", {"services.yaml": "services:\n" + API, "r.json": RECORD},
     ["update-manifests", "--record", "r.json", "--gitops-repo", f"hTTpS://{SECRET}@dev.azure.com/org/_git/x"], 2,
     "the GitOps repository URL hTTpS://dev.azure.com/org/_git/x contains credentials"),
    ("cli-url-token-upper-case", {"services.yaml": "services:\n" + API, "r.json": RECORD},
     ["update-manifests", "--record", "r.json", "--gitops-repo", f"HTTPS://user:{SECRET}@host/x.git"], 2,
     "the GitOps repository URL HTTPS://host/x.git contains credentials"),
    ("cli-url-token-scp-like", {"services.yaml": "services:\n" + API, "r.json": RECORD},
     ["update-manifests", "--record", "r.json", "--gitops-repo", f"user:{SECRET}@host:x.git"], 2,
     "the GitOps repository URL user:***@host:x.git contains credentials"),
]


@pytest.mark.parametrize(("files", "args", "code", "message"), [case[1:] for case in TABLE], ids=[case[0] for case in TABLE])
def test_hostile_input_table(tmp_path: Path, files: dict[str, str], args: list[str], code: int, message: str) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    started = time.monotonic()
    result = run_cli(*(a.replace("{tmp}", str(tmp_path)) for a in args), cwd=tmp_path, timeout=60)
    seconds = time.monotonic() - started
    assert result.code == code, result.output
    assert one_error_line(result.stderr) == message.replace("{tmp}", str(tmp_path))
    assert SECRET not in result.output
    assert not (tmp_path / ".buildctl").exists()
    assert seconds < 10, f"took {seconds:.1f} s"
    print(f"{code} {one_error_line(result.stderr)[:160]}")

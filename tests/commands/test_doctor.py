"""doctor: one line per check with a fix hint; non-zero exit when something is wrong — including
access: registry credentials (tests/registry/test_user_credentials.py has the authenticated
registries) and the GitOps remote reached with its auth through `git ls-remote`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.gitops import deployment, make_remote, serve_http

pytestmark = pytest.mark.engine

TOKEN = "gitops-T0ken-" + "k" * 12



def checks_of(result) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


@pytest.fixture(scope="module")
def gitops_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_remote(tmp_path_factory.mktemp("doctor-gitops"), {"apps/vote.yaml": deployment("vote")})


def _kernel_flags(handler: str) -> str:
    """The flags the kernel shows for a binfmt handler (what doctor must report, not what it thinks)."""
    text = Path("/proc/sys/fs/binfmt_misc", handler).read_text()
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:"))


def test_doctor_is_all_green_on_the_stack(gitops_repo: Path) -> None:
    result = run_cli("doctor", "--json", env={"BUILDCTL_GITOPS_REPO": str(gitops_repo)})
    assert result.code == 0, result.output
    checks = checks_of(result)
    assert set(checks) == {"docker CLI", "docker daemon", "buildx", "multi-platform image store",
                           "binfmt linux/arm64", "registry", "registry credentials", "git", "gitops remote",
                           "builder node default", "layer cache"}
    assert all(c["ok"] for c in checks.values())
    assert checks["multi-platform image store"]["detail"] == "io.containerd.snapshotter.v1"
    assert f", flags {_kernel_flags('qemu-aarch64')}, " in checks["binfmt linux/arm64"]["detail"]
    assert "F" in _kernel_flags("qemu-aarch64")  # the handler doctor called ok really has the F flag
    assert checks["buildx"]["detail"].startswith("0.")
    # each node of the configured builder: endpoint, status, BuildKit version, platforms
    assert checks["builder node default"]["detail"].startswith("default running, BuildKit ")
    assert "linux/arm64" in checks["builder node default"]["detail"]
    # where verified layers are cached, and the bound that evicts them
    assert "MiB" in checks["layer cache"]["detail"] and "buildctl" in checks["layer cache"]["detail"]
    assert checks["registry"]["detail"] == "127.0.0.1:5000 answers /v2/"
    assert checks["gitops remote"]["detail"] == f"{gitops_repo} reachable with its auth, branch main found"


def test_doctor_fails_with_a_fix_when_the_registry_is_down(gitops_repo: Path) -> None:
    result = run_cli("doctor", "--registry", "127.0.0.1:5999", env={"BUILDCTL_GITOPS_REPO": str(gitops_repo)})
    assert result.code == 1
    line = next(line for line in result.stdout.splitlines() if "registry:" in line)
    assert line.startswith("FAIL") and "127.0.0.1:5999 unreachable" in line
    assert "fix:" in result.stdout
    checks = checks_of(run_cli("doctor", "--json", "--registry", "127.0.0.1:5999",
                               env={"BUILDCTL_GITOPS_REPO": str(gitops_repo)}))
    assert [n for n, c in checks.items() if not c["ok"]] == ["registry", "registry credentials"]
    assert checks["registry"]["fix"] == ("start the registry at 127.0.0.1:5999, or fix registry: in services.yaml / "
                                         "--registry")


def test_doctor_checks_every_configured_foreign_platform(project_dir) -> None:
    (project_dir / "services.yaml").write_text(
        "platforms: [linux/amd64, linux/arm64, linux/s390x]\nservices:\n  api: {context: api, image: team/api}\n")
    result = run_cli("doctor", "--json", cwd=project_dir)
    names = [c["name"] for c in json.loads(result.stdout)["checks"]]
    assert "binfmt linux/arm64" in names and "binfmt linux/s390x" in names


def _gitops_project(project_dir: Path, repo: str, branch: str = "main") -> Path:
    (project_dir / "services.yaml").write_text(
        f"gitops: {{repo: '{repo}', branch: {branch}}}\nservices:\n  api: {{context: api, image: team/api}}\n")
    return project_dir


def test_doctor_reaches_an_http_gitops_remote_with_its_token(project_dir: Path, gitops_repo: Path) -> None:
    with serve_http(gitops_repo.parent, TOKEN) as (url, app):
        project = _gitops_project(project_dir, f"{url}/remote.git")
        good = run_cli("doctor", "--json", cwd=project, env={"BUILDCTL_GIT_TOKEN": TOKEN})
        missing = run_cli("doctor", "--json", cwd=project, env={"BUILDCTL_GIT_TOKEN": "", "SYSTEM_ACCESSTOKEN": ""})
        wrong = run_cli("doctor", "--json", cwd=project, env={"BUILDCTL_GIT_TOKEN": "wrong-" + TOKEN})
    assert checks_of(good)["gitops remote"] == {"name": "gitops remote", "ok": True, "fix": "",
                                                "detail": f"{url}/remote.git reachable with its auth, branch main found"}
    assert any(authorized for _, _, authorized in app.requests)
    for result, hint in ((missing, "the remote needs credentials: set BUILDCTL_GIT_TOKEN (or SYSTEM_ACCESSTOKEN)"),
                         (wrong, "the token was refused: check BUILDCTL_GIT_TOKEN has write access")):
        check = checks_of(result)["gitops remote"]
        assert result.code == 1 and not check["ok"] and check["fix"] == hint, check
        assert TOKEN not in result.output


def test_doctor_names_a_missing_gitops_repository_or_branch(project_dir: Path, gitops_repo: Path) -> None:
    missing = checks_of(run_cli("doctor", "--json", cwd=_gitops_project(project_dir, "/nonexistent/gitops.git")))
    assert missing["gitops remote"]["detail"] == "gitops.repo: the GitOps repository /nonexistent/gitops.git does not exist"
    assert "git init --bare" in missing["gitops remote"]["fix"]
    branch = checks_of(run_cli("doctor", "--json", cwd=_gitops_project(project_dir, str(gitops_repo), "release")))
    assert branch["gitops remote"] == {"name": "gitops remote", "ok": False, "fix": "push that branch first, or fix gitops.branch",
                                       "detail": f"{gitops_repo} reachable, but it has no branch release"}

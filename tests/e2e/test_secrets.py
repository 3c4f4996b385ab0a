"""Secrets never leave buildctl (issue #5): full releases with a registry password (the TLS registry)
and a Git token (a smart-HTTP GitOps remote), with --debug, succeeding and failing; every byte
buildctl writes is searched for the secrets and their base64 forms.

Searched: stdout and stderr (tracebacks included), every file under .buildctl/ (build logs,
metadata, release records), the GitOps remote's commits (messages and patches), and the argv of
every process on the machine during the runs; and (issue #14) every file of the job's Docker config
after runs that succeeded, failed and were interrupted: the login lives in a run-scoped config that
is gone when the run ends. Secret-looking build args are refused by config.py (tests/test_config.py).
"""

from __future__ import annotations

import base64
import json
import secrets
import signal
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import BASE_IMAGE, run_cli
from tests.helpers.gitops import CmdlineWatcher, git, log, serve_http
from tests.helpers.reliability import (
    gitops_remote,
    leftovers,
    record,
    scratch_service,
    slow_service,
    start_cli,
    tip,
    unique_tag,
    wait_for,
    write_services,
)
from tests.helpers.tls_registry import TlsRegistry, tls_registry_fixture  # noqa: F401 (the fixture)

pytestmark = pytest.mark.engine

IMAGE = "buildctl-secrets/app"


def forms(user: str, secret: str) -> set[str]:
    """A secret as it could leak: raw, base64 alone, and base64 in a Basic Authorization header."""
    return {secret, *(base64.b64encode(text.encode()).decode() for text in (secret, f"{user}:{secret}"))}


def test_no_secret_in_anything_buildctl_writes(tls_registry: TlsRegistry, tmp_path: Path) -> None:
    reg = tls_registry
    token, wrong_token, wrong_password = (secrets.token_urlsafe(18) for _ in range(3))
    scratch_service(tmp_path / "project", "app")
    remote = gitops_remote(tmp_path / "git", {"app": f"{reg.address}/{IMAGE}"})
    docker_env = reg.env(tmp_path / "docker")
    outputs: list[str] = []
    with serve_http(remote.parent, token) as (base, app), CmdlineWatcher() as ps:
        project = write_services(tmp_path / "project", {"app": IMAGE}, gitops_repo=f"{base}/{remote.name}")

        def release(env: dict[str, str], *args: str) -> int:
            result = run_cli("--debug", "run", "--rebuild", "--registry", reg.address, "--tag", f"sec-{uuid.uuid4().hex[:8]}",
                             *args, cwd=project, env={**docker_env, **env})
            outputs.extend((result.stdout, result.stderr))
            return result.code

        before = tip(remote)
        assert release({"BUILDCTL_GIT_TOKEN": token}) == 0, outputs[-1]
        released = tip(remote)
        assert released != before
        assert release({"BUILDCTL_GIT_TOKEN": token}, "--json") == 0, outputs[-1]
        # Failures, with --debug tracebacks: the Git token refused (before anything is built: the
        # GitOps step is checked first), then the registry password.
        assert release({"BUILDCTL_GIT_TOKEN": wrong_token}) == 1
        assert "Traceback" in outputs[-1] and "the token was refused" in outputs[-1]
        assert release({"BUILDCTL_GIT_TOKEN": token, "BUILDCTL_REGISTRY_PASSWORD": wrong_password}) == 1
        assert "Traceback" in outputs[-1] and f"registry {reg.address} refused the login" in outputs[-1]
    assert any(ok and "git-receive-pack" in path for method, path, ok in app.requests if method == "POST")

    files = {str(p): p.read_text(errors="replace") for p in (project / ".buildctl").rglob("*") if p.is_file()}
    records = [text for path, text in files.items() if path.endswith("release.json")]
    assert len(records) >= 2 and any(p.endswith(".build.log") for p in files)
    history = git("log", "--all", "--format=%H%n%an <%ae>%n%B", "-p", cwd=remote)
    assert log(remote)[0].startswith("release sec-") and released in history

    haystacks = {"output": "\n".join(outputs), "argv": "\n".join(ps.seen), "git history": history, **files}
    wanted = (forms(reg.username, reg.password) | forms(reg.username, wrong_password)
              | forms("buildctl", token) | forms("buildctl", wrong_token))
    leaks = [(where, secret[:4] + "…") for where, text in haystacks.items() for secret in wanted if secret in text]
    assert leaks == []
    # The search is not vacuous: the runs did write what was searched.
    assert reg.username in haystacks["output"] and any("docker login" in line for line in ps.seen)
    assert all(record(Path(path))["registry"] == reg.address for path in files if path.endswith("release.json"))


def config_files(*folders: Path) -> dict[str, str]:
    """Every file under the Docker config folders (builders' state and contexts included)."""
    out = {}
    for folder in folders:
        for path in folder.rglob("*") if folder.is_dir() else ():
            if path.is_file():
                out[str(path)] = path.read_text(errors="replace")
    return out


def scoped_leftovers() -> list[str]:
    return sorted(str(p) for p in Path(tempfile.gettempdir()).glob("buildctl-docker-*"))


def test_the_login_is_gone_after_every_kind_of_run(tls_registry: TlsRegistry, tmp_path: Path) -> None:
    """Issue #14: `docker login` writes into a run-scoped Docker config; after a run that succeeded,
    failed or was interrupted, no config file holds the password, and the user's config is as it was."""
    reg = tls_registry
    user_config = tmp_path / "docker"
    user_config.mkdir()
    kept = {"auths": {"other.example:5000": {"auth": base64.b64encode(b"someone:kept").decode()}},
            "detachKeys": "ctrl-e,e"}
    (user_config / "config.json").write_text(json.dumps(kept))
    env = reg.env(user_config)
    before_tmp = scoped_leftovers()
    wanted = forms(reg.username, reg.password)
    nonce = f"secrets-{uuid.uuid4().hex[:8]}"

    def clean(after: str) -> None:
        files = config_files(user_config, Path.home() / ".docker")
        assert files, "nothing searched"
        leaks = [(path, secret[:4] + "…") for path, text in files.items() for secret in wanted if secret in text]
        assert leaks == [], after
        assert json.loads((user_config / "config.json").read_text()) == kept, after
        assert scoped_leftovers() == before_tmp, after

    ok = tmp_path / "ok"
    scratch_service(ok, "app")
    write_services(ok, {"app": IMAGE})
    result = run_cli("build", "--rebuild", "--registry", reg.address, "--tag", unique_tag("scoped"), "-q", cwd=ok, env=env)
    assert result.code == 0, result.output  # the registry demands the login: it did happen
    clean("success")

    failing = tmp_path / "failing"
    (failing / "app").mkdir(parents=True)
    (failing / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo {nonce} && exit 7\n")
    write_services(failing, {"app": IMAGE})
    result = run_cli("build", "--rebuild", "--registry", reg.address, "--tag", unique_tag("scoped"), "-q", cwd=failing, env=env)
    assert result.code == 1, result.output
    clean("failure")

    slow = tmp_path / "slow"
    slow_service(slow, "app", nonce=nonce)
    write_services(slow, {"app": IMAGE})
    run = start_cli("build", "--rebuild", "--registry", reg.address, "--tag", unique_tag("scoped"), cwd=slow, logs=tmp_path / "logs",
                    env=env)
    wait_for(lambda: any(nonce in p and "sleep" in p for p in leftovers(-1, nonce)), timeout=180,
             what="the RUN step to start")
    run.signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 130, run.stderr
    clean("interrupt")

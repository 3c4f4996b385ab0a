"""One pinned git transport policy (issue #24): exactly file, ssh, http and https, on every git call,
whatever the user's git config allows; remote-helper addresses refused up front with one line.

Real git, a real user config (HOME and GIT_CONFIG_GLOBAL in a tmp dir) that allows `ext::` and
`fd::`: the command of an `ext::` remote must never run (its marker file is never created).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from buildctl.errors import CommandError, UsageError
from buildctl.gitops.git import ALLOWED_PROTOCOLS, Git, check_transport
from buildctl.gitops.publish import find_drift, publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.cli import run_cli
from tests.helpers.gitops import REG, deployment, git, make_remote

VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)
TARGETS = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),)}
PERMISSIVE = '[protocol]\n\tallow = always\n[protocol "ext"]\n\tallow = always\n[protocol "fd"]\n\tallow = always\n'


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "ext-ran"


@pytest.fixture
def permissive_home(tmp_path: Path, monkeypatch) -> Path:
    """A user whose global git config allows every transport, ext:: and fd:: included."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(PERMISSIVE)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.delenv("GIT_ALLOW_PROTOCOL", raising=False)
    return home


def ext_remote(marker: Path) -> str:
    return f"ext::sh -c touch% {marker}"  # git's ext:: syntax: "% " is a space


def test_the_user_config_really_allows_ext(permissive_home, marker, tmp_path):
    """The premise: plain git with this config runs the ext:: command (so the refusals below mean something)."""
    subprocess.run(["git", "clone", ext_remote(marker), str(tmp_path / "x")], capture_output=True, timeout=30,
                   stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    assert marker.exists()


@pytest.mark.parametrize("repo", ["ext::sh -c touch% {marker}", "fd::0", "fd::7,8/x", "testgit::/srv/x",
                                  "EXT::sh -c touch% {marker}"])
def test_remote_helper_addresses_are_refused_up_front(permissive_home, marker, repo):
    cfg = GitOpsConfig(repo=repo.format(marker=marker))
    start = time.monotonic()
    for call in (lambda: publish(cfg, releases=[VOTE], targets=TARGETS, dry_run=False, token="t"),
                 lambda: find_drift(cfg, releases=[VOTE], targets=TARGETS, token="t")):
        with pytest.raises(UsageError) as err:
            call()
        helper = repo.partition("::")[0]
        assert err.value.message == (f"the GitOps repository {helper}::… is a git remote-helper address (ext:: runs "
                                     "a command, fd:: reads a file descriptor); buildctl refuses them")
        assert err.value.exit_code == 2 and "https://" in err.value.hint
    assert time.monotonic() - start < 5  # fd:: used to wait for the 300 s git timeout
    assert not marker.exists()


@pytest.mark.parametrize("repo", ["git://127.0.0.1:1/gitops.git", "ftp://h/x.git", "GIT://h/x"])
def test_other_schemes_are_refused_up_front(repo):
    with pytest.raises(UsageError) as err:
        check_transport(repo)
    assert "transport is not supported" in err.value.message and "git:// has no authentication" in err.value.hint


@pytest.mark.parametrize("repo", ["https://h/x.git", "HTTPS://h/x.git", "http://127.0.0.1:3000/x.git", "ssh://git@h/x",
                                  "git+ssh://git@h/x", "git@h:org/x.git", "file:///srv/x.git", "/srv/x.git", "./x.git",
                                  "relative/x.git"])  # fmt: skip
def test_supported_remotes_pass(repo):
    check_transport(repo)


def test_the_policy_is_pinned_on_every_git_call(permissive_home, marker, tmp_path):
    """Past the up-front check (Git.run directly), git itself refuses the transport."""
    g = Git(GitOpsConfig(repo=str(tmp_path)), token=None, throwaway=True)
    for remote in (ext_remote(marker), "fd::0"):
        proc = g.run("clone", remote, str(tmp_path / "clone"), cwd=None, what="clone", check=False)
        assert proc.returncode != 0 and "not allowed" in proc.stderr, proc.stderr
        proc = g.run("ls-remote", remote, cwd=None, what="ls-remote", check=False)
        assert proc.returncode != 0 and "not allowed" in proc.stderr, proc.stderr
    assert not marker.exists()
    assert ALLOWED_PROTOCOLS == ("file", "ssh", "https", "http")


def test_an_insteadof_rewrite_to_ext_does_not_run(permissive_home, marker):
    """The user's config rewrites an https remote into ext::: the URL passes the check, git refuses it."""
    (permissive_home / ".gitconfig").write_text(PERMISSIVE + f'[url "{ext_remote(marker)}%"]\n\tinsteadOf = https://gitops.example/\n')
    with pytest.raises(CommandError) as err:
        publish(GitOpsConfig(repo="https://gitops.example/org/x.git"), releases=[VOTE], targets=TARGETS,
                dry_run=False, token="a-token-of-the-user")  # fmt: skip
    assert "transport 'ext' not allowed" in err.value.failure.output
    assert not marker.exists()


def test_an_in_place_checkout_whose_origin_is_ext_is_refused(permissive_home, marker, tmp_path):
    bare = make_remote(tmp_path, {"apps/vote.yaml": deployment("vote")})
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(bare), str(checkout))
    git("remote", "set-url", "--push", "origin", ext_remote(marker), cwd=checkout)
    with pytest.raises(UsageError) as err:
        publish(GitOpsConfig(repo=str(checkout)), releases=[VOTE], targets=TARGETS, dry_run=False, in_place=True, token=None)
    assert err.value.message.startswith("the checkout's origin ext::… is a git remote-helper address")
    assert not marker.exists()
    assert b"vote:41" in (checkout / "apps" / "vote.yaml").read_bytes()  # nothing was edited


def test_the_cli_refuses_an_ext_repo_in_one_line(permissive_home, marker, tmp_path):
    (tmp_path / "services.yaml").write_text(
        "services:\n  vote:\n    image: voting-app/vote\n    context: .\n    manifests: [apps/vote.yaml]\n"
        f"gitops:\n  repo: '{ext_remote(marker)}'\n"
    )
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    record = tmp_path / "r.json"
    record.write_text('{"services": [{"name": "vote", "repository": "127.0.0.1:5000/voting-app/vote", "tag": "42", '
                      f'"index_digest": "sha256:{"ab" * 32}", "verified": true, "tagged": true}}]}}')
    env = {"HOME": str(permissive_home), "GIT_CONFIG_GLOBAL": str(permissive_home / ".gitconfig")}
    result = run_cli("update-manifests", "--record", str(record), "--dry-run", cwd=tmp_path, env=env, timeout=60)
    assert result.code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("buildctl: error:")]
    assert errors == ["buildctl: error: the GitOps repository ext::… is a git remote-helper address (ext:: runs a "
                      "command, fd:: reads a file descriptor); buildctl refuses them"], result.stderr
    assert not marker.exists()

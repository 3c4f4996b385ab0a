"""The Git token goes to the configured remote's protocol and host (and port) only (issue #24).

Real git against real smart-HTTP servers on loopback: a remote that redirects (HTTP 302) to another
server on another port must never see the token travel there, whatever the user's git config says
about redirects and credential paths; the configured remote itself still gets it.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from buildctl.errors import CommandError
from buildctl.gitops.git import Git, token_scope
from buildctl.gitops.publish import publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.gitops import REG, GitHttp, deployment, git, make_remote, serve_wsgi, show

TOKEN = "s3cr3t-Tok3n-4-redirects"
SECRET_FORMS = (TOKEN, base64.b64encode(f"buildctl:{TOKEN}".encode()).decode(), base64.b64encode(TOKEN.encode()).decode())
VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)
TARGETS = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),)}


class Recorder:
    """Wraps a WSGI app: every request's Authorization header (empty when there was none)."""

    def __init__(self, app) -> None:
        self.app, self.authorizations = app, []

    def __call__(self, environ, start_response):
        self.authorizations.append(environ.get("HTTP_AUTHORIZATION", ""))
        return self.app(environ, start_response)


class Redirect:
    """Answers every request with a 302 to the same path and query on ``target``."""

    def __init__(self) -> None:
        self.target = ""

    def __call__(self, environ, start_response):
        query = f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
        start_response("302 Found", [("Location", f"{self.target}{environ['PATH_INFO']}{query}"), ("Content-Length", "0")])
        return [b""]


@contextmanager
def redirecting_pair(project_root: Path) -> Iterator[tuple[str, Recorder, Recorder]]:
    """(URL of the repository on the first server, what the first saw, what the second saw): the
    first redirects everything to the second, on another port, which serves the repository and
    demands the token."""
    redirect = Redirect()
    first, second = Recorder(redirect), Recorder(GitHttp(project_root, TOKEN))
    with serve_wsgi(first) as first_url, serve_wsgi(second) as second_url:
        redirect.target = second_url
        yield f"{first_url}/remote.git", first, second


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path, {"apps/vote.yaml": deployment("vote")})


@pytest.fixture
def user_git_config(tmp_path: Path, monkeypatch) -> Path:
    """The user's own global git config (HOME and GIT_CONFIG_GLOBAL in a tmp dir), empty to start."""
    home = tmp_path / "home"
    home.mkdir()
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    return gitconfig


def config(repo: str | Path) -> GitOpsConfig:
    return dataclasses.replace(GitOpsConfig(repo=str(repo)))


def assert_no_token(*texts: str) -> None:
    for text in texts:
        for secret in SECRET_FORMS:
            assert secret not in text


@pytest.mark.parametrize("user_config", [
    "",  # git's default, http.followRedirects=initial
    "[http]\n\tfollowRedirects = true\n",
    "[credential]\n\tuseHttpPath = true\n",
    '[credential]\n\thelper = "!f() { echo username=x; echo password=user-helper; }; f"\n',  # reset, never asked
], ids=["default", "follow-all-redirects", "use-http-path", "user-helper"])
def test_a_redirect_to_another_host_never_receives_the_token(remote, user_git_config, user_config):
    user_git_config.write_text(user_config)
    before = git("rev-parse", "main", cwd=remote)
    with redirecting_pair(remote.parent) as (url, first, second), pytest.raises(CommandError) as err:
        publish(config(url), releases=[VOTE], targets=TARGETS, dry_run=False, token=TOKEN)
    assert first.authorizations and second.authorizations  # git was redirected, and asked for credentials...
    assert set(first.authorizations) == set(second.authorizations) == {""}  # ...and sent none, anywhere
    assert err.value.hint.startswith("the remote redirected to http://127.0.0.1:")
    assert "sends the token only to the host of gitops.repo" in err.value.hint
    assert_no_token(str(err.value), err.value.hint, err.value.failure.output)
    assert git("rev-parse", "main", cwd=remote) == before


def test_the_configured_host_still_gets_it_with_use_http_path(remote, user_git_config):
    user_git_config.write_text("[credential]\n\tuseHttpPath = true\n")  # git adds path=… to the helper's stdin
    app = Recorder(GitHttp(remote.parent, TOKEN))
    with serve_wsgi(app) as base:
        result = publish(config(f"{base}/remote.git"), releases=[VOTE], targets=TARGETS, dry_run=False, token=TOKEN)
    assert result.pushed and b"vote:42" in show(remote, "main", "apps/vote.yaml")
    assert "" in app.authorizations and any(a.startswith("Basic ") for a in app.authorizations)


def test_in_place_scopes_the_token_to_the_checkouts_origin(tmp_path, remote, user_git_config):
    checkout = tmp_path / "checkout"
    with serve_wsgi(Recorder(GitHttp(remote.parent, TOKEN))) as base:
        git("clone", "--quiet", str(remote), str(checkout))
        git("remote", "set-url", "origin", f"{base}/remote.git", cwd=checkout)
        result = publish(config(checkout), releases=[VOTE], targets=TARGETS, dry_run=False, in_place=True, token=TOKEN)
    assert result.pushed and result.commit == git("rev-parse", "main", cwd=remote).strip()

    # The same checkout, its origin now a server that redirects elsewhere: no token there.
    with redirecting_pair(remote.parent) as (url, first, second):
        git("remote", "set-url", "origin", url, cwd=checkout)
        git("commit", "--quiet", "--allow-empty", "-m", "x", cwd=checkout)
        git("reset", "--quiet", "--hard", "HEAD~1", cwd=checkout)
        with pytest.raises(CommandError):
            publish(config(checkout), releases=[dataclasses.replace(VOTE, tag="43")], targets=TARGETS,
                    dry_run=False, in_place=True, token=TOKEN)  # fmt: skip
    assert second.authorizations and set(first.authorizations) == set(second.authorizations) == {""}


def fill(git_: Git, protocol: str, host: str, path: str | None = None) -> str | None:
    """What our helper answers to git's own `git credential fill` for protocol/host: the password, or None."""
    request = f"protocol={protocol}\nhost={host}\n" + (f"path={path}\n" if path else "") + "\n"
    proc = git_.run("credential", "fill", cwd=None, what="credential fill", input=request, check=False)
    answer = dict(line.partition("=")[::2] for line in proc.stdout.splitlines())
    return answer.get("password") if proc.returncode == 0 else None


@pytest.mark.parametrize(("repo", "asked", "answered"), [
    ("https://git.example.com/org/gitops.git", ("https", "git.example.com"), True),
    ("https://git.example.com/org/gitops.git", ("https", "GIT.Example.com"), True),  # host names have no case
    ("https://git.example.com/org/gitops.git", ("https", "git.example.com:443"), True),  # the default port
    ("https://git.example.com:443/org/gitops.git", ("https", "git.example.com"), True),
    ("https://git.example.com/org/gitops.git", ("https", "git.example.com:8443"), False),  # another port
    ("https://git.example.com/org/gitops.git", ("http", "git.example.com"), False),  # not in clear text
    ("https://git.example.com/org/gitops.git", ("https", "evil.example"), False),
    ("https://git.example.com/org/gitops.git", ("https", "git.example.com.evil.example"), False),
    ("https://git.example.com/org/gitops.git", ("https", "example.com"), False),
    ("http://127.0.0.1:8080/gitops.git", ("http", "127.0.0.1:8080"), True),
    ("http://127.0.0.1:8080/gitops.git", ("http", "127.0.0.1:8081"), False),
    ("http://127.0.0.1:8080/gitops.git", ("http", "127.0.0.1"), False),
    ("https://[::1]:8443/gitops.git", ("https", "[::1]:8443"), True),
    ("ssh://git@git.example.com/org/gitops.git", ("https", "git.example.com"), False),  # ssh needs no token
    ("git@git.example.com:org/gitops.git", ("https", "git.example.com"), False),
])  # fmt: skip
def test_the_helper_answers_only_for_the_remotes_protocol_and_host(user_git_config, repo, asked, answered):
    helper = Git(config(repo), token=TOKEN, throwaway=True)
    assert fill(helper, *asked) == (TOKEN if answered else None)
    assert fill(helper, *asked, path="org/gitops.git") == (TOKEN if answered else None)  # credential.useHttpPath


def test_token_scope():
    assert token_scope(["https://H.example/x"]) == ("https://h.example", "https://h.example:443")
    assert token_scope(["http://h:80/x", "https://h:8443/y"]) == ("http://h", "http://h:80", "https://h:8443")
    assert token_scope(["ssh://git@h/x", "git@h:x", "/srv/x.git", "file:///srv/x.git", "https://h:x/"]) == ()


def test_no_helper_of_the_users_config_answers_either(user_git_config):
    """The user's helpers, generic and scoped to a URL, are reset: only ours answers, and only for the remote."""
    user_git_config.write_text(
        '[credential "https://evil.example"]\n\thelper = "!f() { echo username=u; echo password=scoped; }; f"\n'
        '[credential]\n\thelper = "!f() { echo username=u; echo password=generic; }; f"\n'
    )
    helper = Git(config("https://git.example.com/org/gitops.git"), token=TOKEN, throwaway=True)
    assert fill(helper, "https", "evil.example") is None
    assert fill(helper, "https", "git.example.com") == TOKEN

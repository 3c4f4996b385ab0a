"""buildctl.gitops against real git: bare remotes in tmp dirs and a smart-HTTP remote with auth."""

from __future__ import annotations

import base64
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from buildctl.errors import CommandError, ConfigError, OperationError, UsageError
from buildctl.gitops.git import (
    check_repo_url,
    clone_source,
    git_token_from_env,
    redact_url,
)
from buildctl.gitops.publish import publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.gitops import (
    REG,
    CmdlineWatcher,
    deployment,
    git,
    log,
    make_remote,
    serve_http,
    show,
)

VOTE = ReleasedImage("vote", f"{REG}/vote", "42", "sha256:" + "ab" * 32)
WORKER = ReleasedImage("worker", f"{REG}/worker", "42", "sha256:" + "cd" * 32)
TARGETS = {"vote": (GitOpsFile("apps/vote.yaml", ("vote",)),), "worker": (GitOpsFile("apps/worker.yaml"),)}


FILES = {"apps/vote.yaml": deployment("vote"), "apps/worker.yaml": deployment("worker", newline="\r\n")}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path, FILES)


def config(repo: Path | str, **changes) -> GitOpsConfig:
    return dataclasses.replace(GitOpsConfig(repo=str(repo)), **changes)


def tip(bare: Path, branch: str = "main") -> str:
    return git("rev-parse", branch, cwd=bare).strip()


def test_release_is_one_commit_and_a_rerun_is_none(remote):
    before = tip(remote)
    result = publish(config(remote), releases=[VOTE, WORKER], targets=TARGETS, dry_run=False, token=None)
    assert result.commit == tip(remote) and result.pushed and result.attempts == 1
    assert result.repo == str(remote) and result.branch == "main"
    assert git("rev-parse", f"{result.commit}^", cwd=remote).strip() == before
    assert log(remote)[0] == (
        "release 42: vote 42@sha256:abababababab…, worker 42@sha256:cdcdcdcdcdcd…\n\n"
        f"vote: {REG}/vote:42@{VOTE.digest}\nworker: {REG}/worker:42@{WORKER.digest}"
    )
    # Only the app images changed: the toolbox sidecar, the comment and the CRLF endings did not.
    assert show(remote, "main", "apps/vote.yaml").decode() == FILES["apps/vote.yaml"].replace("vote:41", "vote:42")
    assert show(remote, "main", "apps/worker.yaml") == FILES["apps/worker.yaml"].replace("worker:41", "worker:42").encode()
    author = git("log", "-1", "--format=%an <%ae>|%cn <%ce>", cwd=remote).strip()
    assert author == "buildctl <buildctl@localhost>|buildctl <buildctl@localhost>"

    again = publish(config(remote), releases=[VOTE, WORKER], targets=TARGETS, dry_run=False, token=None)
    assert (again.commit, again.pushed, again.diff) == (None, False, "")
    assert tip(remote) == result.commit and len(log(remote)) == 2


def test_pinned_digest_and_custom_message(remote):
    cfg = config(remote, pin_digest=True, message="deploy {tag} ({summary})", author_name="bot", author_email="b@x")
    result = publish(cfg, releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert log(remote)[0].splitlines()[0] == "deploy 42 (vote 42@sha256:abababababab…)"
    assert f"image: {REG}/vote:42@{VOTE.digest}\n" in show(remote, "main", "apps/vote.yaml").decode()
    assert git("log", "-1", "--format=%an <%ae>", cwd=remote).strip() == "bot <b@x>"
    assert result.message == log(remote)[0] + "\n"


def test_dry_run_returns_the_diff_and_changes_nothing(remote):
    before = tip(remote)
    result = publish(config(remote), releases=[VOTE], targets=TARGETS, dry_run=True, token=None)
    assert (result.commit, result.pushed) == (None, False)
    assert tip(remote) == before
    assert result.diff == (
        "--- a/apps/vote.yaml\n+++ b/apps/vote.yaml\n@@ -7,6 +7,6 @@\n     spec:\n       containers:\n"
        f"         - name: vote\n-          image: {REG}/vote:41\n+          image: {REG}/vote:42\n"
        f"         - name: toolbox\n           image: {REG}/toolbox:41\n"
    )
    assert result.message.startswith("release 42: vote 42@")


def test_push_to_a_new_branch_and_rerun_there(remote):
    main = tip(remote)
    cfg = config(remote, push_branch="release-42")
    first = publish(cfg, releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert first.branch == "release-42" and first.commit == tip(remote, "release-42")
    assert tip(remote) == main and git("rev-parse", "release-42^", cwd=remote).strip() == main
    # Rerun: work starts from the existing branch, which already has the change.
    second = publish(cfg, releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert (second.commit, second.attempts) == (None, 1)
    assert tip(remote, "release-42") == first.commit
    # A later release adds a commit on top of the pull-request branch.
    third = publish(cfg, releases=[WORKER], targets=TARGETS, dry_run=False, token=None)
    assert git("rev-parse", "release-42^", cwd=remote).strip() == first.commit == git("rev-parse", f"{third.commit}^", cwd=remote).strip()


def test_push_branch_template_takes_the_tag(remote):
    # README's own example: one pull-request branch per release.
    result = publish(config(remote, push_branch="release/{tag}"), releases=[VOTE], targets=TARGETS, dry_run=False,
                     token=None)
    assert result.branch == "release/42" and result.commit == tip(remote, "release/42")
    assert git("branch", "--list", "release/{tag}", cwd=remote).strip() == ""


@pytest.mark.parametrize(("field", "value", "message"), [
    ("push_branch", "release/{nope}", "unknown placeholder {nope} in the push branch template; use {tag}"),
    ("push_branch", "a b..c", "'a b..c' is not a valid git branch name"),
    ("push_branch", "-f", "'-f' is not a valid git branch name"),
    ("push_branch", "{tag}.lock", "'42.lock' is not a valid git branch name"),
    ("message", "release {tag!x}", "invalid commit message template 'release {tag!x}': Unknown conversion specifier x"),
    ("message", "release {tag:d}", "invalid commit message template 'release {tag:d}'"),
], ids=["placeholder", "spaces-dots", "option", "lock", "conversion", "format-spec"])
def test_bad_templates_are_refused_before_anything_is_pushed(remote, field, value, message):
    before = {b: tip(remote, b) for b in git("for-each-ref", "--format=%(refname:short)", cwd=remote).split()}
    with pytest.raises(ConfigError) as err:
        publish(config(remote, **{field: value}), releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert err.value.message.startswith(f"gitops.{field}: {message}"), err.value.message
    assert {b: tip(remote, b) for b in git("for-each-ref", "--format=%(refname:short)", cwd=remote).split()} == before


def test_rejected_push_is_reapplied_on_the_new_tip(tmp_path, remote):
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(remote), str(checkout))
    other = tmp_path / "other"  # someone else pushes first: the checkout is now behind
    git("clone", "--quiet", str(remote), str(other))
    (other / "README").write_text("hello\n")
    git("add", "README", cwd=other)
    git("commit", "--quiet", "-m", "unrelated", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)

    result = publish(config(checkout), releases=[VOTE], targets=TARGETS, dry_run=False, in_place=True, token=None)
    assert result.attempts == 2 and result.pushed and result.commit == tip(remote)
    assert [m.splitlines()[0] for m in log(remote)] == ["release 42: vote 42@sha256:abababababab…", "unrelated", "seed"]
    assert b"vote:42" in show(remote, "main", "apps/vote.yaml")
    # The user's full checkout stayed full, and now sits on the pushed commit.
    assert git("rev-parse", "--is-shallow-repository", "HEAD", cwd=checkout).split() == ["false", result.commit]


def test_retries_are_bounded(tmp_path, remote):
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(remote), str(checkout))
    other = tmp_path / "other"
    git("clone", "--quiet", str(remote), str(other))
    git("commit", "--quiet", "--allow-empty", "-m", "moved", cwd=other)
    git("push", "--quiet", "origin", "main", cwd=other)
    with pytest.raises(OperationError) as err:
        publish(config(checkout, push_retries=1), releases=[VOTE], targets=TARGETS, dry_run=False, in_place=True, token=None)
    assert str(err.value) == f"push to {checkout} branch main was rejected 1 time(s): others keep pushing to it"
    assert log(remote)[0] == "moved"


def test_in_place_refuses_a_dirty_checkout(tmp_path, remote):
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(remote), str(checkout))
    (checkout / "apps" / "vote.yaml").write_text("edited by hand\n")
    with pytest.raises(UsageError, match="has uncommitted changes"):
        publish(config(checkout), releases=[VOTE], targets=TARGETS, dry_run=False, in_place=True, token=None)


def test_a_checkout_path_is_a_clone_source(tmp_path, remote):
    seed = tmp_path / "seed"  # a non-bare checkout with main checked out: push to a new branch
    result = publish(config(seed, push_branch="bump"), releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert result.commit == git("rev-parse", "bump", cwd=seed).strip()


def test_twenty_concurrent_releases_all_land_once(tmp_path):
    names = [f"svc{i:02d}" for i in range(20)]
    bare = make_remote(tmp_path, {f"apps/{n}.yaml": deployment(n) for n in names})
    cfg = config(bare)

    def one(name: str):
        release = ReleasedImage(name, f"{REG}/{name}", "42", "sha256:" + "ef" * 32)
        targets = {name: (GitOpsFile(f"apps/{name}.yaml"),)}
        return publish(cfg, releases=[release], targets=targets, dry_run=False, token=None)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, names))
    elapsed = time.monotonic() - start
    print(f"20 concurrent releases: {elapsed:.1f} s, attempts {sorted(r.attempts for r in results)}")
    assert elapsed < 90  # a bound against retries in lockstep, not a speed goal (30 s failed at load 15)
    assert all(r.pushed for r in results)
    assert len(log(bare)) == 21
    for name in names:
        assert len(log(bare, "main", f"apps/{name}.yaml")) == 2  # seed + exactly one release
        assert show(bare, "main", f"apps/{name}.yaml").decode() == deployment(name).replace(f"{name}:41", f"{name}:42")
    assert {r.commit for r in results} <= set(git("rev-list", "main", cwd=bare).split())


def test_hostile_global_git_config_does_not_break_a_release(tmp_path, remote, monkeypatch):
    """Signing, failing hooks, autocrlf, no identity and a wrong credential helper, all global."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("pre-commit", "commit-msg", "post-commit", "pre-push", "post-checkout"):
        (hooks / hook).write_text("#!/bin/sh\nexit 1\n")
        (hooks / hook).chmod(0o755)
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(
        "[commit]\n\tgpgSign = true\n[user]\n\tuseConfigOnly = true\n"
        f"[core]\n\thooksPath = {hooks}\n\tautocrlf = true\n"
        '[credential]\n\thelper = "!f() { echo username=x; echo password=wrong; }; f"\n'
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    with serve_http(remote.parent, TOKEN) as (base, _):
        result = publish(config(f"{base}/remote.git"), releases=[VOTE, WORKER], targets=TARGETS, dry_run=False,
                         token=TOKEN)  # fmt: skip
    assert result.pushed and result.commit == tip(remote)
    assert show(remote, "main", "apps/worker.yaml") == FILES["apps/worker.yaml"].replace("worker:41", "worker:42").encode()


def test_unknown_placeholder_fails_before_cloning(tmp_path):
    with pytest.raises(ConfigError) as err:
        publish(config(tmp_path / "nowhere", message="release {version}"), releases=[VOTE], targets=TARGETS,
                dry_run=False, token=None)  # fmt: skip
    assert str(err.value) == "gitops.message: unknown placeholder {version} in the commit message template; use {tag} and {summary}"


def test_missing_branch_is_bad_configuration(remote):
    with pytest.raises(ConfigError) as err:
        publish(config(remote, branch="nope"), releases=[VOTE], targets=TARGETS, dry_run=False, token=None)
    assert err.value.message == f"gitops.branch: branch 'nope' does not exist in {remote}"
    assert err.value.exit_code == 2


# --------------------------------------------------------------------------- credentials

TOKEN = "s3cr3t-Tok3n-4-buildctl"
SECRET_FORMS = (TOKEN, base64.b64encode(f"buildctl:{TOKEN}".encode()).decode(), base64.b64encode(TOKEN.encode()).decode())


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRET_FORMS:
            assert secret not in text


def test_token_from_env_pushes_over_http_and_never_shows(remote, monkeypatch, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="buildctl")
    monkeypatch.setenv("BUILDCTL_GIT_TOKEN", TOKEN)
    with serve_http(remote.parent, TOKEN) as (base, app), CmdlineWatcher() as ps:
        result = publish(config(f"{base}/remote.git"), releases=[VOTE], targets=TARGETS, dry_run=False,
                         token=git_token_from_env())  # fmt: skip
    assert result.pushed and result.commit == tip(remote)
    assert any(ok and "git-receive-pack" in path for method, path, ok in app.requests if method == "POST")
    assert any(not ok for _, _, ok in app.requests)  # the server did demand credentials
    assert any(line.startswith("git clone") for line in ps.seen)  # the watcher saw git's argv...
    out, err = capfd.readouterr()
    assert_no_secret(*ps.seen, out, err, caplog.text, repr(result), *log(remote))  # ...never the token


def test_http_without_or_with_a_wrong_token_fails_clearly(remote, monkeypatch):
    monkeypatch.delenv("BUILDCTL_GIT_TOKEN", raising=False)
    monkeypatch.delenv("SYSTEM_ACCESSTOKEN", raising=False)
    before = tip(remote)
    with serve_http(remote.parent, TOKEN) as (base, _):
        url = f"{base}/remote.git"
        with pytest.raises(CommandError) as missing:
            publish(config(url), releases=[VOTE], targets=TARGETS, dry_run=False, token=git_token_from_env())
        with pytest.raises(CommandError) as wrong:
            publish(config(url), releases=[VOTE], targets=TARGETS, dry_run=False, token="wrong-" + TOKEN)
    assert missing.value.hint == "the remote needs credentials: set BUILDCTL_GIT_TOKEN (or SYSTEM_ACCESSTOKEN)"
    assert wrong.value.hint == "the token was refused: check BUILDCTL_GIT_TOKEN has write access"
    assert str(wrong.value).startswith("cloning branch main of the GitOps repository: `git clone")
    assert_no_secret(str(wrong.value), wrong.value.failure.output, " ".join(wrong.value.failure.command))
    assert tip(remote) == before


def test_credentials_in_the_url_are_refused_without_echoing_them():
    with pytest.raises(UsageError) as err:
        publish(config(f"https://x-access-token:{TOKEN}@example.com/org/gitops.git"), releases=[VOTE],
                targets=TARGETS, dry_run=False, token=None)  # fmt: skip
    assert str(err.value) == "the GitOps repository URL https://example.com/org/gitops.git contains credentials"
    assert "BUILDCTL_GIT_TOKEN" in err.value.hint
    with pytest.raises(UsageError):
        check_repo_url(f"https://{TOKEN}@example.com/x.git")  # GitHub accepts a token as the user
    check_repo_url("ssh://git@example.com/org/gitops.git")  # an ssh login name is not a secret
    check_repo_url("git@example.com:org/gitops.git")


def test_redact_url_and_token_precedence():
    assert redact_url(f"https://u:{TOKEN}@h.example/a b https://h2/x") == "https://h.example/a b https://h2/x"
    assert redact_url("/srv/gitops.git") == "/srv/gitops.git"
    assert clone_source("/srv/../srv/gitops.git") == "file:///srv/gitops.git"  # so --depth applies
    for url in ("file:///srv/g.git", "https://h/g.git", "ssh://git@h/g.git", "git@h:org/g.git"):
        assert clone_source(url) == url
    assert git_token_from_env({"SYSTEM_ACCESSTOKEN": "az", "BUILDCTL_GIT_TOKEN": "bc"}) == "bc"
    assert git_token_from_env({"SYSTEM_ACCESSTOKEN": "az", "BUILDCTL_GIT_TOKEN": ""}) == "az"
    assert git_token_from_env({}) is None


def test_a_gitattributes_rule_that_would_rewrite_the_file_stops_the_push(tmp_path):
    # A CRLF file committed before `*.yaml text` was added: git would store it with LF, every line
    # changed, while the diff shown changes one. Nothing may land that differs from the diff.
    seed = tmp_path / "seed"
    bare = make_remote(tmp_path, FILES)
    git("clone", "--quiet", str(bare), str(seed / ".." / "second"))
    second = tmp_path / "second"
    (second / ".gitattributes").write_text("*.yaml text\n")
    git("add", ".gitattributes", cwd=second)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "attributes", cwd=second)
    git("push", "--quiet", "origin", "main", cwd=second)
    before = tip(bare)
    with pytest.raises(OperationError) as err:
        publish(config(bare), releases=[WORKER], targets=TARGETS, dry_run=False, token=None)
    assert err.value.message == ("git would store apps/worker.yaml differently from the edit (a .gitattributes "
                                 "eol/filter rule rewrites lines the edit does not touch); nothing was committed or pushed")
    assert tip(bare) == before
    # The LF file in the same repository is stored as edited: that release goes through.
    assert publish(config(bare), releases=[VOTE], targets=TARGETS, dry_run=False, token=None).pushed


def test_a_checkout_git_converts_both_ways_is_released(tmp_path):
    # `*.yaml text eol=crlf`: checked out CRLF, stored LF, as the repository always stores it.
    bare = make_remote(tmp_path, {".gitattributes": "*.yaml text eol=crlf\n", "apps/vote.yaml": deployment("vote")})
    result = publish(config(bare), releases=[VOTE], targets={"vote": TARGETS["vote"]}, dry_run=False, token=None)
    assert result.pushed
    stored = show(bare, "main", "apps/vote.yaml")
    assert b"\r\n" not in stored and f"{REG}/vote:42".encode() in stored

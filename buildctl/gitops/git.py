"""Commit the manifest change to the GitOps repository and push it safely. The only module that runs git.

Replaces ``git clone https://$PAT@...; sed ...; git add .; git commit; git push``:
- the work happens in a throwaway shallow clone, never in the user's working tree (unless
  ``in_place`` says the caller's checkout is the work tree, as in a CI job);
- one commit for all services, containing only the files that changed; none if nothing did;
- a rejected push (someone else pushed first) fetches the new tip, recomputes the edit from the
  new files and retries with jittered backoff — never ``--force``;
- the token travels to git in the environment of the git child only, through a credential helper
  that reads it from there: never in argv (``ps``), the URL, logs, exceptions or results.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import string
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import tenacity

from buildctl import interrupts
from buildctl.errors import CommandError, ConfigError, OperationError, UsageError
from buildctl.gitops import edits as manifests
from buildctl.gitops.results import GitOpsResult, ManifestChange
from buildctl.model import GitOpsConfig, ManifestTarget, ReleasedImage

log = logging.getLogger(__name__)

TOKEN_VARIABLES = ("BUILDCTL_GIT_TOKEN", "SYSTEM_ACCESSTOKEN")  # SYSTEM_ACCESSTOKEN: Azure Pipelines
_TOKEN_CHILD_VARIABLE = "BUILDCTL_GIT_TOKEN_VALUE"
# git runs a "!" helper with sh and the operation (get/store/erase) as $1; only `get` answers.
# The helper text holds the variable's *name*: sh expands it from the git child's environment.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || return 0; echo username=buildctl; '
    'echo "password=$' + _TOKEN_CHILD_VARIABLE + '"; }; f'
)
# Variables that would point our git commands at another repository (e.g. when run from a hook).
_REPOSITORY_VARIABLES = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                         "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX")  # fmt: skip
_RETRYABLE_PUSH = ("fetch first", "non-fast-forward", "stale info", "cannot lock ref",
                   "failed to update ref", "incorrect old value")  # fmt: skip
_AUTH_FAILURE = re.compile(r"Authentication failed|could not read (Username|Password)|\b40[13]\b")
_URL_USERINFO = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s]*@)")
GIT_TIMEOUT_SECONDS = 300


class PushRejected(Exception):
    """The remote branch moved on while we worked: fetch, re-apply, push again."""


def git_token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return next((env[v] for v in TOKEN_VARIABLES if env.get(v)), None)


def redact_url(url: str) -> str:
    """``url`` without userinfo (``https://user:tok@host/x`` -> ``https://host/x``), for display."""
    return _URL_USERINFO.sub(r"\1", url)


def check_repo_url(url: str) -> None:
    """Refuse credentials in the URL; an ssh login name (``ssh://git@host``) is not one."""
    match = _URL_USERINFO.match(url)
    if match is None:
        return
    if "ssh" in match.group(1).lower() and ":" not in match.group(2):
        return
    raise UsageError(
        f"the GitOps repository URL {redact_url(url)} contains credentials",
        hint="remove them from the URL and put the token in BUILDCTL_GIT_TOKEN "
        "(SYSTEM_ACCESSTOKEN is used in Azure Pipelines)",
    )


def commit_message(template: str, releases: Sequence[ReleasedImage], services: Sequence[str]) -> str:
    """Subject from ``template`` ({tag}, {summary}); body: one line per service with its full digest."""
    changed = [r for r in releases if r.service in services]
    summary = ", ".join(f"{r.service} {r.tag}@{r.digest[:19]}…" for r in changed)
    tags = ",".join(dict.fromkeys(r.tag for r in changed))
    body = "".join(f"{r.service}: {r.repository}:{r.tag}@{r.digest}\n" for r in changed)
    return f"{template.format(tag=tags, summary=summary)}\n\n{body}"


def check_message_template(template: str) -> None:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"invalid message template: {exc}", key="gitops.message") from None
    if unknown := sorted(fields - {"tag", "summary"}):
        raise ConfigError(
            f"unknown placeholder {{{unknown[0]}}} in the commit message template; use {{tag}} and {{summary}}",
            key="gitops.message",
        )  # fmt: skip


class Git:
    """Runs git with a hermetic environment: identity, no prompts, no signing, token via helper."""

    def __init__(self, cfg: GitOpsConfig, *, token: str | None, throwaway: bool) -> None:
        self._secrets = _secret_forms(token)
        env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
        env.update(
            GIT_TERMINAL_PROMPT="0", GCM_INTERACTIVE="never", LC_ALL="C",
            GIT_AUTHOR_NAME=cfg.author_name, GIT_AUTHOR_EMAIL=cfg.author_email,
            GIT_COMMITTER_NAME=cfg.author_name, GIT_COMMITTER_EMAIL=cfg.author_email,
        )  # fmt: skip
        settings = [("commit.gpgSign", "false"), ("push.gpgSign", "false"), ("advice.detachedHead", "false")]
        if throwaway:
            # Our own clone: the user's global hooks (e.g. git-lfs) have no business running, and
            # autocrlf must not rewrite line endings behind the byte-exact manifest edits.
            settings += [("core.hooksPath", os.devnull), ("core.autocrlf", "false")]
        if token:
            # An empty helper first resets the list, so a helper from the user's config can't answer.
            settings += [("credential.helper", ""), ("credential.helper", _CREDENTIAL_HELPER)]
            env[_TOKEN_CHILD_VARIABLE] = token
        count = env.get("GIT_CONFIG_COUNT", "0")
        first = int(count) if count.isdigit() else 0
        for i, (key, value) in enumerate(settings, start=first):
            env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
        env["GIT_CONFIG_COUNT"] = str(first + len(settings))
        self._env = env

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_url(text)

    def run(self, *args: str, cwd: Path | None, what: str, input: str | None = None,
            check: bool = True, detach: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run git; ``detach`` puts it in its own session, out of reach of a terminal's Ctrl-C."""
        argv = ["git", *args]
        shown = [self.redact(a) for a in argv]
        log.debug("running %s", " ".join(shown))
        io = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        try:
            proc = subprocess.run(argv, cwd=cwd, env=self._env, capture_output=True, text=True, check=False,
                                  encoding="utf-8", errors="replace", timeout=GIT_TIMEOUT_SECONDS,
                                  start_new_session=detach, **io)  # fmt: skip
        except OSError as exc:  # git not installed, or cwd gone
            raise OperationError(f"{what}: cannot run git: {exc}") from None
        except subprocess.TimeoutExpired:
            raise OperationError(f"{what}: `{' '.join(shown)}` did not finish in {GIT_TIMEOUT_SECONDS} s") from None
        if check and proc.returncode != 0:
            raise self.error(what, shown, proc)
        return proc

    def error(self, what: str, shown: list[str], proc: subprocess.CompletedProcess[str]) -> CommandError:
        output = self.redact(proc.stdout + proc.stderr)
        hint = None
        if _AUTH_FAILURE.search(output):
            hint = ("the token was refused: check BUILDCTL_GIT_TOKEN has write access" if self._secrets
                    else "the remote needs credentials: set BUILDCTL_GIT_TOKEN (or SYSTEM_ACCESSTOKEN)")  # fmt: skip
        return CommandError(what, command=shown, returncode=proc.returncode, output=output, hint=hint)


def publish(
    cfg: GitOpsConfig,
    *,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[ManifestTarget, ...]],
    dry_run: bool,
    in_place: bool = False,
    token: str | None,
) -> GitOpsResult:
    """Edit the manifests for ``releases``, commit once and push to the configured branch.

    ``in_place`` works in the local checkout ``cfg.repo`` (a CI job's checkout) instead of a
    throwaway clone; it must be clean, because a rejected push resets it to the remote tip.
    ``dry_run`` computes the diff and the commit message and changes nothing.
    """
    check_repo_url(cfg.repo)
    check_message_template(cfg.message)
    git = Git(cfg, token=token, throwaway=not in_place)
    if in_place:
        work = _checkout(git, cfg.repo)
        # A rejected push resets the checkout to the remote tip: it must hold nothing of the user's.
        status = git.run("status", "--porcelain", "--untracked-files=no", cwd=work, what="checking the checkout")
        if not dry_run and status.stdout.strip():
            raise UsageError(f"{cfg.repo} has uncommitted changes; commit or discard them first")
        origin = git.run("remote", "get-url", "origin", cwd=work, what="looking for origin", check=False)
        has_origin = origin.returncode == 0  # no remote: commit locally, push nothing
        return _publish_in(git, work, cfg, releases, targets, dry_run=dry_run, push=has_origin)
    with tempfile.TemporaryDirectory(prefix="buildctl-gitops-") as tmp:
        work = _clone(git, cfg, Path(tmp))
        return _publish_in(git, work, cfg, releases, targets, dry_run=dry_run, push=True)


def find_drift(
    cfg: GitOpsConfig,
    *,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[ManifestTarget, ...]],
    in_place: bool = False,
    token: str | None,
) -> list[manifests.Drift]:
    """Manifests on ``cfg.branch`` that do not reference the released images (read-only)."""
    check_repo_url(cfg.repo)
    git = Git(cfg, token=token, throwaway=not in_place)
    if in_place:
        return manifests.drift(_checkout(git, cfg.repo), releases, targets)
    with tempfile.TemporaryDirectory(prefix="buildctl-gitops-") as tmp:
        return manifests.drift(_clone(git, cfg, Path(tmp)), releases, targets)


def clone_source(repo: str) -> str:
    """A URL git can clone shallowly: local paths become file:// (git ignores --depth for paths)."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", repo) or re.match(r"^[^/:]+:", repo):
        return repo  # a URL, or scp-like user@host:path
    return Path(repo).resolve().as_uri()


def _clone(git: Git, cfg: GitOpsConfig, into: Path) -> Path:
    work = into / "repo"
    what = f"cloning branch {cfg.branch} of the GitOps repository"
    proc = git.run("clone", "--quiet", "--depth", "1", "--branch", cfg.branch, "--single-branch", "--no-tags",
                   clone_source(cfg.repo), str(work), cwd=None, what=what, check=False)  # fmt: skip
    if proc.returncode != 0 and f"Remote branch {cfg.branch} not found" in proc.stderr:
        # A configuration mistake, not a failed operation: exit 2 like every other bad input.
        raise ConfigError(f"branch {cfg.branch!r} does not exist in {redact_url(cfg.repo)}", key="gitops.branch",
                          hint="create it, or fix gitops.branch / --branch")
    if proc.returncode != 0:
        raise git.error(what, ["git", "clone", "--branch", cfg.branch, redact_url(clone_source(cfg.repo))], proc)
    return work


def _checkout(git: Git, repo: str) -> Path:
    if not Path(repo).is_dir():
        raise UsageError(f"--in-place needs a local checkout, and {redact_url(repo)} is not a directory")
    top = git.run("rev-parse", "--show-toplevel", cwd=Path(repo), what=f"{repo} is not a git checkout")
    return Path(top.stdout.strip())


def _publish_in(git: Git, work: Path, cfg: GitOpsConfig, releases: Sequence[ReleasedImage],
                targets: Mapping[str, tuple[ManifestTarget, ...]], *, dry_run: bool, push: bool) -> GitOpsResult:  # fmt: skip
    branch = cfg.push_branch or cfg.branch
    attempts = 0
    # `fetch --depth 1` would turn a user's full checkout (in_place) shallow: only where it is already.
    probe = git.run("rev-parse", "--is-shallow-repository", cwd=work, what="inspecting the checkout")
    depth = ("--depth", "1") if probe.stdout.strip() == "true" else ()
    if push and cfg.push_branch and _remote_has_branch(git, work, cfg.push_branch):
        _reset_to_remote(git, work, cfg.push_branch, depth)  # a rerun adds to its pull-request branch

    def attempt() -> tuple[str | None, ManifestChange, str]:
        nonlocal attempts
        attempts += 1
        if attempts > 1:  # the remote moved on: start again from its new tip
            _reset_to_remote(git, work, branch, depth)
        change, services = manifests.plan(work, releases, targets, pin_digest=cfg.pin_digest)
        message = commit_message(cfg.message, releases, services) if change.changed else ""
        if dry_run or not change.changed:
            return None, change, message
        paths = [f.path for f in change.files if f.before != f.after]
        for f in change.files:
            if f.before != f.after:
                (work / f.path).write_text(f.after, encoding="utf-8", newline="")
        # Only these paths, whatever else the index holds (`git add .` committed stray files).
        git.run("commit", "--quiet", "--no-verify", "-F", "-", "--", *paths, cwd=work, what="committing", input=message)
        if push:
            _push(git, work, branch)
        return git.run("rev-parse", "HEAD", cwd=work, what="reading the commit").stdout.strip(), change, message

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(PushRejected),
        stop=tenacity.stop_after_attempt(max(1, cfg.push_retries)),
        # Full jitter, up to 1, 2, 4, 8, 8... s: measured with 20 concurrent releases on one branch,
        # smaller waits make contenders collide again and exhaust the attempts.
        wait=tenacity.wait_random_exponential(multiplier=1, max=8),
        before_sleep=lambda state: log.info("push rejected (attempt %d); retrying", state.attempt_number),
        reraise=True,
    )
    try:
        commit, change, message = retrying(attempt)
    except PushRejected:
        raise OperationError(
            f"push to {redact_url(cfg.repo)} branch {branch} was rejected {attempts} time(s): "
            "others keep pushing to it",
            hint="run again, or raise gitops.push_retries",
        ) from None
    return GitOpsResult(
        repo=redact_url(cfg.repo), branch=branch, commit=commit, pushed=commit is not None and push,
        attempts=attempts, diff=manifests.unified_diff(change), message=message,
    )  # fmt: skip


def _remote_has_branch(git: Git, work: Path, branch: str) -> bool:
    what = f"looking for branch {branch} on the remote"
    proc = git.run("ls-remote", "--exit-code", "--heads", "origin", f"refs/heads/{branch}", cwd=work, what=what, check=False)
    if proc.returncode not in (0, 2):  # 2: no such ref
        raise git.error(what, [git.redact(a) for a in proc.args], proc)
    return proc.returncode == 0


def _reset_to_remote(git: Git, work: Path, branch: str, depth: tuple[str, ...]) -> None:
    """Make the work tree the remote's tip of ``branch`` (dropping our unpushed commit, if any)."""
    git.run("fetch", "--quiet", *depth, "--no-tags", "origin", f"refs/heads/{branch}",
            cwd=work, what=f"fetching branch {branch}")  # fmt: skip
    git.run("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=work, what=f"resetting to the tip of {branch}")


def _push(git: Git, work: Path, branch: str) -> None:
    what = f"pushing to branch {branch}"
    # The push is one critical section: Ctrl-C/SIGTERM wait for it, so the remote has the whole
    # commit or none and the user is told which (buildctl/interrupts.py).
    with interrupts.critical():
        proc = git.run("push", "--porcelain", "--no-verify", "origin", f"HEAD:refs/heads/{branch}",
                       cwd=work, what=what, check=False, detach=True)  # fmt: skip
    if proc.returncode == 0:
        return
    rejected = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    if any(reason in line for line in rejected for reason in _RETRYABLE_PUSH):
        raise PushRejected(git.redact(" ".join(rejected)))
    raise git.error(what, [git.redact(a) for a in proc.args], proc)


def _secret_forms(token: str | None) -> tuple[str, ...]:
    """The token as it could leak: raw, and base64 in a Basic authorization header."""
    if not token:
        return ()
    return (base64.b64encode(f"buildctl:{token}".encode()).decode(), base64.b64encode(token.encode()).decode(), token)


def git_version() -> str:
    """`git --version`, for doctor; OperationError when git cannot run."""
    try:
        proc = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        raise OperationError(f"git not found: {exc.strerror}") from None
    if proc.returncode != 0:
        raise OperationError(f"`git --version` exited {proc.returncode}")
    return proc.stdout.strip()

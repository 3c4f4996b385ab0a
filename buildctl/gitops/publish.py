"""Commit the manifest change to the GitOps repository and push it safely.

Replaces ``git clone https://$PAT@...; sed ...; git add .; git commit; git push``:
- the work happens in a throwaway shallow clone, never in the user's working tree (unless
  ``in_place`` says the caller's checkout is the work tree, as in a CI job);
- one commit for all services, containing only the files that changed; none if nothing did;
- a rejected push (someone else pushed first) fetches the new tip, recomputes the edit from the
  new files and retries with jittered backoff — never ``--force``; a reference newer than the
  release (gitops.tag_order) is kept on every attempt, so an older release racing a newer one
  cannot overwrite it;
- before committing, the edited files must still parse into the same documents and every
  touched kustomization must render (render_check.py); otherwise nothing is committed.
git itself runs through git.py (the only module that runs it).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import tenacity

from buildctl import interrupts, workdir
from buildctl.errors import CommandError, ConfigError, OperationError, UsageError
from buildctl.gitops import edits, render_check, staging
from buildctl.gitops.templates import check_message_template, commit_message, push_branch
from buildctl.gitops.git import (
    Git,
    check_repo_url,
    check_transport,
    clone_source,
    missing_repository_error,
    no_repository,
)
from buildctl.gitops.results import Drift, GitOpsChange, GitOpsResult
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from buildctl.redaction import redact_url

log = logging.getLogger(__name__)


_RETRYABLE_PUSH = ("fetch first", "non-fast-forward", "stale info", "cannot lock ref",
                   "failed to update ref", "incorrect old value")  # fmt: skip


# How git words a clone that ran out of room: ENOSPC while writing objects, but while checking out
# only that a file could not be written (a tmpfs full of small files' pages).
_NO_ROOM = ("No space left on device", "unable to write", "unable to create", "unable to checkout working tree")
_T = TypeVar("_T")


class PushRejected(Exception):
    """The remote branch moved on while we worked: fetch, re-apply, push again."""


def publish(
    cfg: GitOpsConfig,
    *,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[GitOpsFile, ...]],
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
    if in_place:
        local = Git(cfg, token=None, throwaway=False)  # no token until we know where origin is
        cfg = dataclasses.replace(cfg, push_branch=push_branch(cfg, releases, local))
        work = _checkout(local, cfg.repo)
        # A rejected push resets the checkout to the remote tip: it must hold nothing of the user's.
        status = local.run("status", "--porcelain", "--untracked-files=no", cwd=work, what="checking the checkout")
        if not dry_run and status.stdout.strip():
            raise UsageError(f"{cfg.repo} has uncommitted changes; commit or discard them first")
        origin = _origin_urls(local, work)  # none: commit locally, push nothing
        git = Git(cfg, token=token, throwaway=False, remotes=origin)  # the token goes to origin's host only
        return _publish_in(git, work, cfg, releases, targets, dry_run=dry_run, push=bool(origin), in_place=True)
    git = Git(cfg, token=token, throwaway=True)
    cfg = dataclasses.replace(cfg, push_branch=push_branch(cfg, releases, git))
    return _in_clone(git, cfg, lambda work: _publish_in(git, work, cfg, releases, targets, dry_run=dry_run, push=True))


def find_drift(
    cfg: GitOpsConfig,
    *,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[GitOpsFile, ...]],
    in_place: bool = False,
    token: str | None,
) -> list[Drift]:
    """Manifests on ``cfg.branch`` that do not reference the released images (read-only)."""
    check_repo_url(cfg.repo)
    if in_place:  # reads the checkout only: no remote, no token
        return edits.drift(_checkout(Git(cfg, token=None, throwaway=False), cfg.repo), releases, targets)
    git = Git(cfg, token=token, throwaway=True)
    return _in_clone(git, cfg, lambda work: edits.drift(work, releases, targets))


def _in_clone(git: Git, cfg: GitOpsConfig, then: Callable[[Path], _T]) -> _T:
    """``then`` of a throwaway clone of the branch, removed afterwards; in memory where there is room
    (workdir.scratch_parents), on disk when the clone does not fit there."""
    *first, last = workdir.scratch_parents()
    for parent in first:
        with tempfile.TemporaryDirectory(prefix="buildctl-gitops-", dir=parent) as tmp:
            try:
                work = _clone(git, cfg, Path(tmp))
            except CommandError as exc:
                if not _out_of_room(exc.failure.output, parent):
                    raise
                log.info("the clone does not fit in %s; cloning to disk", parent)
                continue
            return then(work)
    with tempfile.TemporaryDirectory(prefix="buildctl-gitops-", dir=last) as tmp:
        return then(_clone(git, cfg, Path(tmp)))


def _out_of_room(output: str, parent: str) -> bool:
    return any(words in output for words in _NO_ROOM) or workdir.nearly_full(parent)


def _clone(git: Git, cfg: GitOpsConfig, into: Path) -> Path:
    work = into / "repo"
    what = f"cloning branch {cfg.branch} of the GitOps repository"
    proc = git.run("clone", "--quiet", "--depth", "1", "--branch", cfg.branch, "--single-branch", "--no-tags",
                   clone_source(cfg.repo), str(work), cwd=None, what=what, check=False)  # fmt: skip
    if proc.returncode != 0 and f"Remote branch {cfg.branch} not found" in proc.stderr:
        # A configuration mistake, not a failed operation: exit 2 like every other bad input.
        raise ConfigError(f"branch {cfg.branch!r} does not exist in {redact_url(cfg.repo)}", key="gitops.branch",
                          hint="create it, or fix gitops.branch / --branch")
    if proc.returncode != 0 and no_repository(proc.stderr):  # bad input too: one line, exit 2
        raise missing_repository_error(cfg.repo, key="gitops.repo")
    if proc.returncode != 0:
        raise git.error(what, ["git", "clone", "--branch", cfg.branch, redact_url(clone_source(cfg.repo))], proc)
    return work


def _origin_urls(git: Git, work: Path) -> tuple[str, ...]:
    """Where the checkout fetches from and pushes to (insteadOf applied), each checked as gitops.repo is."""
    urls: list[str] = []
    for extra in ((), ("--push",)):
        proc = git.run("remote", "get-url", "--all", *extra, "origin", cwd=work, what="looking for origin", check=False)
        urls += proc.stdout.splitlines() if proc.returncode == 0 else []
    for url in urls:
        check_transport(url, what="the checkout's origin")
    return tuple(dict.fromkeys(urls))


def _checkout(git: Git, repo: str) -> Path:
    if not Path(repo).is_dir():
        raise UsageError(f"--in-place needs a local checkout, and {redact_url(repo)} is not a directory")
    top = git.run("rev-parse", "--show-toplevel", cwd=Path(repo), what=f"{redact_url(repo)} is not a git checkout",
                  check=False)
    if top.returncode != 0 and no_repository(top.stderr):
        raise missing_repository_error(repo, key="--in-place")
    if top.returncode != 0:
        raise git.error(f"{redact_url(repo)} is not a git checkout", list(top.args), top)
    return Path(top.stdout.strip())


def _publish_in(git: Git, work: Path, cfg: GitOpsConfig, releases: Sequence[ReleasedImage],
                targets: Mapping[str, tuple[GitOpsFile, ...]], *, dry_run: bool, push: bool,
                in_place: bool = False) -> GitOpsResult:  # fmt: skip
    branch = cfg.push_branch or cfg.branch
    attempts = 0
    # `fetch --depth 1` would turn a user's full checkout (in_place) shallow: only where it is already.
    probe = git.run("rev-parse", "--is-shallow-repository", cwd=work, what="inspecting the checkout")
    depth = ("--depth", "1") if probe.stdout.strip() == "true" else ()
    if push and cfg.push_branch and _remote_has_branch(git, work, cfg.push_branch):
        _reset_to_remote(git, work, cfg.push_branch, depth)  # a rerun adds to its pull-request branch

    rendered: tuple[str, ...] = ()

    def attempt() -> tuple[str | None, GitOpsChange, str]:
        nonlocal attempts, rendered
        attempts += 1
        if attempts > 1:  # the remote moved on: start again from its new tip
            _reset_to_remote(git, work, branch, depth)
        change, services = edits.compute_change(work, releases, targets, pin_digest=cfg.pin_digest,
                                                tag_order=cfg.tag_order)
        message = commit_message(cfg.message, releases, services) if change.changed else ""
        if not change.changed:
            return None, change, message
        paths = [f.path for f in change.modified_files]
        staging.check_stored_as_checked_out(git, work, paths)
        if in_place:
            staging.check_not_hidden(git, work, paths)
        _write(work, change, edited=True)
        try:
            rendered = render_check.check(work, change, render=cfg.render_check)
        except BaseException:
            _write(work, change, edited=False)  # an --in-place checkout is left as it was
            raise
        if dry_run:
            _write(work, change, edited=False)
            return None, change, message
        try:
            staging.commit(git, work, paths, message=message)
        except BaseException:
            _write(work, change, edited=False)  # an --in-place checkout is left as it was
            git.run("reset", "--quiet", cwd=work, what="unstaging the edited files", check=False)
            raise
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
    kept = tuple(f"{f.path}: {line}" for f in change.files for line in f.kept)
    return GitOpsResult(
        repo=redact_url(cfg.repo), branch=branch, commit=commit, pushed=commit is not None and push,
        attempts=attempts, diff=edits.unified_diff(change), message=message, kept=kept, rendered=rendered,
    )  # fmt: skip


def _write(work: Path, change: GitOpsChange, *, edited: bool) -> None:
    for f in change.modified_files:
        (work / f.path).write_text(f.after if edited else f.before, encoding="utf-8", newline="")


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
                       cwd=work, what=what, check=False)  # fmt: skip
    if proc.returncode == 0:
        return
    rejected = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    if any(reason in line for line in rejected for reason in _RETRYABLE_PUSH):
        raise PushRejected(git.redact(" ".join(rejected)))
    raise git.error(what, [git.redact(a) for a in proc.args], proc)

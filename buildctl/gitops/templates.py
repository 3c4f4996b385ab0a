"""The GitOps commit's templates from services.yaml: its message (``gitops.message``) and the branch
a release pushes to for review (``gitops.push_branch``), checked before anything is cloned."""

from __future__ import annotations

import string
from collections.abc import Sequence

from buildctl.errors import ConfigError
from buildctl.gitops.git import Git
from buildctl.model import GitOpsConfig, ReleasedImage


def commit_message(template: str, releases: Sequence[ReleasedImage], services: Sequence[str]) -> str:
    """Subject from ``template`` ({tag}, {summary}); body: one line per service with its full digest."""
    changed = [r for r in releases if r.service in services]
    summary = ", ".join(f"{r.service} {r.tag}@{r.digest[:19]}…" for r in changed)
    tags = ",".join(dict.fromkeys(r.tag for r in changed))
    body = "".join(f"{r.service}: {r.repository}:{r.tag}@{r.digest}\n" for r in changed)
    return f"{template.format(tag=tags, summary=summary)}\n\n{body}"


def check_message_template(template: str) -> None:
    _check_template(template, fields=("tag", "summary"), key="gitops.message", what="commit message template")


def _check_template(template: str, *, fields: tuple[str, ...], key: str, what: str) -> None:
    """Placeholders known, and the template formats: {tag!x} or {tag:d} fail only in .format()."""
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"invalid {what}: {exc}", key=key) from None
    if unknown := sorted(used - set(fields)):
        names = " and ".join(f"{{{f}}}" for f in fields)
        raise ConfigError(f"unknown placeholder {{{unknown[0]}}} in the {what}; use {names}", key=key)
    try:
        template.format(**{f: "x" for f in fields})
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError(f"invalid {what} {template!r}: {exc}", key=key) from None


def push_branch(cfg: GitOpsConfig, releases: Sequence[ReleasedImage], git: Git) -> str | None:
    """gitops.push_branch with {tag} filled in (``release/{tag}``), checked as git checks branch names."""
    if not cfg.push_branch:
        return None
    _check_template(cfg.push_branch, fields=("tag",), key="gitops.push_branch", what="push branch template")
    name = cfg.push_branch.format(tag="-".join(dict.fromkeys(r.tag for r in releases)))
    valid = not name.startswith("-") and git.run("check-ref-format", "--branch", name, cwd=None,
                                                 what="checking the push branch name", check=False).returncode == 0
    if not valid:
        raise ConfigError(f"{name!r} is not a valid git branch name", key="gitops.push_branch",
                          hint="see `git check-ref-format --help`; e.g. release/{tag}")
    return name

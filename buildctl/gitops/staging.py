"""What the GitOps commit stores: each edited file as git stores it, staged and committed alone.

The commit holds only the edited paths (`git add .` once committed stray files): the index holds
nothing else, as the clone is fresh and an --in-place checkout clean.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from pathlib import Path

from buildctl.errors import OperationError
from buildctl.gitops.git import Git


def commit(git: Git, work: Path, paths: Sequence[str], *, message: str) -> None:
    """Stage ``paths`` as they are in the work tree, then commit them with ``message``. Staged first:
    `commit -- paths` builds a temporary index and refreshes both (1,000 files: 0.11 s -> 0.05 s)."""
    git.run("update-index", "-z", "--stdin", cwd=work, what="staging the edited files", input=_nul(paths))
    git.run("commit", "--quiet", "--no-verify", "-F", "-", cwd=work, what="committing", input=message)


def check_not_hidden(git: Git, work: Path, paths: Sequence[str]) -> None:
    """No edited file of an --in-place checkout is marked assume-unchanged or skip-worktree: git
    would not stage it (the commit would miss it, or hold nothing), and `git status` hides it."""
    listed = git.run("--literal-pathspecs", "ls-files", "-v", "-z", "--", *[posixpath.normpath(p) for p in paths],
                     cwd=work, what="reading the index")
    for entry in listed.stdout.split("\0"):
        flag, _, name = entry.partition(" ")
        if name and (flag.islower() or flag == "S"):
            kind = "skip-worktree" if flag == "S" else "assume-unchanged"
            raise OperationError(f"{name} is marked {kind} in the checkout, so git would not commit the edit; "
                                 "nothing was committed or pushed",
                                 hint=f"clear the mark first: git update-index --no-{kind} -- {name}")


def check_stored_as_checked_out(git: Git, work: Path, paths: Sequence[str]) -> None:
    """Each file, unedited, is what git has stored: git's filters applied to it (a .gitattributes eol
    rule) give the committed blob. Otherwise committing would rewrite lines the edit did not touch (a
    CRLF file committed before `*.yaml text` was added: every line), and what lands is not the diff
    shown. A checkout that git converts both ways (eol=crlf, autocrlf) passes: that is what it stores."""
    filtered = git.run("hash-object", "--", *paths, cwd=work, what="hashing the files as git would store them")
    # One ls-tree, not `rev-parse HEAD:path` per file (1,000 object lookups: 0.13 s -> 0.02 s).
    names = [posixpath.normpath(p) for p in paths]
    listed = git.run("--literal-pathspecs", "ls-tree", "-z", "--full-tree", "HEAD", "--", *names, cwd=work,
                     what="reading the commit")
    stored = {}
    for entry in listed.stdout.split("\0"):
        meta, _, name = entry.partition("\t")
        if name:
            stored[name] = meta.split()[-1]
    for path, name, blob in zip(paths, names, filtered.stdout.split(), strict=True):
        if stored.get(name) is None:
            raise OperationError(f"{path} is not committed in the GitOps repository; nothing was committed or pushed",
                                 hint="commit the manifest first (git add, git commit), then run again")
        if blob != stored[name]:
            raise OperationError(
                f"git would store {path} differently from the edit (a .gitattributes eol/filter rule "
                "rewrites lines the edit does not touch); nothing was committed or pushed",
                hint="renormalise the file in the GitOps repository first (git add --renormalize), or fix .gitattributes",
            )


def _nul(paths: Sequence[str]) -> str:
    return "".join(f"{p}\0" for p in paths)

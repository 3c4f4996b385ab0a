"""Ended release claims tidied away (registry/claims.py; issue #20).

A claim ends as a tag of ENDED, one document for every run, so one delete by ENDED's digest
removes every ended claim's tag in a repository. That delete is what a claim's end no longer
does: on Distribution it reads every tag of the repository (~0.1-0.3 s in one of 3,000 tags).
So it runs once a repository holds TIDY_AT claim tags of this buildctl, counted as they are (a
HEAD each, at once): beside a run's builds, or after the claim of a run that builds nothing.
A claim its run never took back (the run was killed) is ended here once a day old, and goes with
the others: not once past CLAIM_TTL_SECONDS, which is judged by this machine's clock — a tidier
whose clock runs fast would end claims other runs still count. Tags of older buildctl versions
are left as they are. A registry that refuses the delete (Distribution's default) is not tidied
again for a day (a mark in the user's cache): it would only gather ended tags to HEAD each time.

Housekeeping: on a thread and a registry client of its own, without retries; the run never
waits for it, and a process that exits first cuts it short (a later run tidies instead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from buildctl import concurrently
from buildctl.errors import OperationError
from buildctl.registry import refusals
from buildctl.registry.claim_docs import ENDED_DIGEST, is_attempt_tag, point_at_ended, read_claim
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import RetryPolicy

TIDY_AT = 16  # claim tags of this buildctl a repository may hold before a run tidies it
READS = 8  # HEADs at once per repository
ABANDONED_SECONDS = 24 * 3600  # a claim this old was left by a run that is over, whatever the clocks


def due(tags: Sequence[str]) -> bool:
    """Whether a repository with these tags is due a tidy (before any HEAD)."""
    return sum(map(is_attempt_tag, tags)) >= TIDY_AT


def start(client: RegistryClient, repositories: Sequence[str], *,
          listed: Mapping[str, Sequence[str]] | None = None) -> threading.Thread:
    """Tidy ``repositories`` on a daemon thread (returned) with a client of its own; ``listed``:
    their tags as the caller just listed them (else they are listed here)."""
    def run() -> None:
        with RegistryClient(credentials=client.auth.source, retry=RetryPolicy(attempts=1), timeout=30.0) as own:
            concurrently.each(lambda r: tidy(own, r, (listed or {}).get(r), now=time.time()), list(repositories),
                              name="claim-tidy")

    thread = threading.Thread(target=run, name="claim-tidy", daemon=True)
    thread.start()
    return thread


def tidy(client: RegistryClient, repository: str, tags: Sequence[str] | None, *, now: float) -> bool:
    """End the claims a day old (ABANDONED_SECONDS), then delete ENDED (and with it every tag of
    it) once TIDY_AT tags point at it; whether it deleted. Never raises: housekeeping."""
    registry = repository.split("/", 1)[0]
    try:
        if refusals.refused_lately(refusals.MANIFEST_DELETE, registry, now=now):
            return False
        tags = client.list_tags(repository) if tags is None else tags
        ours = [t for t in tags if is_attempt_tag(t)]
        if len(ours) < TIDY_AT:
            return False
        ended = sum(concurrently.each(lambda t: _ended(client, repository, t, now=now), ours,
                                      name="claim-tidy-read", limit=READS))
        if ended < TIDY_AT:
            return False
        if not client.delete_manifest(f"{repository}@{ENDED_DIGEST}"):
            refusals.note_refusal(refusals.MANIFEST_DELETE, registry, now=now)
            return False
        return True
    except (OperationError, RuntimeError):  # RuntimeError: a client closed under it (the run ended)
        return False


def _ended(client: RegistryClient, repository: str, tag: str, *, now: float) -> bool:
    """Whether ``tag`` points at ENDED, after pointing it there if its claim is a day old. Safe
    beside the run that made it: a run claims each attempt under a tag never used before, and a
    claim a day old counts for no run (CLAIM_TTL_SECONDS) unless clocks are a day apart."""
    try:
        if (found := read_claim(client, repository, tag)) is None:
            return False  # taken away since the listing
        digest, claim = found
        if digest == ENDED_DIGEST:
            return True
        if claim is not None and not claim.ended and now - claim.created < ABANDONED_SECONDS:
            return False  # held, or not surely abandoned
        point_at_ended(client, repository, tag)
        return True
    except OperationError:  # one tag's trouble (a 429 among many HEADs) is not the tidy's end
        return False

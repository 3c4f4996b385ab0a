"""Release claims: one run at a time releases REPO:TAG (issue #23, two runs with the same tag).

The Distribution API has no compare-and-swap on tags — a manifest PUT replaces whatever the tag
held — so two runs with the same release tag (a re-queued CI job beside the original) could both
read "absent" in tagging.decide, both write the tag and both commit to Git, and the one that
wrote first would exit 0 having released what the tag no longer resolves to.

A claim is a tiny empty OCI index of the run's own (its run id and time in annotations, so its
digest is unique), pushed to every service's repository under
``buildctl-claim-<key>-<run>-<attempt>``. A run holds the release once, after pushing its claims,
the tag lists show no other live claim for the same release tag. Two runs cannot both see that:
each pushed before it listed, so whichever listed later sees the other's claim. When both see
each other, both take their claims back and try again after a random pause (each attempt under a
tag of its own); a run that still finds another claim when its wait is over stops with nothing
tagged. One left by a run that died is ignored after CLAIM_TTL_SECONDS.

A claim is taken back by pointing its tag at ENDED, one document for every run (issue #20):
a manifest PUT costs the same in any repository, while Distribution's delete by digest reads
every tag of the repository to find the ones to remove (40-120 ms in one of 2,300 tags, and it
grows with every release). The claim's own manifest is left untagged, as a moved tag leaves
its old manifest, for the registry's garbage collection or retention rules. Every ended claim
is the same manifest, so one delete by its digest removes all their tags (registry/claim_tidy.py).
The documents and tags themselves: registry/claim_docs.py.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from buildctl import concurrently
from buildctl.errors import OperationError, UsageError
from buildctl.registry import claim_tidy
from buildctl.registry.claim_docs import (
    INDEX_TYPE,
    PREFIX,
    Claim,
    claim_document,
    claim_tag,
    live_claims,
    point_at_ended,
    read_claim,
    release_key,
)
from buildctl.registry.client import RegistryClient

WAIT_SECONDS = 180.0  # how long a run waits for another run's release of the same tag to end
WAIT_VARIABLE = "BUILDCTL_CLAIM_WAIT_SECONDS"


def wait_seconds(environ: Mapping[str, str]) -> float:
    """The wait from BUILDCTL_CLAIM_WAIT_SECONDS (0 to 3600), else WAIT_SECONDS."""
    raw = environ.get(WAIT_VARIABLE)
    if raw is None:
        return WAIT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise UsageError(f"{WAIT_VARIABLE} must be a number of seconds from 0 to 3600, not {raw[:40]!r}")
    return value


class ReleaseClaim:
    """This run's claim on the release of ``tag`` in ``repositories``; a context manager that
    takes the claims back when the run ends, however it ends. ``acquire`` is called after the
    gate, before tagging.decide; held until the GitOps step has ended."""

    def __init__(self, client: RegistryClient, *, repositories: Sequence[str], tag: str, run_id: str,
                 wait_seconds: float = WAIT_SECONDS, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], object] | None = None) -> None:
        self._client, self._repositories = client, tuple(sorted(set(repositories)))
        self._tag, self._run_id, self._wait = tag, run_id, wait_seconds
        self._stopping = threading.Event()  # release(): an early attempt stops waiting, at once
        self._clock, self._sleep = clock, sleep or self._stopping.wait
        self._pushed: dict[str, tuple[str, str]] = {}  # repository -> (tag, digest) of this run's claim there
        self._attempts = 0  # claims pushed so far: each attempt claims under a tag of its own
        self._listed: dict[str, tuple[str, ...]] = {}  # repository -> its tags, as the last listing found them
        self.tidying: threading.Thread | None = None  # the tidy begun (tidy_soon, or after acquiring)
        self.waited: tuple[Claim, ...] = ()  # the other runs this run waited for (the record says so)
        self._releasing: threading.Thread | None = None
        self._early: Future[str | None] | None = None  # acquire_soon's attempt, until acquire takes it
        self._early_waits: tuple[Claim, ...] = ()  # the runs that attempt waits for, once it does

    def __enter__(self) -> ReleaseClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._releasing is not None:
            self._releasing.join()
        self.release()

    def acquire_soon(self) -> None:
        """Begin ``acquire`` on a thread of its own, for a run whose builds all succeeded while its
        last verifications still run: the claim's round trips (~20 ms) go beside them instead of
        after the gate. ``acquire`` then answers with that attempt; ``release`` (the gate failed, or
        the run ends) stops it waiting for another run."""
        if self._early is not None or self._pushed:
            return
        early: Future[str | None] = Future()

        def attempt() -> None:
            try:
                early.set_result(self._acquire(on_wait=self._heard))
            except BaseException as exc:  # noqa: BLE001 - handed to acquire(), which raises it
                early.set_exception(exc)

        self._early = early
        threading.Thread(target=attempt, name="claim-acquire", daemon=True).start()

    def _heard(self, others: tuple[Claim, ...]) -> None:
        self._early_waits = others

    def release_soon(self) -> None:
        """Begin taking the claims back on a thread of their own, for a run whose release is over
        (its tags written or refused, no GitOps step to come): what the run still does — the
        attestation, the record — goes on beside the round trips. The context's exit waits for it."""
        if self._pushed and self._releasing is None:
            self._releasing = threading.Thread(target=self.release, name="claim-release", daemon=True)
            self._releasing.start()

    def acquire(self, *, on_wait: Callable[[tuple[Claim, ...]], None] | None = None) -> str | None:
        """None once this run holds the release; else why not (another run's claim outlived the wait).
        ``on_wait`` hears, once, that this run waits and for whom."""
        if (early := self._early) is None:
            return self._acquire(on_wait=on_wait)
        told = False
        while True:  # the attempt begun early: its answer, and (once) whom it waits for
            try:
                answer = early.result(timeout=0.05)
                self._early = None
                return answer
            except FutureTimeout:
                if self._early_waits and not told and on_wait is not None:
                    on_wait(self._early_waits)
                    told = True

    def _acquire(self, *, on_wait: Callable[[tuple[Claim, ...]], None] | None) -> str | None:
        give_up = time.monotonic() + self._wait
        seen: dict[str, Claim] = {}
        while True:
            self._push()
            others = self._others()
            if not others:
                self.waited = tuple(seen.values())
                if self.tidying is None and (due := [r for r, tags in self._listed.items() if claim_tidy.due(tags)]):
                    # A run that builds nothing: the tags its claim just listed say whether a tidy is due.
                    self.tidying = claim_tidy.start(self._client, due, listed=self._listed)
                return None
            if not seen and on_wait is not None:
                on_wait(others)
            seen.update((c.run_id, c) for c in others)
            self._take_back_all()
            if time.monotonic() >= give_up or self._stopping.is_set():
                names = ", ".join(sorted({c.describe() for c in others}))
                return (f"another run is releasing {self._tag} at the same time: {names}; "
                        f"waited {self._wait:g}s, nothing was tagged")
            self._sleep(random.uniform(0.5, 2.0))  # random: two runs that saw each other do not meet again

    def release(self) -> None:
        """Take this run's claims back (their tags point at ENDED), once an attempt begun early has ended."""
        if (early := self._early) is not None:
            self._stopping.set()
            try:
                early.exception()  # waits; its claims, if it pushed any, are deleted below
            except BaseException:  # noqa: BLE001 - an interrupt while waiting: delete what is there
                pass
        self._take_back_all()

    def _take_back_all(self) -> None:
        pushed, self._pushed = self._pushed, {}
        concurrently.each(lambda item: self._take_back(item[0], *item[1]), list(pushed.items()), name="claim")

    def _take_back(self, repository: str, tag: str, digest: str) -> None:
        try:
            point_at_ended(self._client, repository, tag)
        except OperationError:
            try:  # a registry that takes no such index: the claim itself goes, with its tag
                self._client.delete_manifest(f"{repository}@{digest}")
            except OperationError:
                pass  # left behind: other runs ignore it once CLAIM_TTL_SECONDS have passed

    def tidy_soon(self) -> threading.Thread:
        """Tidy this run's repositories (registry/claim_tidy.py) on a thread of its own (returned),
        for a run whose builds have begun: they hide its round trips. Once a run."""
        if self.tidying is None:
            self.tidying = claim_tidy.start(self._client, self._repositories)
        return self.tidying

    def _push(self) -> None:
        document = claim_document(self._tag, self._run_id, now=self._clock())
        self._attempts += 1
        tag = claim_tag(self._tag, self._run_id, attempt=self._attempts)

        def put(repository: str) -> None:  # noted at once: a claim pushed beside one that failed is taken back too
            self._pushed[repository] = (tag, self._client.put_manifest(f"{repository}:{tag}", document, INDEX_TYPE))

        # Every repository at once, here and below: one round trip each (~5-15 ms; in sequence they
        # were a third of a reused release's tag step, issue #20).
        concurrently.each(put, self._repositories, name="claim")

    def _others(self) -> tuple[Claim, ...]:
        prefix = f"{PREFIX}{release_key(self._tag)}-"
        own = f"{prefix}{self._run_id}-"  # this run's attempts

        def found_in(repository: str) -> list[Claim]:
            listed = self._listed[repository] = self._client.list_tags(repository)  # for the tidy too (_acquire)
            tags = [t for t in listed if t.startswith(prefix) and not t.startswith(own)]
            # Read at once: a tag released many times holds as many ended claims (one HEAD each).
            read = concurrently.each(lambda tag: self._read(repository, tag), tags, name="claim-read", limit=8)
            return [claim for claim in read if claim is not None]

        found = [claim for claims in concurrently.each(found_in, self._repositories, name="claim") for claim in claims]
        return live_claims(found, own_run=self._run_id, now=self._clock())

    def _read(self, repository: str, tag: str) -> Claim | None:
        found = read_claim(self._client, repository, tag)  # None, or at ENDED: taken back (or tidied)
        return found[1] if found is not None else None

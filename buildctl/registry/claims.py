"""Release claims: one run at a time releases REPO:TAG (issue #23, two runs with the same tag).

The Distribution API has no compare-and-swap on tags — a manifest PUT replaces whatever the tag
held — so two runs with the same release tag (a re-queued CI job beside the original) could both
read "absent" in tagging.decide, both write the tag and both commit to Git, and the one that
wrote first would exit 0 having released what the tag no longer resolves to.

A claim is a tiny empty OCI index of the run's own (its run id and time in annotations, so its
digest is unique), pushed to every service's repository under ``buildctl-claim-<key>-<run>``. A
run holds the release once, after pushing its claims, the tag lists show no other live claim for
the same release tag. Two runs cannot both see that: each pushed before it listed, so whichever
listed later sees the other's claim. When both see each other, both take their claims back and
try again after a random pause; a run that still finds another claim when its wait is over stops
with nothing tagged. One left by a run that died is ignored after CLAIM_TTL_SECONDS.

A claim is taken back by pointing its tag at ENDED, one document for every run (issue #20):
a manifest PUT costs the same in any repository, while Distribution's delete by digest reads
every tag of the repository to find the ones to remove (40-120 ms in one of 2,300 tags, and it
grows with every release). The claim's own manifest is left untagged, as a moved tag leaves
its old manifest, for the registry's garbage collection or retention rules. Since every ended
claim is the same manifest, one delete by its digest removes all their tags: a run that builds
does that beside its builds (``tidy_soon``) once a repository holds TIDY_AT of them.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from buildctl import concurrently, jsonsafe
from buildctl.errors import OperationError, UsageError
from buildctl.registry.client import RegistryClient
from buildctl.registry.wire import sha256_digest

PREFIX = "buildctl-claim-"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
TAG_KEY, RUN_KEY, ENDED_KEY = "org.buildctl.claim.tag", "org.buildctl.claim.run", "org.buildctl.claim.ended"
CREATED_KEY = "org.opencontainers.image.created"
CLAIM_TTL_SECONDS = 15 * 60  # longer than any tag + sign + GitOps step; a dead run blocks no longer
WAIT_SECONDS = 180.0  # how long a run waits for another run's release of the same tag to end
WAIT_VARIABLE = "BUILDCTL_CLAIM_WAIT_SECONDS"
ENDED = json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [], "annotations": {ENDED_KEY: "true"}},
                   sort_keys=True).encode()  # no run, no time: not a claim (parse_claim), the same bytes everywhere
ENDED_DIGEST = sha256_digest(ENDED)
TIDY_AT = 16  # ended claims' tags a repository may hold before a run that builds removes them


@dataclass(frozen=True)
class Claim:
    """A claim as read from the registry."""

    repository: str
    tag: str  # buildctl-claim-<key>-<run>
    run_id: str
    created: float  # seconds since the epoch, as the claiming run's clock said
    ended: bool = False  # the run is over (as buildctl before ENDED marked a claim it could not delete)

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.created, timezone.utc).strftime("%H:%M:%S UTC")
        return f"run {self.run_id} (claimed {when})"


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


def release_key(release_tag: str) -> str:
    """16 hex digits naming the release tag inside a claim tag (tags are at most 128 characters)."""
    return hashlib.sha256(release_tag.encode()).hexdigest()[:16]


def claim_tag(release_tag: str, run_id: str, *, attempt: int = 1) -> str:
    """The tag of one attempt's claim: a fresh tag each attempt, never one that pointed at ENDED —
    a tidy's delete untags whatever points at ENDED when it looked, even a tag re-pointed since."""
    return f"{PREFIX}{release_key(release_tag)}-{run_id}-{attempt}"


def claim_document(release_tag: str, run_id: str, *, now: float) -> bytes:
    created = datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds")
    annotations = {TAG_KEY: release_tag, RUN_KEY: run_id, CREATED_KEY: created}
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [],
                       "annotations": annotations}, sort_keys=True).encode()


def parse_claim(repository: str, tag: str, content: bytes) -> Claim | None:
    """The claim ``content`` records, or None when it is not one of ours (then it is no claim)."""
    try:
        annotations = jsonsafe.loads(content).get("annotations") or {}
        created = datetime.fromisoformat(annotations[CREATED_KEY]).timestamp()
        run_id = str(annotations[RUN_KEY])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return Claim(repository, tag, run_id, created, ended=annotations.get(ENDED_KEY) == "true")


def live_claims(claims: Sequence[Claim], *, own_run: str, now: float,
                ttl: float = CLAIM_TTL_SECONDS) -> tuple[Claim, ...]:
    """The other runs' claims that still hold: not this run's, not ended, not older than ``ttl``."""
    return tuple(c for c in claims if c.run_id != own_run and not c.ended and now - c.created < ttl)


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
        self._counted: dict[str, int] = {}  # repository -> its claim tags, as the last listing found them
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
        if self.tidying is not None:  # begun beside the builds it is long done; after acquire, ~0.1 s
            self.tidying.join()  # once in TIDY_AT runs: the registry session outlives it

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
                if self.tidying is None and (due := [r for r, n in self._counted.items() if n >= TIDY_AT]):
                    self._start_tidy(self._delete_ended, due)  # a run that built nothing: from its own listing
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
            self._client.put_manifest(f"{repository}:{tag}", ENDED, INDEX_TYPE)
        except OperationError:
            try:  # a registry that takes no such index: the claim itself goes, with its tag
                self._client.delete_manifest(f"{repository}@{digest}")
            except OperationError:
                pass  # left behind: other runs ignore it once CLAIM_TTL_SECONDS have passed

    def tidy_soon(self) -> threading.Thread:
        """On a thread of its own (returned), for a run whose builds have begun (they hide its round
        trips): in each repository holding TIDY_AT claim tags or more, delete ENDED by its digest,
        which takes every tag of it along. A run that builds nothing tidies from the tag lists its
        claim read instead (``_acquire``). Housekeeping: the context's exit waits for it, but its
        failures are nobody's, and a tidy refused or racing another is done by a later run."""
        return self.tidying or self._start_tidy(self._tidy, self._repositories)

    def _start_tidy(self, tidy: Callable[[str], None], repositories: Sequence[str]) -> threading.Thread:
        self.tidying = threading.Thread(target=lambda: concurrently.each(tidy, repositories, name="claim-tidy"),
                                        name="claim-tidy", daemon=True)
        self.tidying.start()
        return self.tidying

    def _tidy(self, repository: str) -> None:
        try:
            due = sum(t.startswith(PREFIX) for t in self._client.list_tags(repository)) >= TIDY_AT
        except OperationError:
            return
        if due:
            self._delete_ended(repository)

    def _delete_ended(self, repository: str) -> None:
        try:
            self._client.delete_manifest(f"{repository}@{ENDED_DIGEST}")
        except OperationError:
            pass  # housekeeping: a later run tidies instead

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
            listed = self._client.list_tags(repository)
            self._counted[repository] = sum(t.startswith(PREFIX) for t in listed)  # for the tidy (_acquire)
            tags = [t for t in listed if t.startswith(prefix) and not t.startswith(own)]
            # Read at once: a tag released many times holds as many ended claims (one HEAD each).
            read = concurrently.each(lambda tag: self._read(repository, tag), tags, name="claim-read", limit=8)
            return [claim for claim in read if claim is not None]

        found = [claim for claims in concurrently.each(found_in, self._repositories, name="claim") for claim in claims]
        return live_claims(found, own_run=self._run_id, now=self._clock())

    def _read(self, repository: str, tag: str) -> Claim | None:
        head = self._client.head_manifest(f"{repository}:{tag}")
        if head is None or head.digest == ENDED_DIGEST:  # taken back (or tidied) before or since the listing
            return None
        try:
            manifest = self._client.get_manifest(f"{repository}@{head.digest}")
        except OperationError:
            if self._client.head_manifest(f"{repository}@{head.digest}") is None:
                return None
            raise
        return parse_claim(repository, tag, manifest.content)


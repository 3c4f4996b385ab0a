"""Release claims (registry/claims.py): the pure rules, then the protocol against the stack's real
registry — one holder at a time however many runs contend, a wait that ends with a clear loss, and
nothing left behind."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from buildctl import concurrently
from buildctl.errors import OperationError
from buildctl.registry import claim_docs, claim_tidy, claims
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import RetryPolicy
from tests.helpers.claims import claim_tags, held_claim_tags
from tests.helpers.cli import REGISTRY
from tests.helpers.registry import FrontServer


def test_a_claim_tag_is_a_valid_tag_whatever_the_release_tag_is() -> None:
    tag = claims.claim_tag("v" + "9" * 127, "0123abcd")
    assert len(tag) <= 128 and tag.startswith(claims.PREFIX) and tag.endswith("-0123abcd-1")
    assert claims.claim_tag("a", "r") != claims.claim_tag("b", "r")


def test_claims_round_trip_and_only_live_other_claims_count() -> None:
    now = 1_800_000_000.0
    document = claims.claim_document("v1", "run-a", now=now)
    claim = claim_docs.parse_claim("reg/x", "t", document)
    assert claim is not None and (claim.run_id, claim.created, claim.ended) == ("run-a", now, False)
    # As buildctl before claim_docs.ENDED marked a claim it could not delete: a document of its own.
    older = json.loads(claims.claim_document("v1", "run-b", now=now))
    older["annotations"][claim_docs.ENDED_KEY] = "true"
    ended = claim_docs.parse_claim("reg/x", "t", json.dumps(older).encode())
    stale = claim_docs.parse_claim("reg/x", "t", claims.claim_document("v1", "run-c", now=now - 16 * 60))
    live = claims.live_claims([claim, ended, stale], own_run="run-z", now=now)
    assert live == (claim,)
    assert claims.live_claims([claim], own_run="run-a", now=now) == ()
    assert claim_docs.parse_claim("reg/x", "t", b'{"schemaVersion": 2, "manifests": []}') is None
    assert claim_docs.parse_claim("reg/x", "t", claim_docs.ENDED) is None  # what a claim's tag points at once it ended


engine = pytest.mark.engine


@engine
def test_a_second_run_waits_for_the_holder_and_gets_the_release_once_it_ends() -> None:
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        holder = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="aaaa0001")
        assert holder.acquire() is None
        waiter = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="bbbb0002", wait_seconds=1.5)
        started = time.monotonic()
        lost = waiter.acquire()
        assert lost is not None and time.monotonic() - started >= 1.5
        assert lost.startswith(f"another run is releasing {tag} at the same time: run aaaa0001 (claimed ")
        assert held_claim_tags(client, repository) == [claims.claim_tag(tag, "aaaa0001")]  # the loser took its own back
        holder.release()
        assert held_claim_tags(client, repository) == []
        assert waiter.acquire() is None and waiter.waited == ()
        waiter.release()
        assert held_claim_tags(client, repository) == []


@engine
def test_a_claim_older_than_its_lifetime_holds_nothing() -> None:
    """A run that died leaves its claim behind: after CLAIM_TTL_SECONDS it no longer counts."""
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        old = claims.claim_document(tag, "dead0001", now=time.time() - claim_docs.CLAIM_TTL_SECONDS - 5)
        client.put_manifest(f"{repository}:{claims.claim_tag(tag, 'dead0001')}", old, claim_docs.INDEX_TYPE)
        with claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="live0002",
                                 wait_seconds=0) as fresh:
            assert fresh.acquire() is None
        # A claim of another release tag in the same repository is no obstacle either.
        other = claims.claim_document("v2", "othr0003", now=time.time())
        client.put_manifest(f"{repository}:{claims.claim_tag('v2', 'othr0003')}", other, claim_docs.INDEX_TYPE)
        with claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="live0004",
                                 wait_seconds=0) as fresh:
            assert fresh.acquire() is None


@engine
def test_contending_runs_hold_the_release_one_at_a_time() -> None:
    """Six runs on two repositories, each acquiring and releasing three times as fast as it can: at
    no moment do two hold the release, and every one gets it."""
    repositories = [f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}" for _ in range(2)]
    holders: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    acquired: list[str] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def contend(run_id: str) -> None:
        try:
            with RegistryClient() as client:
                for _ in range(3):
                    claim = claims.ReleaseClaim(client, repositories=repositories, tag="v1", run_id=run_id,
                                                wait_seconds=120)
                    assert claim.acquire() is None
                    with lock:
                        holders.append(run_id)
                        if len(holders) > 1:
                            overlaps.append(tuple(holders))
                        acquired.append(run_id)
                    time.sleep(0.05)
                    with lock:
                        holders.remove(run_id)
                    claim.release()
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=contend, args=(f"run{i:05d}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == [] and overlaps == []
    assert sorted(acquired) == sorted(f"run{i:05d}" for i in range(6) for _ in range(3))
    with RegistryClient() as client:
        assert all(held_claim_tags(client, r) == [] for r in repositories)


@engine
def test_list_tags_follows_the_registrys_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        assert client.list_tags(repository) == ()  # no such repository yet
        names = [f"t{i:03d}" for i in range(7)]
        for name in names:
            client.put_manifest(f"{repository}:{name}", claims.claim_document(name, name, now=time.time()),
                                claim_docs.INDEX_TYPE)
        monkeypatch.setattr("buildctl.registry.client.TAGS_PAGE", 3)  # 7 tags: three pages
        assert sorted(client.list_tags(repository)) == names


@engine
def test_a_claim_pushed_beside_one_that_failed_is_taken_back() -> None:
    """The claims are pushed to every repository at once: one that lands while another fails is
    still noted, so the run's end takes it back (else it would hold the release for its lifetime)."""
    good = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    refused = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}-"  # a path component may not end in "-"
    with RegistryClient() as client:
        claim = claims.ReleaseClaim(client, repositories=[good, refused], tag="v1", run_id="cccc0003")
        with pytest.raises(OperationError) as failure:
            claim.acquire()
        assert held_claim_tags(client, good) == [claims.claim_tag("v1", "cccc0003")], failure.value
        claim.release()
        assert held_claim_tags(client, good) == []


@engine
def test_an_attempt_begun_early_is_the_one_acquire_answers_with() -> None:
    """acquire_soon (the builds ended, the last checks still run) pushes and lists at once; acquire
    then answers with that attempt, and release takes its claims back."""
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        with claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="soon0001") as early:
            early.acquire_soon()
            deadline = time.monotonic() + 10
            while not held_claim_tags(client, repository) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert held_claim_tags(client, repository) == [claims.claim_tag(tag, "soon0001")]  # before acquire()
            assert early.acquire() is None and early.waited == ()
        assert held_claim_tags(client, repository) == []


@engine
def test_an_early_attempt_waiting_for_another_run_tells_whom_and_stops_when_released() -> None:
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        holder = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="hold0001")
        assert holder.acquire() is None
        waiter = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="wait0002", wait_seconds=60)
        waiter.acquire_soon()
        time.sleep(0.5)
        heard: list[tuple[claims.Claim, ...]] = []
        threading.Timer(1.0, holder.release).start()
        assert waiter.acquire(on_wait=heard.append) is None  # once the holder let go
        assert [[c.run_id for c in others] for others in heard] == [["hold0001"]]
        assert [c.run_id for c in waiter.waited] == ["hold0001"]
        waiter.release()
        # A gate that fails: the early attempt, waiting for a holder that stays, stops at release.
        assert holder.acquire() is None
        gated = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="gate0003", wait_seconds=60)
        gated.acquire_soon()
        time.sleep(0.5)
        started = time.monotonic()
        gated.release()
        assert time.monotonic() - started < 5
        assert held_claim_tags(client, repository) == [claims.claim_tag(tag, "hold0001", attempt=2)]  # its second
        holder.release()


@engine
def test_a_claim_ends_as_a_tag_of_the_ended_claim_which_no_run_waits_for() -> None:
    """Taking a claim back is one PUT in any repository (Distribution's delete by digest reads every
    tag of it): the tag points at claim_docs.ENDED, which is no claim, so the next run with the same
    release tag holds the release at once."""
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        with claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="done0001") as first:
            assert first.acquire() is None
            assert held_claim_tags(client, repository) == [claims.claim_tag(tag, "done0001")]
        head = client.head_manifest(f"{repository}:{claims.claim_tag(tag, 'done0001')}")
        assert head is not None and head.digest == claim_docs.ENDED_DIGEST
        with claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="next0002", wait_seconds=0) as nxt:
            assert nxt.acquire() is None and nxt.waited == ()
        assert claim_tags(client, repository) == [claims.claim_tag(tag, "done0001"), claims.claim_tag(tag, "next0002")]
        assert held_claim_tags(client, repository) == []


def _ended_claim(client: RegistryClient, repository: str, n: int) -> None:
    """What an earlier run's claim is once it ended."""
    client.put_manifest(f"{repository}:{claims.claim_tag(f'v{n}', f'end{n:05d}')}", claim_docs.ENDED, claim_docs.INDEX_TYPE)


def test_a_tidy_is_due_from_this_buildctls_claim_tags_only() -> None:
    ours = [claims.claim_tag(f"v{n}", "abcd0001", attempt=n) for n in range(claim_tidy.TIDY_AT - 1)]
    older = [f"{claims.PREFIX}{claims.release_key('v')}-abcd{n:04d}" for n in range(40)]  # no attempt: left alone
    assert not claim_tidy.due([*ours, *older, "latest", "buildctl-claimx"])
    assert claim_tidy.due([*ours, claims.claim_tag("w", "abcd0002")])


@engine
def test_tidying_removes_the_ended_claims_tags_at_once_and_leaves_a_held_one() -> None:
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        for n in range(claim_tidy.TIDY_AT - 1):
            _ended_claim(client, repository, n)
        holder = claims.ReleaseClaim(client, repositories=[repository], tag="held", run_id="hold0009")
        assert holder.acquire() is None

        def tidy(run_id: str) -> None:  # a run whose builds began
            tidier = claims.ReleaseClaim(client, repositories=[repository], tag="other", run_id=run_id)
            assert tidier.tidy_soon() is tidier.tidy_soon()  # once a run
            tidier.tidy_soon().join(timeout=60)

        tidy("tidy0010")
        assert len(claim_tags(client, repository)) == claim_tidy.TIDY_AT  # one held, fewer ended than TIDY_AT
        _ended_claim(client, repository, 99)
        tidy("tidy0011")
        assert claim_tags(client, repository) == [claims.claim_tag("held", "hold0009")]  # one delete took the rest
        assert held_claim_tags(client, repository) == [claims.claim_tag("held", "hold0009")]
        holder.release()
        _ended_claim(client, repository, 100)  # ENDED is pushed again after its delete: claims end as before
        assert held_claim_tags(client, repository) == [] and len(claim_tags(client, repository)) == 2


@engine
def test_a_claim_its_run_never_took_back_is_ended_past_its_lifetime_and_goes_with_the_others() -> None:
    """A run killed while it held its claim leaves it pointing at its own document: past
    CLAIM_TTL_SECONDS the tidy points it at ENDED, so it goes too. Younger ones, and tags of an
    older buildctl (no attempt in the name), stay."""
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        long_ago = time.time() - claim_tidy.ABANDONED_SECONDS - 60
        for n in range(claim_tidy.TIDY_AT):
            client.put_manifest(f"{repository}:{claims.claim_tag(f'v{n}', f'dead{n:04d}')}",
                                claims.claim_document(f"v{n}", f"dead{n:04d}", now=long_ago), claim_docs.INDEX_TYPE)
        young = claims.claim_tag("young", "live0001")
        client.put_manifest(f"{repository}:{young}", claims.claim_document("young", "live0001", now=time.time()),
                            claim_docs.INDEX_TYPE)
        older = f"{claims.PREFIX}{claims.release_key('x')}-0ld00001"  # an older buildctl's, ended its way
        document = json.loads(claims.claim_document("x", "0ld00001", now=long_ago))
        document["annotations"][claim_docs.ENDED_KEY] = "true"
        client.put_manifest(f"{repository}:{older}", json.dumps(document).encode(), claim_docs.INDEX_TYPE)
        assert claim_tidy.tidy(client, repository, None, now=time.time())
        assert claim_tags(client, repository) == sorted([young, older])
        held = claim_docs.parse_claim(repository, young, client.get_manifest(f"{repository}:{young}").content)
        assert held is not None and held.run_id == "live0001"  # still its claim


@engine
def test_a_run_that_builds_nothing_tidies_from_the_tags_its_claim_listed() -> None:
    """No builds to hide a tidy behind (every service reused): the listing the claim makes anyway
    says whether one is due, and the ended claims go beside the rest of the run."""
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        for n in range(claim_tidy.TIDY_AT - 2):
            _ended_claim(client, repository, n)
        with claims.ReleaseClaim(client, repositories=[repository], tag="few", run_id="few00001") as few:
            assert few.acquire() is None
            assert few.tidying is None  # TIDY_AT - 1 claim tags, its own counted: not due
        _ended_claim(client, repository, 98)
        with claims.ReleaseClaim(client, repositories=[repository], tag="now", run_id="reus0001") as claim:
            assert claim.acquire() is None
            assert claim.tidying is not None  # TIDY_AT ended, and its own
            claim.tidying.join(timeout=60)
            assert claim_tags(client, repository) == [claims.claim_tag("now", "reus0001")]  # its own, held
        assert held_claim_tags(client, repository) == []


@engine
def test_each_attempt_claims_under_a_fresh_tag() -> None:
    """A run that waited takes its claim back (its tag -> ENDED) and claims again under another
    tag: a tidy's delete untags whatever pointed at ENDED when it looked, so a tag re-pointed at a
    live claim since would lose it (two runs would then both hold the release)."""
    repository, tag = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}", "v1"
    with RegistryClient() as client:
        holder = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="hold0001")
        assert holder.acquire() is None
        waiter = claims.ReleaseClaim(client, repositories=[repository], tag=tag, run_id="wait0002", wait_seconds=30,
                                     sleep=lambda _: holder.release())
        assert waiter.acquire() is None and [c.run_id for c in waiter.waited] == ["hold0001"]
        first, second = (claims.claim_tag(tag, "wait0002", attempt=n) for n in (1, 2))
        assert held_claim_tags(client, repository) == [second]
        head = client.head_manifest(f"{repository}:{first}")
        assert head is not None and head.digest == claim_docs.ENDED_DIGEST
        waiter.release()


@engine
def test_a_tidy_beside_a_retrying_run_never_lets_two_runs_hold_the_release() -> None:
    """The interleaving a review found: C waits for A; A ends and B's builds begin, so B tidies;
    C claims again while B's delete (tens of ms in a repository of 2,000 tags) runs; C holds the
    release, and D, coming next, must wait for C."""
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    filler = json.dumps({"schemaVersion": 2, "mediaType": claim_docs.INDEX_TYPE, "manifests": []}).encode()
    with RegistryClient() as client:
        concurrently.each(lambda i: client.put_manifest(f"{repository}:filler-{i:04d}", filler, claim_docs.INDEX_TYPE),
                          list(range(2000)), name="filler", limit=16)
        for trial in range(6):
            for n in range(claim_tidy.TIDY_AT):  # enough ended claims for B to tidy
                client.put_manifest(f"{repository}:{claims.claim_tag(f'old{n}', f'old{trial}{n:03d}')}",
                                    claim_docs.ENDED, claim_docs.INDEX_TYPE)
            a = claims.ReleaseClaim(client, repositories=[repository], tag="v1", run_id=f"a{trial}")
            assert a.acquire() is None
            b = claims.ReleaseClaim(client, repositories=[repository], tag="v2", run_id=f"b{trial}")
            tidying: list[threading.Thread] = []

            def pause(_: float, delay: float = 0.02 + 0.005 * trial) -> None:
                a.release()
                tidying.append(b.tidy_soon())
                time.sleep(delay)  # C claims again while B's delete runs

            c = claims.ReleaseClaim(client, repositories=[repository], tag="v1", run_id=f"c{trial}", sleep=pause,
                                    wait_seconds=30)
            assert c.acquire() is None
            for thread in tidying:
                thread.join(timeout=60)
            d = claims.ReleaseClaim(client, repositories=[repository], tag="v1", run_id=f"d{trial}", wait_seconds=0)
            assert d.acquire() is not None, f"trial {trial}: two runs held the release"
            d.release()
            c.release()


@engine
def test_a_tidier_whose_clock_runs_fast_ends_no_claim_another_run_counts() -> None:
    """A claim past CLAIM_TTL_SECONDS by the tidier's clock (16 minutes fast) is still held: only a
    day-old claim is ended by a tidy, so a second run with a right clock still waits for it."""
    repository = f"{REGISTRY}/buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        holder = claims.ReleaseClaim(client, repositories=[repository], tag="v1", run_id="hold0001")
        assert holder.acquire() is None
        for n in range(claim_tidy.TIDY_AT):  # ended since: the holder's own tidy (if any) saw none of them
            _ended_claim(client, repository, n)
        assert claim_tidy.tidy(client, repository, None, now=time.time() + claim_docs.CLAIM_TTL_SECONDS + 60)
        assert held_claim_tags(client, repository) == [claims.claim_tag("v1", "hold0001")]
        second = claims.ReleaseClaim(client, repositories=[repository], tag="v1", run_id="next0002", wait_seconds=0)
        assert second.acquire() is not None  # it waits for the holder, as without the tidy
        holder.release()


@engine
def test_a_registry_that_refuses_the_delete_is_not_tidied_again_for_a_day(tmp_path, monkeypatch) -> None:
    """Distribution's default answers a delete 405: ended tags then only gather, and a HEAD of each
    on every run would grow without end. One refusal is remembered (the user's cache) for a day."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = f"buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        for n in range(claim_tidy.TIDY_AT):
            _ended_claim(client, f"{REGISTRY}/{path}", n)
    front = FrontServer(lambda n, request: (405, {}) if request.startswith("DELETE ") else None)
    try:
        with RegistryClient() as client:
            repository = f"{front.address}/{path}"
            assert not claim_tidy.tidy(client, repository, None, now=time.time())
            asked = front.count
            assert asked >= claim_tidy.TIDY_AT + 2  # the listing, a HEAD each, the refused delete
            assert not claim_tidy.tidy(client, repository, None, now=time.time())
            assert front.count == asked  # not one request more
            assert not claim_tidy.tidy(client, repository, None, now=time.time() + claim_tidy.ABANDONED_SECONDS + 1)
            assert front.count > asked  # a day later it tries again
    finally:
        front.close()
    with RegistryClient() as client:
        assert len(claim_tags(client, f"{REGISTRY}/{path}")) == claim_tidy.TIDY_AT  # nothing deleted


@engine
def test_one_tags_trouble_does_not_end_the_tidy(tmp_path, monkeypatch) -> None:
    """A HEAD answered 429 (a registry's rate limit among many HEADs) counts that tag as not ended;
    the others are still counted and deleted."""
    path = f"buildctl-claims/{uuid.uuid4().hex[:8]}"
    with RegistryClient() as client:
        for n in range(claim_tidy.TIDY_AT + 1):
            _ended_claim(client, f"{REGISTRY}/{path}", n)
        troubled = claims.claim_tag("v0", "end00000")
    front = FrontServer(lambda n, request: (429, {}) if request.endswith(f"/manifests/{troubled}") else None)
    try:
        with RegistryClient(retry=RetryPolicy(attempts=1)) as client:
            assert claim_tidy.tidy(client, f"{front.address}/{path}", None, now=time.time())
    finally:
        front.close()
    with RegistryClient() as client:
        assert claim_tags(client, f"{REGISTRY}/{path}") == []  # its tag pointed at ENDED all along: gone too

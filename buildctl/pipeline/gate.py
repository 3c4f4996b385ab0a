"""Step 5: the gate and the tag step, shared by a release built here (pipeline/release.py) and one
merged from native agents (pipeline/merge.py): every release tag, or none; then the staging tags go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from buildctl import concurrently, interrupts
from buildctl.engine import docker as engine
from buildctl.errors import OperationError
from buildctl.model import Phase, Progress, ProgressFn
from buildctl.pipeline import tagging
from buildctl.pipeline.results import ServiceOutcome, TagFailure, TagStatus
from buildctl.registry.claim_docs import point_at_ended
from buildctl.registry.claims import ReleaseClaim
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import TagDeletion

TaggingHook = Callable[[tuple[ServiceOutcome, ...]], None]
CLAIM_HINT = ("the other run's release decides what the tag holds; rerun once it has ended (this run's "
              "images then count as identical, or as other images, as for any existing tag)")


def gate_and_tag(outcomes: tuple[ServiceOutcome, ...], client: RegistryClient, *, notify: ProgressFn, retag: bool,
                 claim: ReleaseClaim | None = None, on_tagging: TaggingHook | None = None,
                 when_released: TaggingHook | None = None,
                 ) -> tuple[tuple[ServiceOutcome, ...], str | None, TagFailure | None, str | None]:
    """The gate and the tag step, shared by a release built here and one merged from native agents
    (pipeline/merge.py): every release tag, or none; then the staging tags go. Returns the outcomes,
    the refusal, the tag failure and the refusal's hint. ``on_tagging`` is called with the outcomes
    (each tag decided, released_digest known) once the gate passed and no tag was refused, just
    before the tags are written; ``when_released`` once every tag was written, beside the staging
    tags' round trips (they were the last ones of a release, issue #20)."""
    refused = tag_failure = refusal_hint = None
    # Another run releasing the same tag right now (a re-queued CI job): wait for it to end, so
    # that what decide reads cannot change before this run's tags are written (registry/claims.py).
    def waiting(_: object) -> None:
        for outcome in outcomes:
            notify(outcome.service, "", Progress(Phase.WAITING))

    if all(o.ok for o in outcomes) and claim is not None and (refused := claim.acquire(on_wait=waiting)) is not None:
        refusal_hint = CLAIM_HINT
    elif all(o.ok for o in outcomes):
        # The gate passed: only now does the release tag appear, for every service — unless a
        # tag already holds other images (immutable tags, pipeline/tagging.py): then for none.
        outcomes = _each(lambda o: tagging.decide(o, client, retag=retag), outcomes)
        refused = tagging.refusal(outcomes)

        def tag(outcome: ServiceOutcome) -> ServiceOutcome:
            if outcome.tag_status is not TagStatus.IDENTICAL:  # identical: the tag stays where it is
                try:
                    engine.tag_index(source=f"{outcome.repository}@{outcome.build.index_digest}",
                                     tag_ref=outcome.release_ref, client=client)
                except OperationError as exc:  # after its retries: for good (a quota, a lock, a policy)
                    return replace(outcome, tag_error=exc.message)
            reused = f" ({outcome.build.outcome})" if outcome.build.reused_from else ""
            notify(outcome.service, "", Progress(Phase.TAGGED, detail=reused))
            return replace(outcome, tagged=True)

        if refused is None:
            if on_tagging is not None:
                on_tagging(outcomes)
            with interrupts.critical():  # all services tagged, or (on an error) none reported as released
                outcomes = _each(tag, outcomes)
                if any(o.tag_error is not None for o in outcomes):
                    outcomes = _each(lambda o: _undo_tag(o, client), outcomes)
                    tag_failure = tagging.failure(outcomes)
                # Still held: a Ctrl-C once the tags are written waits for their staging tags to go too.
                released = tag_failure is None and all(o.tagged for o in outcomes)
                gone = _staging_gone(outcomes, client, beside=when_released if released else None)
                return gone, refused, tag_failure, refusal_hint
    return _staging_gone(outcomes, client), refused, tag_failure, refusal_hint


def _staging_gone(outcomes: tuple[ServiceOutcome, ...], client: RegistryClient, *,
                  beside: TaggingHook | None = None) -> tuple[ServiceOutcome, ...]:
    """Every staging tag removed (or parked); ``beside(outcomes)`` meanwhile."""
    steps = [lambda: _each(lambda o: _clean_staging(o, client), outcomes)]
    if beside is not None:
        steps.append(lambda: beside(outcomes))
    return concurrently.each(lambda step: step(), steps, name="released")[0]


def _undo_tag(outcome: ServiceOutcome, client: RegistryClient) -> ServiceOutcome:
    """Another service's tag write failed: take back what this run did to ``outcome``'s tag, so no
    tag says "released" for a release that did not happen. A tag this run created is deleted where
    the registry deletes tags alone (never its manifest: on Distribution 2.x that would delete by
    digest, and with it every other tag of the index); one --retag moved goes back."""
    deletion, restored = None, True
    try:
        if outcome.tagged and outcome.tag_status is TagStatus.TAGGED:
            deletion = client.delete_tag(outcome.release_ref)
        elif outcome.tagged and outcome.tag_status is TagStatus.RETAGGED and outcome.previous_digest:
            engine.tag_index(source=f"{outcome.repository}@{outcome.previous_digest}", tag_ref=outcome.release_ref,
                             client=client)
    except OperationError:  # the registry that failed one write fails this one too: say what is left
        deletion, restored = TagDeletion.KEPT, False
    return replace(outcome, tagged=False, tag_left=tagging.aftermath(outcome, deletion, restored=restored))


def _each(fn: Callable[[ServiceOutcome], ServiceOutcome],
          outcomes: tuple[ServiceOutcome, ...]) -> tuple[ServiceOutcome, ...]:
    """``fn`` over every outcome at once: each call is a docker process (~0.1 s) or a registry
    round trip, so in sequence they add up."""
    return tuple(concurrently.each(fn, outcomes, name="release"))


def _clean_staging(outcome: ServiceOutcome, client: RegistryClient) -> ServiceOutcome:
    if not outcome.build.ok or outcome.build.reused_from:
        return outcome
    ref = f"{outcome.repository}:{outcome.build.staging_tag}"
    try:
        if (deletion := client.delete_tag(ref)) is not TagDeletion.KEPT:
            return replace(outcome, staging=deletion)
    except OperationError:  # after its retries: housekeeping, never a failed release (its tags are written)
        pass
    # Distribution 2.x deletes by digest only, which would take the release tag along: the staging
    # tag is pointed at the ended claim instead, whose one delete (registry/claim_tidy.py) removes
    # it with the ended claims' tags. Left as it was, a tag a build stayed forever.
    try:
        point_at_ended(client, outcome.repository, outcome.build.staging_tag)
    except OperationError:
        return replace(outcome, staging=TagDeletion.KEPT)
    return replace(outcome, staging=TagDeletion.PARKED)

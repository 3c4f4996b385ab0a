"""The release pipeline: binfmt -> builder -> parallel build -> verification -> gate -> tags.

`buildctl build` stops after the tags; `buildctl run` hands the released images to the GitOps
step. The release tag is written only after every service passed every check.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from buildctl import concurrently, interrupts
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtAction
from buildctl.errors import CommandError, OperationError
from buildctl.inspect import prefetch, shared_tables, verify
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.model import BuildOptions, Config, Phase, Progress, ProgressFn
from buildctl.pipeline import build
from buildctl.pipeline import plan as planning
from buildctl.pipeline import reuse, source_dates
from buildctl.pipeline import tagging
from buildctl.pipeline.builder_check import BuilderCheck, host_handlers, known_usable
from buildctl.pipeline.results import BuildResult, ReleaseOutcome, ServiceOutcome, TagFailure, TagStatus
from buildctl.pipeline.reuse import ReuseInputs
from buildctl.programs import Stop
from buildctl.registry.claims import ReleaseClaim
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import TagDeletion

T = TypeVar("T")
TaggingHook = Callable[[tuple[ServiceOutcome, ...]], None]
CLAIM_HINT = ("the other run's release decides what the tag holds; rerun once it has ended (this run's "
              "images then count as identical, or as other images, as for any existing tag)")


def build_release(config: Config, *, run_dir: Path, run_id: str, jobs: int | None = None,
                  options: BuildOptions | None = None, client: RegistryClient,
                  progress: ProgressFn | None = None, retag: bool = False,
                  claim: ReleaseClaim | None = None, reuse_from: ReuseInputs | None = None,
                  on_tagging: TaggingHook | None = None) -> ReleaseOutcome:
    """Steps 1-5 of a release. ``claim``: this run's claim on the release tag, acquired after the
    gate and held by the caller until its GitOps step has ended. ``reuse_from``: the base digests
    (and --rebuild, --nightly) to decide which services are reused instead of built (pipeline/reuse.py).
    ``on_tagging``: see gate_and_tag."""
    notify = progress or (lambda service, platform, state: None)
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[step] = round(now - clock, 3)
        clock = now

    shared = shared_tables.of_release(config, client)
    # The base images' layers, read while the builds run.
    warming = prefetch.started(config, client=client, shared=shared)
    platforms = config.all_platforms()
    side = ThreadPoolExecutor(max_workers=3, thread_name_prefix="side")
    asking = side.submit(engine.engine_info)  # `docker info` (~60 ms) beside the input digests
    # So are `buildx inspect` (0.15-0.2 s, mostly waiting on the builder) and the host's binfmt
    # handlers, from the moment one service is known to build; a release that builds nothing
    # never runs them (issue #20).
    inspecting = _Once(lambda: side.submit(builder.describe, config.builder))
    registering = _Once(lambda: side.submit(host_handlers, config, platforms, asking))

    def building() -> None:
        inspecting()
        registering()

    try:
        the_plan = planning.make_plan(config, run_id=run_id, options=options,
                                      commit_times=source_dates.commit_times(config, options))
        if reuse_from is None:  # everything builds
            building()
        decisions = {} if reuse_from is None else reuse.decide(the_plan, client=client, bases=reuse_from.bases,
                                                                rebuild=reuse_from.rebuild, on_build=building)
        the_plan = reuse.apply(the_plan, decisions, nightly=bool(reuse_from and reuse_from.nightly))
    finally:
        info = asking.result()  # its error (no daemon) first: it says more than a failed input digest
    lap("inputs")
    if reuse.builds_anything(the_plan, decisions):
        registering()  # a smoke command of a reused service needs the handlers too
        host = registering.result.result()
        lap("binfmt")
        # A handler registered just now changes what the builder reports (BuildKit looks for
        # emulators on every inspect): then an earlier answer is stale, and the builds wait for the
        # check, as on a builder not known to pass it. Otherwise they start beside it (pipeline/builder_check.py).
        fresh = not any(r.action is BinfmtAction.REGISTERED for r in host)
        check = BuilderCheck(config.builder, platforms=platforms, info=info, host=host,
                             read=inspecting.result if fresh else None)
        if not (fresh and known_usable(config.builder, platforms)):
            try:
                check.selected()
            except BaseException:
                warming.stop()
                raise
        lap("builder")
    else:  # every service reused, no smoke command to run under emulation: no handler, no builder needed
        check = None
    verifying: dict[str, Future[Verification]] = {}
    workers = max(1, min(len(the_plan.services), verify.MAX_IMAGE_WORKERS))
    # Each service is verified as soon as it is pushed, while the others still build: the checks
    # hide behind the slowest build instead of following it. Timings: "build" ends with the last
    # build, "verify" is what verification adds after it.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as checks:
        def start_verification(svc: planning.ServicePlan, res: BuildResult) -> None:
            notify(svc.name, "", Progress(Phase.VERIFYING))
            verifying[svc.name] = checks.submit(_check, svc, f"{svc.repository}@{res.index_digest}", client,
                                                replace(_verify_options(config, svc.name), shared=shared))

        reused = {svc.name: _reused(svc, decisions[svc.name]) for svc in the_plan.services
                  if svc.name in decisions and decisions[svc.name].reused}
        for svc in the_plan.services:
            if (res := reused.get(svc.name)) is not None:
                notify(svc.name, "", Progress(Phase.REUSED, detail=res.outcome.removeprefix("reused")))
        building = replace(the_plan, services=tuple(s for s in the_plan.services if s.name not in reused))
        side_work = threading.Event()

        def builds_started() -> None:
            """Once every build's process runs: the reused services' checks and the base tables'
            loading, Python work that holds the GIL and would delay spawning them (~20 ms, issue #20)."""
            if side_work.is_set():  # a second round of builds (the builder check stopped the first)
                return
            side_work.set()
            for svc in the_plan.services:
                if (res := reused.get(svc.name)) is not None:
                    start_verification(svc, res)
            if building.services:
                warming.builds_began(svc.repository for svc in building.services)

        try:
            def build_each(stop: Stop | None) -> list[BuildResult]:
                built = iter(build.build_all(building, run_dir=run_dir, jobs=jobs, progress=notify,
                                             on_built=start_verification, on_started=builds_started, stop=stop))
                return [reused.get(s.name) or _why(next(built), decisions.get(s.name)) for s in the_plan.services]

            results = build_each(check.stop if check else None)
            selected = check.selected() if check else reuse.no_builder(config.builder)
            handlers = check.handlers() if check else ()
            if check is not None and check.stopped:  # the builder changed under those builds
                for svc in building.services:  # what a stopped round verified is not what is built now
                    verifying.pop(svc.name, None)
                results = build_each(None)
            if claim is not None and all(r.ok for r in results):  # its round trips beside the last checks
                claim.acquire_soon()
        finally:
            warming.builds_ended()
            side.shutdown(wait=False, cancel_futures=True)
        lap("build")
        by_service = {name: future.result() for name, future in verifying.items()}
    for svc in the_plan.services:
        if (verification := by_service.get(svc.name)) is None:
            continue
        for platform in svc.build.platforms:
            failed = any(c.status is CheckStatus.FAIL and c.platform in ("", platform) for c in verification.checks)
            notify(svc.name, platform, Progress(Phase.VERIFICATION_FAILED if failed else Phase.VERIFIED))
    lap("verify")
    outcomes = tuple(
        ServiceOutcome(svc.name, svc.repository, res, by_service.get(svc.name), svc.release_ref)
        for svc, res in zip(the_plan.services, results)
    )
    outcomes, refused, tag_failure, refusal_hint = gate_and_tag(outcomes, client, notify=notify, retag=retag,
                                                                claim=claim, on_tagging=on_tagging)
    if refused is None and tag_failure is None and all(o.tagged for o in outcomes):
        reuse.publish_pointers(outcomes, decisions, client)
    lap("tag")
    return ReleaseOutcome(run_id, config.tag, config.registry, str(run_dir), info, handlers, selected, outcomes,
                          timings, refusal=refused, tag_failure=tag_failure, refusal_hint=refusal_hint,
                          prefetch=warming.stop())


def gate_and_tag(outcomes: tuple[ServiceOutcome, ...], client: RegistryClient, *, notify: ProgressFn, retag: bool,
                 claim: ReleaseClaim | None = None, on_tagging: TaggingHook | None = None,
                 ) -> tuple[tuple[ServiceOutcome, ...], str | None, TagFailure | None, str | None]:
    """The gate and the tag step, shared by a release built here and one merged from native agents
    (pipeline/merge.py): every release tag, or none; then the staging tags go. Returns the outcomes,
    the refusal, the tag failure and the refusal's hint. ``on_tagging`` is called with the outcomes
    (each tag decided, released_digest known) once the gate passed and no tag was refused, just
    before the tags are written."""
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
            return _clean_staging(replace(outcome, tagged=True), client)  # in the same round trip's thread

        if refused is None:
            if on_tagging is not None:
                on_tagging(outcomes)
            with interrupts.critical():  # all services tagged, or (on an error) none reported as released
                outcomes = _each(tag, outcomes)
                if any(o.tag_error is not None for o in outcomes):
                    outcomes = _each(lambda o: _undo_tag(o, client), outcomes)
                    tag_failure = tagging.failure(outcomes)
    outcomes = _each(lambda o: o if o.staging is not None else _clean_staging(o, client), outcomes)
    return outcomes, refused, tag_failure, refusal_hint


class _Once(Generic[T]):
    """``start()`` called once, from whichever thread calls first; ``result`` is what it returned."""

    def __init__(self, start: Callable[[], Future[T]]) -> None:
        self._start, self._lock = start, threading.Lock()
        self.result: Future[T] | None = None

    def __call__(self) -> None:
        with self._lock:
            if self.result is None:
                self.result = self._start()


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


def _verify_options(config: Config, service: str) -> verify.VerifyOptions:
    """services.yaml ``verify:``, with the service's own allow_foreign globs added."""
    own = next((s.allow_foreign for s in config.services if s.name == service), ())
    return verify.VerifyOptions(config.verify.allow_foreign + own, config.verify.deadline_seconds,
                                page_size=verify.page_size_bytes(config.verify.page_size))


def _check(svc: planning.ServicePlan, reference: str, client: RegistryClient,
           options: verify.VerifyOptions) -> Verification:
    """The registry checks; then, only if they passed, the service's smoke command per platform."""
    verification = verify.verify_image(reference, platforms=svc.build.platforms, client=client, options=options)
    if not svc.smoke or not verification.ok:
        return verification
    smoke = tuple(_smoke(svc.smoke, reference, platform) for platform in svc.build.platforms)
    return replace(verification, checks=verification.checks + smoke)


def _smoke(command: tuple[str, ...], reference: str, platform: str) -> Check:
    """Run ``command`` in the pushed image of ``platform`` (under QEMU when foreign)."""
    shown = shlex.join(command)
    try:
        out = engine.run(reference, command[1:], platform=platform, entrypoint=command[0])
    except CommandError as exc:
        tail = exc.failure.output.strip().splitlines()[-1:]
        return Check(platform, "smoke", CheckStatus.FAIL,
                     f"`{shown}` exited {exc.failure.returncode}" + (f": {tail[0][:120]}" if tail else ""))
    last = out.strip().splitlines()[-1] if out.strip() else ""
    return Check(platform, "smoke", CheckStatus.PASS, f"`{shown}` ran" + (f": {last[:80]}" if last else ""))


def _each(fn: Callable[[ServiceOutcome], ServiceOutcome],
          outcomes: tuple[ServiceOutcome, ...]) -> tuple[ServiceOutcome, ...]:
    """``fn`` over every outcome at once: each call is a docker process (~0.1 s) or a registry
    round trip, so in sequence they add up."""
    return tuple(concurrently.each(fn, outcomes, name="release"))


def _reused(svc: planning.ServicePlan, decision: reuse.Decision) -> BuildResult:
    """The build result of a service not built: the index released before with the same inputs."""
    return BuildResult(svc.name, svc.repository, "", ok=True, index_digest=decision.reused,
                       inputs=decision.inputs, reused_from=decision.pointer)


def _why(result: BuildResult, decision: reuse.Decision | None) -> BuildResult:
    if decision is None:
        return result
    return replace(result, inputs=decision.inputs, why_built=decision.why, bases_moved=decision.moved)


def _clean_staging(outcome: ServiceOutcome, client: RegistryClient) -> ServiceOutcome:
    if not outcome.build.ok or outcome.build.reused_from:
        return outcome
    ref = f"{outcome.repository}:{outcome.build.staging_tag}"
    return replace(outcome, staging=client.delete_tag(ref))

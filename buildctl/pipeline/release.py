"""The release pipeline: binfmt -> builder -> parallel build -> verification -> gate -> tags
(the gate and the tags: pipeline/gate.py).

`buildctl build` stops after the tags; `buildctl run` hands the released images to the GitOps
step. The release tag is written only after every service passed every check.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Generic, TypeVar

from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtAction
from buildctl.inspect import prefetch, shared_tables
from buildctl.inspect.results import CheckStatus
from buildctl.model import BuildOptions, Config, Phase, Progress, ProgressFn
from buildctl.pipeline import build
from buildctl.pipeline import plan as planning
from buildctl.pipeline import reuse, source_dates
from buildctl.pipeline.builder_check import BuilderCheck, host_handlers, remembered
from buildctl.pipeline.gate import TaggingHook, gate_and_tag
from buildctl.pipeline.results import BuildResult, ReleaseOutcome, ServiceOutcome
from buildctl.pipeline.reuse import ReuseInputs
from buildctl.pipeline.verifying import VerifiedHook, Verifications
from buildctl.programs import Stop
from buildctl.registry.claims import ReleaseClaim
from buildctl.registry.client import RegistryClient

T = TypeVar("T")


def build_release(config: Config, *, run_dir: Path, run_id: str, jobs: int | None = None,
                  options: BuildOptions | None = None, client: RegistryClient,
                  progress: ProgressFn | None = None, retag: bool = False,
                  claim: ReleaseClaim | None = None, reuse_from: ReuseInputs | None = None,
                  on_tagging: TaggingHook | None = None, claim_ends_with_tags: bool = False,
                  on_verified: VerifiedHook | None = None) -> ReleaseOutcome:
    """Steps 1-5 of a release. ``claim``: this run's claim on the release tag, acquired after the
    gate and held by the caller until its GitOps step has ended; with ``claim_ends_with_tags`` (no
    GitOps step to come) given back as soon as the tags are written. ``reuse_from``: the base digests
    (and --rebuild, --nightly) to decide which services are reused instead of built (pipeline/reuse.py).
    ``on_tagging``: see gate_and_tag. ``on_verified(repository, verification, stopped=...)``: called
    (in a verifying thread) as each index this run built has been verified, while others may still
    build; ``stopped()`` waits for the builder check and says whether it stopped that build's round."""
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
    # So are, from the moment one service is known to build, the host's binfmt handlers and `buildx
    # inspect` (0.15-0.3 s, mostly waiting on the builder) of a builder not remembered from a passed
    # check: its builds wait for that check (pipeline/builder_check.py), so it starts beside the
    # other decisions, not once they are all made (a fresh agent's builds began 0.2-0.3 s later,
    # issue #20); on an agent with no check remembered at all, the CLI started it before its imports
    # (engine/early_info.py). A release that builds nothing does neither (its exit waited for an
    # inspect it never read: +0.07 s of 0.41 s). A remembered builder is never inspected unless a build on it fails.
    known = remembered(config.builder, platforms)
    registering = _Once(lambda: side.submit(host_handlers, config, platforms, asking))
    inspecting = _Once(lambda: side.submit(builder.describe, config.builder, early=True))

    def building() -> None:
        registering()
        if known is None:
            inspecting()

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
        building()  # a smoke command of a reused service needs the handlers too
        host = registering.result.result()
        lap("binfmt")
        # A handler registered just now changes what the builder reports (BuildKit looks for
        # emulators on every inspect): then an earlier answer is stale, and the builds wait for the
        # check, as on a builder not known to pass it. Otherwise they start beside it (pipeline/builder_check.py).
        fresh = not any(r.action is BinfmtAction.REGISTERED for r in host)
        check = BuilderCheck(config.builder, platforms=platforms, info=info, host=host,
                             read=inspecting.result if fresh else None, remembered=known if fresh else None)
        if not (fresh and known is not None):
            try:
                check.selected()
            except BaseException:
                warming.stop()
                raise
        lap("builder")
    else:  # every service reused, no smoke command to run under emulation: no handler, no builder needed
        check = None
    # Timings: "build" ends with the last build, "verify" is what verification adds after it.
    with Verifications(config, client, shared=shared, workers=len(the_plan.services), notify=notify,
                       on_verified=on_verified) as verifying:
        reused = {svc.name: _reused(svc, decisions[svc.name]) for svc in the_plan.services
                  if svc.name in decisions and decisions[svc.name].reused}
        for svc in the_plan.services:
            if (res := reused.get(svc.name)) is not None:
                notify(svc.name, "", Progress(Phase.REUSED, detail=res.outcome.removeprefix("reused")))
        building = replace(the_plan, services=tuple(s for s in the_plan.services if s.name not in reused))
        side_work = threading.Event()

        def builds_started() -> None:
            """Once every build's process runs: the reused services' checks, the base tables' loading
            and the claims' tidying, work that holds the GIL and would delay spawning them (~20 ms, issue #20)."""
            if side_work.is_set():  # a second round of builds (the builder check stopped the first)
                return
            side_work.set()
            for svc in the_plan.services:
                if (res := reused.get(svc.name)) is not None:
                    verifying.start(svc, res)
            if building.services:
                warming.builds_began(svc.repository for svc in building.services)
                if claim is not None:
                    claim.tidy_soon()

        try:
            def build_each(stop: Stop | None, progress: ProgressFn = notify) -> list[BuildResult]:
                built = iter(build.build_all(building, run_dir=run_dir, jobs=jobs, progress=progress,
                                             on_built=functools.partial(verifying.start, stop=stop),
                                             on_pushed=verifying.pushed, on_started=builds_started, stop=stop))
                return [reused.get(s.name) or _why(next(built), decisions.get(s.name)) for s in the_plan.services]

            # On the builder as remembered, a failure is told only once the builder as it is now was
            # checked (again()): a remembered state can be stale, so a failed build or a failed check
            # of it is checked live, and builds the check stopped build once more on what it found.
            held: list[tuple[str, str, Progress]] = []
            ahead = check
            remembered_only = check is not None and check.remembered
            results = build_each(check.stop if check else None, _holding_failures(notify, held) if remembered_only
                                 else notify)
            # passed() first: it waits for that check, which must not still change the builder when again() runs.
            if check is not None and remembered_only and not (check.passed() and all(r.ok for r in results)):
                check = check.again()
            selected = check.selected() if check else reuse.no_builder(config.builder)
            handlers = check.handlers() if check else ()
            if ahead is not None and (ahead.stopped or check.stopped):  # the builds did not run on this builder
                verifying.forget({svc.name for svc in building.services})
                results = build_each(None)
            else:
                for event in held:
                    notify(*event)
            if claim is not None and all(r.ok for r in results):  # its round trips beside the last checks
                claim.acquire_soon()
        finally:
            warming.builds_ended()
            side.shutdown(wait=False, cancel_futures=True)
        lap("build")
        by_service = verifying.results()
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
    outcomes, refused, tag_failure, refusal_hint = gate_and_tag(
        outcomes, client, notify=notify, retag=retag, claim=claim, on_tagging=on_tagging,
        when_released=lambda released: reuse.publish_pointers(released, decisions, client))
    if claim is not None and claim_ends_with_tags:
        # Its round trips (a PUT of the ended claim per repository, registry/claims.py), begun now,
        # run beside the attestation and the record.
        claim.release_soon()
    lap("tag")
    return ReleaseOutcome(run_id, config.tag, config.registry, str(run_dir), info, handlers, selected, outcomes,
                          timings, refusal=refused, tag_failure=tag_failure, refusal_hint=refusal_hint,
                          prefetch=warming.stop())


class _Once(Generic[T]):
    """``start()`` called once, from whichever thread calls first; ``result`` is what it returned."""

    def __init__(self, start: Callable[[], Future[T]]) -> None:
        self._start, self._lock = start, threading.Lock()
        self.result: Future[T] | None = None

    def __call__(self) -> None:
        with self._lock:
            if self.result is None:
                self.result = self._start()


def _holding_failures(notify: ProgressFn, held: list[tuple[str, str, Progress]]) -> ProgressFn:
    """``notify``, but a FAILED kept in ``held`` (the display shows FAILED for good)."""
    def hold(service: str, platform: str, state: Progress) -> None:
        if state.phase is Phase.FAILED:
            held.append((service, platform, state))
        else:
            notify(service, platform, state)

    return hold


def _reused(svc: planning.ServicePlan, decision: reuse.Decision) -> BuildResult:
    """The build result of a service not built: the index released before with the same inputs."""
    return BuildResult(svc.name, svc.repository, "", ok=True, index_digest=decision.reused,
                       inputs=decision.inputs, reused_from=decision.pointer)


def _why(result: BuildResult, decision: reuse.Decision | None) -> BuildResult:
    if decision is None:
        return result
    return replace(result, inputs=decision.inputs, why_built=decision.why, bases_moved=decision.moved)

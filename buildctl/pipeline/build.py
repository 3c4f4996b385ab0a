"""Step 3: build and push every service, in parallel, each as one OCI index under a staging tag.

Each service's plain BuildKit log goes to its own file; a failing service does not stop or
hide the others. The index digest comes from buildx's metadata file, never from a tag lookup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildctl import interrupts
from buildctl.engine import docker as engine
from buildctl.engine.build_log import progress_event, pushed_digest
from buildctl.errors import BuildctlError
from buildctl.model import Phase, Progress, ProgressFn
from buildctl.pipeline.plan import Plan, ServicePlan
from buildctl.pipeline.results import BuildResult
from buildctl.programs import Stop


def log_tail(log_file: str | None, *, lines: int = 25) -> str:
    if not log_file:
        return ""
    try:
        text = Path(log_file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _announce(service: str, line: str, notify: ProgressFn) -> None:
    if event := progress_event(line):
        notify(service, *event)


def build_all(plan: Plan, *, run_dir: Path, jobs: int | None = None,
              progress: ProgressFn | None = None,
              on_built: Callable[[ServicePlan, BuildResult], None] | None = None,
              on_started: Callable[[], None] | None = None,
              on_pushed: Callable[[ServicePlan, str], None] | None = None,
              stop: Stop | None = None) -> tuple[BuildResult, ...]:
    """Build every service of ``plan``; at most ``jobs`` at once (default: all).

    ``on_built`` is called (in the building thread) as soon as a service is pushed, so the
    caller can start checking it while the others still build; ``on_pushed(service, digest)`` even
    before, when buildx prints that it pushed that index (it then ends its session and writes the
    metadata file, whose digest is the one ``on_built`` hears). ``on_started`` is called once,
    when every build that runs now has printed its first line (or ended), or at once when there
    is nothing to build. ``stop``, when pulled, ends every build (each result then failed, not
    announced as failed: the caller builds again or raises).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(jobs or len(plan.services), len(plan.services)))
    notify = progress or (lambda service, platform, state: None)
    began = _FirstLines(plan.services[:workers], on_started or (lambda: None))

    def one(service: ServicePlan) -> BuildResult:
        log_file = run_dir / f"{service.name}.build.log"
        notify(service.name, "", Progress(Phase.BUILDING))
        started = time.monotonic()

        def line(text: str) -> None:
            began.saw(service.name)
            _announce(service.name, text, notify)
            if on_pushed is not None and (pushed := pushed_digest(text, service.build.staging_ref)):
                on_pushed(service, pushed)

        try:
            # On the builder, with the metadata file, the plan names (the argv `plan` prints).
            digest = engine.build(service.build, log_file=log_file, on_line=line, stop=stop)
        except BuildctlError as exc:
            began.saw(service.name)
            # Under a stop, a build may have failed because its builder was not ready (missing, not
            # started): not a failure to announce once the builder check stops it (it builds again).
            if stop is None or not stop.settled():
                notify(service.name, "", Progress(Phase.FAILED))
            return BuildResult(service.name, service.repository, service.build.staging_ref.rsplit(":", 1)[1],
                               ok=False, seconds=time.monotonic() - started, log_file=str(log_file),
                               error=exc.message.splitlines()[0])
        began.saw(service.name)
        notify(service.name, "", Progress(Phase.PUSHED))
        result = BuildResult(service.name, service.repository, service.build.staging_ref.rsplit(":", 1)[1],
                             ok=True, index_digest=digest, seconds=time.monotonic() - started, log_file=str(log_file))
        if on_built is not None:
            on_built(service, result)
        return result

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="build")
    try:
        return tuple(pool.map(one, plan.services))
    except KeyboardInterrupt:
        # Stop the running `docker buildx build` children first, or the pool would wait for them.
        if stop is not None:
            stop.pull()  # and a failed build waiting for the builder check to settle waits no more
        pool.shutdown(wait=False, cancel_futures=True)
        interrupts.terminate_children()
        raise
    finally:
        pool.shutdown(wait=True)


class _FirstLines:
    """``then()`` once, when each of ``services`` was ``saw``: their processes run."""

    def __init__(self, services: tuple[ServicePlan, ...], then: Callable[[], None]) -> None:
        self._waiting, self._then, self._lock = {s.name for s in services}, then, threading.Lock()
        self._done = False
        self._finish_if_none_left()

    def saw(self, service: str) -> None:
        with self._lock:
            self._waiting.discard(service)
        self._finish_if_none_left()

    def _finish_if_none_left(self) -> None:
        with self._lock:
            if self._waiting or self._done:
                return
            self._done = True
        self._then()

"""Step 3: build and push every service, in parallel, each as one OCI index under a staging tag.

Each service's plain BuildKit log goes to its own file; a failing service does not stop or
hide the others. The index digest comes from buildx's metadata file, never from a tag lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildctl import interrupts
from buildctl.engine import docker as engine
from buildctl.engine.build_log import progress_event
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
              stop: Stop | None = None) -> tuple[BuildResult, ...]:
    """Build every service of ``plan``; at most ``jobs`` at once (default: all).

    ``on_built`` is called (in the building thread) as soon as a service is pushed, so the
    caller can start checking it while the others still build. ``stop``, when pulled, ends every
    build (each result then failed, not announced as failed: the caller builds again or raises).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(jobs or len(plan.services), len(plan.services)))
    notify = progress or (lambda service, platform, state: None)

    def one(service: ServicePlan) -> BuildResult:
        log_file = run_dir / f"{service.name}.build.log"
        notify(service.name, "", Progress(Phase.BUILDING))
        started = time.monotonic()
        try:
            # On the builder, with the metadata file, the plan names (the argv `plan` prints).
            digest = engine.build(service.build, log_file=log_file,
                                  on_line=lambda line: _announce(service.name, line, notify), stop=stop)
        except BuildctlError as exc:
            # Under a stop, a build may have failed because its builder was not ready (missing, not
            # started): not a failure to announce once the builder check stops it (it builds again).
            if stop is None or not stop.settled():
                notify(service.name, "", Progress(Phase.FAILED))
            return BuildResult(service.name, service.repository, service.build.staging_ref.rsplit(":", 1)[1],
                               ok=False, seconds=time.monotonic() - started, log_file=str(log_file),
                               error=exc.message.splitlines()[0])
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

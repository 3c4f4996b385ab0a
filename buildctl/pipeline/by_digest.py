"""A native agent's share of a release (`buildctl build --platform P --by-digest FILE`): every
selected service built for P only, pushed by digest only (no tag appears: nothing can deploy
one platform before the final agent has merged them all), verified as a release verifies
(every ELF file, loader, shebang, smoke — natively, on this agent), and the agent file written
for the final agent (pipeline/agent_file.py; `buildctl run --from FILE ...` merges).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from buildctl import workdir
from buildctl.engine import binfmt
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtResult, BuilderReport
from buildctl.errors import UsageError
from buildctl.gitops import git
from buildctl.inspect import base_platforms, base_policy, dockerfile_files, prefetch, verify
from buildctl.inspect.results import Verification
from buildctl.model import Config, Driver, Phase, Progress, ProgressFn, frozen_map
from buildctl.platforms import normalize
from buildctl.pipeline import agent_file, build, source_dates
from buildctl.pipeline import plan as planning
from buildctl.pipeline.agent_file import AgentFile, AgentImage, Verdict
from buildctl.pipeline.verifying import check_service, verify_options  # the gate's checks: the same verdicts
from buildctl.pipeline.results import BuildResult
from buildctl.pipeline.session import registry_session


@dataclass(frozen=True)
class AgentRun:
    agent: AgentFile
    file: str  # where it was written
    run_dir: str  # the build logs
    builder: BuilderReport
    binfmt: tuple[BinfmtResult, ...] = ()
    timings: Mapping[str, float] = field(default_factory=frozen_map)


def for_platform(config: Config, platform: str) -> Config:
    """``config`` with only the services configured for ``platform``, each for it alone."""
    wanted = normalize(platform)
    services = tuple(replace(s, platforms=(p,)) for s in config.services for p in s.platforms if normalize(p) == wanted)
    if not services:
        raise UsageError(f"--platform {platform}: no selected service is configured for it "
                         f"(platforms: {', '.join(config.all_platforms())})")
    if config.builder.driver is Driver.DOCKER:
        raise UsageError(f"--by-digest: builder {config.builder.name!r} uses the docker driver, which cannot push by "
                         "digest (buildx: push-by-digest is not implemented for it)",
                         hint="set builder: to a docker-container or remote builder in services.yaml")
    return replace(config, services=services)


def build_by_digest(config: Config, *, platform: str, file: Path, jobs: int | None = None, pull: bool = False,
                    no_cache: bool = False, progress: ProgressFn | None = None) -> AgentRun:
    notify = progress or (lambda service, platform, state: None)
    narrowed = for_platform(config, platform)
    wanted = normalize(platform)
    dockerfile_files.refuse_before_build(narrowed)  # Dockerfile:LINE, before any login, build or push
    base_policy.refuse_policy_violations(narrowed)
    run_id = planning.new_run_id()
    run_dir = workdir.state_dir(config.root) / "runs" / run_id
    clock = time.monotonic()
    with registry_session(narrowed) as session:
        client = session.client
        client.ping(narrowed.registry, authenticated=True)
        base_platforms.refuse_missing_platforms(narrowed, credentials={narrowed.registry: session.creds}
                                                if session.creds else None)
        warming = prefetch.started(narrowed, client=client)  # this platform's base layers, while it builds
        info = engine.engine_info()
        host = (binfmt.register_host((wanted,), native=info.native_platform, config=narrowed.binfmt)
                if builder.runs_locally(narrowed.builder, info) else ())
        selected = builder.ensure_builder(narrowed.builder, platforms=(wanted,), info=info)
        handlers = (binfmt.probe_local(host, builder=selected) if selected.local
                    else binfmt.probe_builder((wanted,), builder=selected, host=host))
        options = planning.build_options(narrowed, pull=pull, no_cache=no_cache)
        the_plan = planning.make_plan(narrowed, run_id=run_id, options=options,
                                      commit_times=source_dates.commit_times(narrowed, options))
        the_plan = replace(the_plan, services=tuple(replace(s, build=replace(s.build, by_digest=True))
                                                    for s in the_plan.services))
        ready = time.monotonic()
        verifying: dict[str, Future[Verification]] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(len(the_plan.services), verify.MAX_IMAGE_WORKERS)),
                                thread_name_prefix="verify") as checks:
            def start_verification(svc: planning.ServicePlan, res: BuildResult) -> None:
                notify(svc.name, "", Progress(Phase.VERIFYING))
                verifying[svc.name] = checks.submit(check_service, svc, f"{svc.repository}@{res.index_digest}",
                                                    client, verify_options(narrowed, svc.name))

            # The reads begin once the builds' processes run (inspect/prefetch.py).
            results = build.build_all(the_plan, run_dir=run_dir, jobs=jobs, progress=notify,
                                      on_built=start_verification, on_started=lambda: warming.builds_began(
                                          svc.repository for svc in the_plan.services))
            warming.builds_ended()
            verified = {name: future.result() for name, future in verifying.items()}
        warming.stop()
    images = tuple(_image(config, svc, res, verified.get(svc.name)) for svc, res in zip(the_plan.services, results))
    for image in images:
        notify(image.service, wanted, Progress(Phase.VERIFIED if image.verdict is Verdict.PASSED
                                               else Phase.VERIFICATION_FAILED))
    agent = AgentFile(wanted, narrowed.registry, narrowed.tag, git.head_commit(config.root), images,
                      dirty=git.tracked_changes(config.root))
    agent_file.write(file, agent)
    done = time.monotonic()
    return AgentRun(agent, str(file), str(run_dir), selected, handlers,
                    frozen_map({"prepare": round(ready - clock, 3), "build+verify": round(done - ready, 3)}))


def _image(config: Config, svc: planning.ServicePlan, res: BuildResult, verification: Verification | None) -> AgentImage:
    service = next(s for s in config.services if s.name == svc.name)  # as configured: every platform
    passed = res.ok and verification is not None and verification.ok
    image_digest = verification.platforms[0].digest if verification and len(verification.platforms) == 1 else ""
    return AgentImage(svc.name, svc.repository, res.index_digest or "", image_digest,
                      agent_file.entry_digest(config, service), None,
                      Verdict.PASSED if passed and image_digest else Verdict.FAILED,
                      verification.checks if verification else (), res.error)

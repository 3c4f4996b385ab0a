"""Step 5's checks of one release, each service's begun as soon as its index is in the registry,
while the others still build: the checks hide behind the slowest build instead of following it.

"As soon as" is the moment buildx prints that it pushed the index ("pushing manifest for
REF@sha256:... done"), not the moment it exits: it still ends its session and writes its
metadata file for ~45 ms after that line, which the last build's checks used to wait for
(issue #20). What is checked is read by digest, so it is the same bytes whoever asks; the check is
taken for the service only once buildx has exited and its metadata file names that same digest
(`start`), and only then told to ``on_verified`` (which attests it): a digest the line named but
the build did not end with is checked for nothing, never attested.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from buildctl.engine import docker as engine
from buildctl.errors import CommandError
from buildctl.inspect import verify
from buildctl.inspect.results import Check, CheckStatus, Verification
from buildctl.inspect.shared_tables import SharedTables
from buildctl.model import Config, Phase, Progress, ProgressFn
from buildctl.pipeline import plan as planning
from buildctl.pipeline.results import BuildResult
from buildctl.programs import Stop
from buildctl.registry.client import RegistryClient

VerifiedHook = Callable[..., None]  # (repository, verification, *, stopped: Callable[[], bool])


class Verifications:
    """The checks of a release's services, by service name; a context manager (its threads)."""

    def __init__(self, config: Config, client: RegistryClient, *, shared: SharedTables | None, workers: int,
                 notify: ProgressFn, on_verified: VerifiedHook | None = None) -> None:
        self._config, self._client, self._shared, self._notify = config, client, shared, notify
        self._on_verified = on_verified
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(workers, verify.MAX_IMAGE_WORKERS)),
                                        thread_name_prefix="verify")
        self.running: dict[str, Future[Verification]] = {}
        self._ahead: dict[str, tuple[str, Future[Verification]]] = {}  # begun at buildx's push line

    def __enter__(self) -> Verifications:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)

    def pushed(self, svc: planning.ServicePlan, digest: str) -> None:
        """buildx said it pushed ``svc``'s index ``digest`` (it has not exited yet): its checks begin.
        Called in the building thread; a push done again (a retried attempt) begins them again."""
        self._ahead[svc.name] = (digest, self._submit(svc, digest))

    def start(self, svc: planning.ServicePlan, res: BuildResult, stop: Stop | None = None) -> None:
        """``svc`` built (or reused) as ``res``: its checks, those begun at its push line when they
        check the digest its build ended with. ``stop``: the builder check that may stop its round."""
        self._notify(svc.name, "", Progress(Phase.VERIFYING))
        digest, begun = self._ahead.pop(svc.name, (None, None))
        checking = begun if begun is not None and digest == res.index_digest else self._submit(svc, res.index_digest)
        self.running[svc.name] = checking
        if self._on_verified is not None and not res.reused_from:  # built by a round the builder check may stop
            checking.add_done_callback(_when_verified(svc.repository, self._on_verified, stop))

    def forget(self, names: set[str]) -> None:
        """What a round the builder check stopped verified is not what is built now."""
        for name in names:
            self.running.pop(name, None)
            self._ahead.pop(name, None)

    def results(self) -> dict[str, Verification]:
        return {name: future.result() for name, future in self.running.items()}

    def _submit(self, svc: planning.ServicePlan, digest: str | None) -> Future[Verification]:
        options = replace(verify_options(self._config, svc.name), shared=self._shared)
        return self._pool.submit(check_service, svc, f"{svc.repository}@{digest}", self._client, options)


def _when_verified(repository: str, then: VerifiedHook, stop: Stop | None) -> Callable[[Future[Verification]], None]:
    """``then`` of a verification that ended, told whether its round was stopped (``stop.settled()``,
    which waits for the builder check: what a stopped round built is not what is released)."""
    def done(checked: Future[Verification]) -> None:
        if not checked.cancelled() and checked.exception() is None:
            then(repository, checked.result(), stopped=stop.settled if stop is not None else lambda: False)

    return done


def verify_options(config: Config, service: str) -> verify.VerifyOptions:
    """services.yaml ``verify:``, with the service's own allow_foreign globs added."""
    own = next((s.allow_foreign for s in config.services if s.name == service), ())
    return verify.VerifyOptions(config.verify.allow_foreign + own, config.verify.deadline_seconds,
                                page_size=verify.page_size_bytes(config.verify.page_size))


def check_service(svc: planning.ServicePlan, reference: str, client: RegistryClient,
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

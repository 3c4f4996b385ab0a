"""Read the base images' layers while the builds run, so verification after the last push only
reads what the build added.

A pushed image's bottom layers are its base image's layers, blob for blob (BuildKit pushes the
base's compressed blobs as they are), so their tables (inspect.layers, elf_checks.indexed) can be
made before the build ends: the plan knows each service's base image — the ``FROM`` image under its
target stage (dockerfile.image_base) — and the platforms it is pulled for. Each distinct layer is
read once for every service and platform that shares it, through layer_reads.read_layer into the
same content-addressed LayerCache verification uses (bytes checked against the digest and size).

Never in the build's way: niced daemon threads while the builds run (normal again once they ended,
where allowed), its own registry client with the run's credential lookup (each registry gets only
its own credentials), a short read timeout and no retries, one deadline (at most verification's,
cut to GRACE_SECONDS once the builds ended) so verification, which waits for a layer the prefetch
is reading, never waits past it, then reads it itself. Errors are logged (debug) and dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from buildctl.inspect import threads
from buildctl.inspect.descriptors import Descriptor, descriptor, is_attestation, platform_of
from buildctl.inspect.dockerfile import BUILD, TARGET, BaseImage, image_base
from buildctl.inspect.dockerfile_files import read_dockerfile
from buildctl.inspect.elf_checks import indexed
from buildctl.inspect.layer_reads import read_layer
from buildctl.inspect.layers import LayerCache, ScanLimits, shared_layer_cache
from buildctl.inspect.results import PrefetchReport
from buildctl.inspect.shared_tables import SharedTables
from buildctl.inspect.verify import MAX_LAYERS
from buildctl.model import Config
from buildctl.platforms import Platform, PlatformError
from buildctl.references import parse_reference
from buildctl.registry.bounds import Deadline
from buildctl.registry.client import RegistryClient
from buildctl.registry.results import RetryPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFETCH_SECONDS = 120.0  # the whole prefetch, from its start (a cold build of the sample: ~10 s)
GRACE_SECONDS = 15.0  # once the builds ended: how much longer the prefetch may go on reading
READ_TIMEOUT = 5.0  # a registry silent this long is not worth waiting for: verification reads it itself
MAX_READERS = 4  # layers read at once
NICE = 10  # the builds (and their QEMU) come first; the prefetch takes the idle CPU
DISABLE_ENV = "BUILDCTL_PREFETCH"  # "0": verification reads every layer itself (benchmarks/run.py "before")
_RETRY = RetryPolicy(attempts=1, total_seconds=READ_TIMEOUT)


@dataclass(frozen=True)
class BaseTarget:
    """A base image and the platforms the builds pull it for."""

    reference: str
    platforms: tuple[str, ...]
    homes: tuple[str, ...] = ()  # the repositories of the services built on it (shared_tables.py)


def pulled_for(base: BaseImage, platforms: Sequence[str]) -> tuple[str, ...]:
    """The platforms ``base`` is pulled for in a build of ``platforms``; () when that depends on the
    build machine ($BUILDPLATFORM: a final stage on it is refused by the lint anyway) or is unknown."""
    if base.platform in (None, BUILD):
        return ()
    try:
        return tuple(str(Platform.parse(p)) for p in (platforms if base.platform == TARGET else [base.platform]))
    except PlatformError:
        return ()  # the build will say what is wrong with it


def wanted(bases: Iterable[tuple[BaseImage | None, Sequence[str]] | tuple[BaseImage | None, Sequence[str], str]],
           ) -> tuple[BaseTarget, ...]:
    """One target per distinct base image (first seen first), the platforms of every service that
    uses it merged (and its repository, when given third): a base shared by three services is read once."""
    merged: dict[str, dict[str, None]] = {}
    homes: dict[str, dict[str, None]] = {}
    for base, platforms, *home in bases:
        if base is None:
            continue
        need = pulled_for(base, platforms)
        if need:
            merged.setdefault(base.reference, {}).update(dict.fromkeys(need))
            homes.setdefault(base.reference, {}).update(dict.fromkeys(home))
    return tuple(BaseTarget(ref, tuple(platforms), tuple(sorted(homes[ref]))) for ref, platforms in merged.items())


def platform_manifests(index: Mapping[str, Any], platforms: Sequence[str]) -> dict[str, Descriptor]:
    """The image manifest of each of ``platforms`` an index lists (attestations skipped)."""
    found: dict[str, Descriptor] = {}
    for entry in index.get("manifests") or []:
        if is_attestation(entry):
            continue
        platform = platform_of(entry.get("platform"))
        if platform in platforms and platform not in found:
            found[platform] = descriptor(entry)
    return found


def layers_of(manifest: Mapping[str, Any]) -> tuple[Descriptor, ...]:
    layers = tuple(descriptor(la) for la in manifest.get("layers") or [])
    if len(layers) > MAX_LAYERS:
        raise ValueError(f"{len(layers)} layers (more than verification reads: {MAX_LAYERS})")
    return layers


def targets_of(config: Config) -> tuple[BaseTarget, ...]:
    """``wanted`` for the services of ``config`` (a Dockerfile that cannot be read: none for it)."""
    bases = []
    for service in config.services:
        try:
            text, shown = read_dockerfile(config, service)
            base = image_base(text, path=shown, target=service.target, build_args=service.build_args)
        except Exception as exc:  # noqa: BLE001 - never the prefetch's to fail a build: the build reports it
            log.debug("prefetch: no base image for %s: %s", service.name, exc)
            continue
        bases.append((base, service.platforms, f"{config.registry}/{service.image}"))
    return wanted(bases)


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get(DISABLE_ENV, "1") != "0"


class Prefetch:
    """The prefetch of ``targets``' layers into ``cache``; ``start`` returns at once."""

    def __init__(self, targets: Sequence[BaseTarget], *, client: RegistryClient, cache: LayerCache,
                 limits: ScanLimits, seconds: float = PREFETCH_SECONDS, shared: SharedTables | None = None) -> None:
        self.targets, self.cache, self.limits, self.shared = tuple(targets), cache, limits, shared
        # The run's credential lookup, so each registry gets its own credentials only (registry/credentials.py).
        self.client = RegistryClient(credentials=client.auth.source, timeout=READ_TIMEOUT, retry=_RETRY)
        self.deadline = Deadline(seconds, what="prefetching the base images' layers")
        self._lock = threading.Lock()
        self._images: list[str] = []
        self._errors: list[str] = []
        self._keys: set[str] = set()
        self._read = 0
        self._threads: set[int] = set()  # native ids of the threads it niced
        self._ended_builds = False
        self._started = time.monotonic()
        self._ended: float | None = None
        self._done = threading.Event()
        self._building = threading.Event()  # set by builds_began or stop
        self._building_in: frozenset[str] = frozenset()  # builds_began's repositories
        self._loaded = 0

    def start(self) -> Prefetch:
        if self.targets:
            threads.start(self._run, name="prefetch")
        else:
            self._finish()
        return self

    def builds_began(self, repositories: Iterable[str]) -> None:
        """The services of ``repositories`` build: their base layers' tables on disk are loaded now,
        beside the builds."""
        self._building_in = frozenset(repositories)
        self._building.set()

    def builds_ended(self) -> None:
        """The builds are done: verification needs the layers now. What is still being read goes
        on at normal priority (where allowed) for at most GRACE_SECONDS."""
        self.deadline.cut(GRACE_SECONDS)
        with self._lock:  # under the lock: a thread in the set is alive (it leaves the set first)
            self._ended_builds = True
            for tid in self._threads:
                _set_nice(tid, 0)

    def wait(self, timeout: float) -> bool:
        """Whether it ended (every read done or given up) within ``timeout`` seconds; one with tables on
        disk ends only after builds_began loaded them, or stop."""
        return self._done.wait(timeout)

    def stop(self) -> PrefetchReport:
        """End it (whatever is still being read stops at its next check) and say what it did."""
        self.deadline.cut(0)
        self._building.set()  # no tables loaded from disk from now on, unless builds_began said so
        with self._lock:
            ended = self._ended if self._ended is not None else time.monotonic()
            report = PrefetchReport(tuple(self._images), len(self._keys), self._read,
                                    round(ended - self._started, 3), tuple(self._errors),
                                    shared=self.shared.taken if self.shared is not None else 0, loaded=self._loaded)
        return report

    # ------------------------------------------------------------------ in the daemon threads

    def _run(self) -> None:
        try:
            jobs: dict[str, tuple[Any, Descriptor]] = {}
            homes: dict[str, dict[str, None]] = {}  # a layer's: the repositories of the images that hold it
            for target in self.targets:
                for ref, layer in self._layers(target):
                    jobs.setdefault(f"{layer.digest}/{layer.size}", (ref, layer))
                    homes.setdefault(f"{layer.digest}/{layer.size}", {}).update(dict.fromkeys(target.homes))
            with self._lock:
                self._keys.update(jobs)
            slots = threading.BoundedSemaphore(MAX_READERS)

            def read(job: tuple[Any, Descriptor]) -> object:
                places = tuple(homes[f"{job[1].digest}/{job[1].size}"]) or None
                with slots, self._niced():
                    return self._guarded(f"layer {job[1].digest}", lambda: indexed(read_layer(
                        self.client, job[0], job[1], cache=self.cache, limits=self.limits, deadline=self.deadline,
                        on_read=self._count_read, shared=self.shared, homes=places)))
            on_disk = {key for key in jobs if self.cache.has(key)}
            # Largest first: the reads end together instead of one long read last.
            ordered = sorted((job for key, job in jobs.items() if key not in on_disk),
                             key=lambda job: -(job[1].size or 0))
            # The reads begin once the builds' processes run: a read, and a shared table's parse, hold
            # the GIL for tens of ms, and on a fresh agent (its tables from the registry) they held
            # back the builds' spawn by 0.18 s (issue #20). A table on disk is loaded (~50 ms of CPU for
            # a Debian base) only once something builds too, before its verification needs it: a
            # release that builds nothing reuses verdicts and needs none.
            if ordered or on_disk:
                began = self._building.wait(self.deadline.remaining())
                if not began or self.deadline.expired:  # no build began in its time, or stopped first
                    return
            reading = [threads.start(lambda job=job: read(job), name="prefetch-layer") for job in ordered]
            # Only the bases of the services that build: a reused service's verdict needs no table.
            for key in (k for k in on_disk if not self._building_in.isdisjoint(homes[k])):
                if read(jobs[key]) is not None:
                    with self._lock:
                        self._loaded += 1
            for future in reading:
                future.exception()  # _guarded keeps every error in the report
        finally:
            self._finish()

    def _layers(self, target: BaseTarget) -> list[tuple[Any, Descriptor]]:
        def resolve() -> list[tuple[Any, Descriptor]]:
            ref = parse_reference(target.reference)
            top = self.client.get_manifest(ref, deadline=self.deadline)
            pinned = ref.with_tag(None)
            if not top.is_index:
                self._note(f"{target.reference} {', '.join(target.platforms)}")
                return [(pinned, layer) for layer in layers_of(top.json())]
            found = []
            for platform, entry in platform_manifests(top.json(), target.platforms).items():
                manifest = self.client.get_manifest(pinned.with_digest(entry.digest), deadline=self.deadline)
                found += [(pinned, layer) for layer in layers_of(manifest.json())]
                self._note(f"{target.reference} {platform}")
            return found
        return self._guarded(target.reference, resolve) or []

    def _guarded(self, what: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except KeyboardInterrupt:
            return None  # the run is being interrupted: the main thread handles it
        except Exception as exc:  # noqa: BLE001 - best effort, whatever failed: verification reads it itself
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            log.debug("prefetch of %s failed (verification reads it itself): %s", what, message)
            with self._lock:
                self._errors.append(f"{what}: {message.splitlines()[0] if message else ''}")
            return None

    def _note(self, image: str) -> None:
        with self._lock:
            self._images.append(image)

    def _count_read(self) -> None:
        with self._lock:
            self._read += 1

    @contextmanager
    def _niced(self) -> Iterator[None]:
        """This thread niced while the builds run, so they keep the CPU they need."""
        tid = threading.get_native_id()
        with self._lock:
            if not self._ended_builds:
                self._threads.add(tid)
                _set_nice(tid, NICE)
        try:
            yield
        finally:
            with self._lock:
                self._threads.discard(tid)

    def _finish(self) -> None:
        with self._lock:
            self._ended = time.monotonic()
        self.client.close()  # nothing uses it any more: every read has ended
        self._done.set()


def _set_nice(tid: int, nice: int) -> None:
    """Linux: niceness is per thread. Lowering it again needs CAP_SYS_NICE (or RLIMIT_NICE): where it
    is refused, the prefetch just goes on niced."""
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (AttributeError, OSError):
        pass  # not Linux, or not allowed


def started(config: Config, *, client: RegistryClient, cache: LayerCache | None = None,
            limits: ScanLimits | None = None, shared: SharedTables | None = None) -> Prefetch:
    """The prefetch of ``config``'s base images into the cache verification reads (by default the
    process-wide one), started; an empty one when BUILDCTL_PREFETCH=0."""
    # Never past the verification's own deadline: a verification waiting for a layer the prefetch
    # reads must see it end (and read the layer itself) before its deadline does.
    return Prefetch(targets_of(config) if enabled() else (), client=client, cache=cache or shared_layer_cache(),
                    limits=limits or ScanLimits(), shared=shared,
                    seconds=min(PREFETCH_SECONDS, config.verify.deadline_seconds)).start()

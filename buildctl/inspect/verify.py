"""Verify pushed image bytes: the platform set, each platform's config, and the bytes of each
platform's final filesystem — from the registry, without pulling anything into the engine.

Checks (``Check.name``): ``platforms`` (image-wide), then per platform ``config``, ``elf`` (the
entrypoint), ``elf-files`` (every ELF file) and ``interp`` (every PT_INTERP): see elf_checks.
Attestation manifests in an index are recognised by the annotation buildx puts on them
(``vnd.docker.reference.type: attestation-manifest``, see
https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md), never by
their ``unknown/unknown`` platform.

Bounded: one Deadline per image covers every request; all reads run in daemon threads
(inspect.threads), so SIGINT/SIGTERM end a verification however the registry behaves. A platform
image's verdict is cached by its manifest digest (with the allow-list), so a warm rebuild reads
one index per image.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from buildctl.errors import OperationError, UsageError
from buildctl.inspect import threads
from buildctl.inspect.elf_checks import (
    NO_COMMAND,
    check_elf_files,
    check_entrypoint,
    check_interp,
    visible_elf_files,
)
from buildctl.inspect.image_fs import LayeredView, LayerTable
from buildctl.inspect.layers import (
    LayerCache,
    ScanLimits,
    scan_layer,
    shared_layer_cache,
)
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.platforms import Platform, PlatformError
from buildctl.references import ImageReference, parse_reference
from buildctl.registry.bounds import DEFAULT_DEADLINE_SECONDS, Deadline, LimitError
from buildctl.registry.client import Manifest, RegistryClient
from buildctl.registry.wire import parse_json

__all__ = ["NO_COMMAND", "VerifyOptions", "check_platform_set", "verify_image", "verify_images"]

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_VALUE = "attestation-manifest"
MAX_IMAGE_WORKERS = 8
MAX_INDEX_ENTRIES = 256  # manifests in one index (platforms and attestations)
MAX_LAYERS = 256  # layers of one platform image (overlayfs stacks at most 128 below Docker)
MAX_IMAGE_ENTRIES = 500_000  # tar entries of one platform image, all layers
VERDICT_VERSION = 1


@dataclass(frozen=True)
class VerifyOptions:
    """services.yaml ``verify:``: files meant to be foreign, and the per-image deadline."""

    allow_foreign: tuple[str, ...] = ()
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    limits: ScanLimits = field(default_factory=ScanLimits)


def parse_platform(text: str) -> str:
    """Normalise a user-written platform such as ``linux/arm64/v8``; UsageError when unsupported."""
    try:
        return str(Platform.parse(text))
    except PlatformError as exc:
        raise UsageError(str(exc)) from None


def _platform_of(spec: Mapping[str, Any] | None) -> str:
    spec = spec or {}
    return str(Platform.of(str(spec.get("os", "unknown")), str(spec.get("architecture", "unknown")),
                           spec.get("variant")))


def is_attestation(descriptor: Mapping[str, Any]) -> bool:
    return (descriptor.get("annotations") or {}).get(ATTESTATION_ANNOTATION) == ATTESTATION_VALUE


def check_platform_set(required: Sequence[str], present: Sequence[str], *, exact: bool, ignored: int = 0) -> Check:
    """The image-wide check: every required platform present, once; with ``exact``, nothing else."""
    problems = [f"missing {p}" for p in required if p not in present]
    problems += [f"{p} appears {present.count(p)} times" for p in dict.fromkeys(present) if present.count(p) > 1]
    if exact:
        problems += [f"unexpected {p} (exact platform set required)" for p in present if p not in required]
    has = ", ".join(dict.fromkeys(present)) or "no platforms"
    if problems:
        return Check("", "platforms", CheckStatus.FAIL, f"{'; '.join(problems)} (image has {has})")
    note = f" ({ignored} attestation manifest{'s' if ignored != 1 else ''} ignored)" if ignored else ""
    return Check("", "platforms", CheckStatus.PASS, has + note)


def _argv_present(config: Mapping[str, Any]) -> bool:
    settings = config.get("config") or {}
    return bool(settings.get("Entrypoint") or settings.get("Cmd"))


@contextmanager
def _parsing(what: str) -> Iterator[None]:
    """Registry JSON that lacks what the specs require is a broken image, not a buildctl bug."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise OperationError(f"{what} is malformed ({type(exc).__name__}: {exc})") from None


def _descriptor(d: Any) -> tuple[str, int | None]:
    size = d.get("size")
    return d["digest"], size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


class _Verifier:
    def __init__(self, ref: ImageReference, client: RegistryClient, layers: LayerCache, options: VerifyOptions,
                 deadline: Deadline) -> None:
        self.ref, self.client, self.layers, self.options, self.deadline = ref, client, layers, options, deadline

    def platform(self, index_platform: str | None, manifest: Manifest) -> tuple[str, list[Check]]:
        """The per-platform checks; ``index_platform`` is None for a lone manifest."""
        where = index_platform or "?"
        if manifest.is_index:
            return where, [Check(where, "config", CheckStatus.FAIL, f"{manifest.digest} is a nested index, not an image")]
        key = self._verdict_key(manifest.digest, index_platform)
        cached = self.layers.verdict(key)
        if isinstance(cached, dict) and cached.get("v") == VERDICT_VERSION:
            return cached["platform"], [Check(*row) for row in cached["checks"]]
        platform, checks = self._platform(index_platform, manifest)
        self.layers.store_verdict(key, {"v": VERDICT_VERSION, "platform": platform,
                                        "checks": [[c.platform, c.name, str(c.status), c.detail] for c in checks]})
        return platform, checks

    def _verdict_key(self, digest: str, index_platform: str | None) -> str:
        what = json.dumps([VERDICT_VERSION, index_platform, list(self.options.allow_foreign)])
        return f"{digest}/{hashlib.sha256(what.encode()).hexdigest()[:16]}"

    def _platform(self, index_platform: str | None, manifest: Manifest) -> tuple[str, list[Check]]:
        with _parsing(f"manifest {self.ref.name}@{manifest.digest}"):
            body = manifest.json()
            config_digest, config_size = _descriptor(body["config"])
            layer_descriptors = [_descriptor(la) for la in body.get("layers") or []]
        if len(layer_descriptors) > MAX_LAYERS:
            raise LimitError(f"{len(layer_descriptors)} layers (limit: {MAX_LAYERS} per image)")
        with _parsing(f"image config {config_digest} of {self.ref.name}"):
            raw = self.client.get_blob(self.ref, config_digest, size=config_size, deadline=self.deadline)
            config = _config_json(raw, f"image config {config_digest}")
            actual = _platform_of(config)
        platform = index_platform or actual
        if index_platform is None:
            checks = [Check(platform, "config", CheckStatus.SKIP, f"single-platform manifest: no index entry to compare; "
                                                      f"config says {actual}")]
        elif actual == index_platform:
            checks = [Check(platform, "config", CheckStatus.PASS, f"config says {actual}")]
        else:
            detail = f"index says {index_platform} but the image config says {actual}"
            checks = [Check(platform, "config", CheckStatus.FAIL, detail)]
        tables = threads.map_in_threads(self._layer, layer_descriptors, name="verify-layer", deadline=self.deadline)
        if sum(len(t.entries) for t in tables) > MAX_IMAGE_ENTRIES:
            raise LimitError(f"more than {MAX_IMAGE_ENTRIES} tar entries in all layers (limit per image)")
        view = LayeredView(tables)
        files = visible_elf_files(view)
        allow = self.options.allow_foreign
        with _parsing(f"image config {config_digest} of {self.ref.name}"):
            entrypoint = check_entrypoint(platform, view, config)
        return platform, [*checks, entrypoint, check_elf_files(platform, files, allow),
                          check_interp(platform, view, files, allow)]

    def _layer(self, descriptor: tuple[str, int | None]) -> LayerTable:
        digest, size = descriptor
        what = f"layer {digest}"
        limits, deadline = self.options.limits, self.deadline
        return self.layers.get(digest, lambda: self.client.stream_blob(
            self.ref, digest, lambda body: scan_layer(body, limits=limits, deadline=deadline, what=what),
            size=size, deadline=deadline), deadline=deadline)

    def entry(self, platform: str, digest: str) -> list[Check]:
        try:
            manifest = self.client.get_manifest(self.ref.with_digest(digest).with_tag(None), deadline=self.deadline)
            return self.platform(platform, manifest)[1]
        except OperationError as exc:
            raise _located(exc, f"{self.ref.name}@{digest} {platform}") from None


def _config_json(raw: bytes, what: str) -> dict[str, Any]:
    doc = parse_json(raw, what=what)
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    return doc


def _located(exc: OperationError, where: str) -> OperationError:
    """The same error, its one line starting with the image and platform it concerns."""
    if exc.message.startswith(where):
        return exc
    return type(exc)(f"{where}: {exc.message}", hint=exc.hint)


def verify_image(
    reference: str,
    *,
    platforms: Sequence[str],
    exact: bool = True,
    client: RegistryClient,
    layers: LayerCache | None = None,
    options: VerifyOptions = VerifyOptions(),
) -> Verification:
    """Verify one image (index or single manifest) against the ``platforms`` it must provide,
    within ``options.deadline_seconds``; interruptible from the main thread at any moment."""
    try:
        ref = parse_reference(reference)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    required = [parse_platform(p) for p in platforms]
    deadline = Deadline(options.deadline_seconds, what=f"verification of {ref}")
    verifier = _Verifier(ref, client, layers or shared_layer_cache(), options, deadline)
    future = threads.start(lambda: _verify(verifier, ref, required, exact=exact), name="verify-image")
    return threads.wait(future, deadline=deadline)


def _verify(verifier: _Verifier, ref: ImageReference, required: list[str], *, exact: bool) -> Verification:
    client, deadline = verifier.client, verifier.deadline
    top = client.get_manifest(ref, deadline=deadline)
    pinned = f"{ref.name}@{top.digest}"
    if not top.is_index:
        try:
            platform, checks = verifier.platform(None, top)
        except OperationError as exc:
            raise _located(exc, pinned) from None
        return Verification(pinned, None, (PlatformImage(platform, top.digest),),
                            (check_platform_set(required, [platform], exact=exact), *checks))
    with _parsing(f"index {pinned}"):
        descriptors = top.json().get("manifests") or []
        if len(descriptors) > MAX_INDEX_ENTRIES:
            raise LimitError(f"index {pinned} lists {len(descriptors)} manifests (limit: {MAX_INDEX_ENTRIES})")
        images = [d for d in descriptors if not is_attestation(d)]
        entries = [(_platform_of(d.get("platform")), d["digest"]) for d in images]
    platform_check = check_platform_set(required, [p for p, _ in entries], exact=exact,
                                        ignored=len(descriptors) - len(images))
    per_platform = threads.map_in_threads(lambda e: verifier.entry(*e), entries, name="verify-platform",
                                          deadline=deadline)
    return Verification(
        pinned,
        top.digest,
        tuple(PlatformImage(p, d) for p, d in entries),
        (platform_check, *(check for checks in per_platform for check in checks)),
    )


def verify_images(
    references: Sequence[str],
    *,
    platforms: Sequence[str] | Sequence[Sequence[str]],
    exact: bool = True,
    client: RegistryClient,
    layers: LayerCache | None = None,
    options: VerifyOptions = VerifyOptions(),
) -> tuple[Verification, ...]:
    """verify_image for each reference, concurrently; results in the order given.

    ``platforms`` is one list for every image, or one list per image (as many as references).
    """
    if not references:
        return ()
    if platforms and not isinstance(platforms[0], str):
        if len(platforms) != len(references):
            raise ValueError(f"{len(platforms)} platform lists for {len(references)} references")
        per_image = [list(p) for p in platforms]
    else:
        per_image = [list(platforms)] * len(references)  # type: ignore[arg-type]
    cache = layers or shared_layer_cache()
    slots = threading.BoundedSemaphore(MAX_IMAGE_WORKERS)

    def one(job: tuple[str, list[str]]) -> Verification:
        with slots:  # each image's deadline starts when its verification does
            return verify_image(job[0], platforms=job[1], exact=exact, client=client, layers=cache, options=options)

    return tuple(threads.map_in_threads(one, list(zip(references, per_image, strict=True)), name="verify"))


def platform_digests(client: RegistryClient, reference: str) -> set[str]:
    """The image manifest digests an index (or lone manifest) holds, attestations excluded."""
    manifest = client.get_manifest(reference, deadline=Deadline(what=f"reading {reference}"))
    if not manifest.is_index:
        return {manifest.digest}
    with _parsing(f"index {reference}"):
        return {d["digest"] for d in manifest.json()["manifests"] if not is_attestation(d)}

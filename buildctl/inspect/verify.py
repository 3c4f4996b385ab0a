"""Verify pushed image bytes: the platform set, each platform's config, and the bytes of each
platform's final filesystem — from the registry, without pulling anything into the engine.

Checks (``Check.name``): ``platforms`` (image-wide), then per platform ``config``, ``elf`` (the
entrypoint), ``elf-files`` (every ELF file), ``interp`` (every PT_INTERP) and, on arm64,
``page-size`` (every PT_LOAD against ``verify.page_size``): see elf_checks. A blob that is shorter
or longer than its descriptor's ``size`` fails (a pull would: containerd checks it), and so does
a platform manifest of another size than its index entry says. Attestation manifests are skipped
(descriptors.is_attestation).

Bounded: one Deadline per image covers every request; all reads run in daemon threads
(inspect.threads), so SIGINT/SIGTERM end a verification however the registry behaves. A platform
image's verdict is cached by its manifest digest (with the allow-list), so a warm rebuild reads
one index per image.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from buildctl.errors import OperationError, UsageError
from buildctl.inspect import elf, threads
from buildctl.inspect.descriptors import (
    Descriptor,
    check_size,
    config_json,
    is_attestation,
    parsing,
    platform_of,
    sized_descriptor,
)
from buildctl.inspect.elf_checks import (
    NO_COMMAND,
    check_elf_files,
    check_entrypoint,
    check_interp,
    check_page_size,
    visible_elf_files,
    working_dir,
)
from buildctl.inspect.image_fs import LayeredView, LayerTable
from buildctl.inspect.layers import (
    LayerCache,
    ScanLimits,
    shared_layer_cache,
)
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.inspect.layer_reads import read_layer
from buildctl.inspect.shared_tables import SharedTables
from buildctl.platforms import Platform, PlatformError
from buildctl.references import ImageReference, parse_reference
from buildctl.registry.bounds import DEFAULT_DEADLINE_SECONDS, Deadline, LimitError
from buildctl.registry.client import Manifest, RegistryClient

__all__ = ["NO_COMMAND", "VerifyOptions", "check_platform_set", "page_size_bytes", "read_layer", "verify_image",
           "verify_images"]

MAX_IMAGE_WORKERS = 8
MAX_INDEX_ENTRIES = 256  # manifests in one index (platforms and attestations)
MAX_LAYERS = 256  # layers of one platform image (overlayfs stacks at most 128 below Docker)
MAX_IMAGE_ENTRIES = 500_000  # tar entries of one platform image, all layers
VERDICT_VERSION = 5  # 2: the page-size check; 3: ELF files the kernel would refuse to load; 4: implied
# directories shadow, a trailing "/" after a file, 5 nested #! scripts at most, a string Entrypoint/Cmd;
# 5: the config's User: a name docker cannot resolve, a #! script it cannot read, what env execs as it


@dataclass(frozen=True)
class VerifyOptions:
    """services.yaml ``verify:``: files meant to be foreign, the per-image deadline, and the page
    size (bytes) of the arm64 nodes' kernels."""

    allow_foreign: tuple[str, ...] = ()
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    limits: ScanLimits = field(default_factory=ScanLimits)
    page_size: int = elf.PAGE_SIZES["4k"]
    shared: SharedTables | None = field(default=None, compare=False)  # tables shared through the registry

    def __post_init__(self) -> None:
        if self.page_size not in elf.PAGE_SIZES.values():
            raise ValueError(f"page size {self.page_size}: expected one of {sorted(elf.PAGE_SIZES.values())}")


def page_size_bytes(name: str) -> int:
    """``verify.page_size`` / ``--page-size`` (``4k``, ``16k``, ``64k``) in bytes; UsageError otherwise."""
    size = elf.PAGE_SIZES.get(name)
    if size is None:
        raise UsageError(f"page size {name!r}: expected {', '.join(elf.PAGE_SIZES)} (the arm64 nodes' kernel page size)")
    return size


def parse_platform(text: str) -> str:
    """Normalise a user-written platform such as ``linux/arm64/v8``; UsageError when unsupported."""
    try:
        return str(Platform.parse(text))
    except PlatformError as exc:
        raise UsageError(str(exc)) from None


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


class _Verifier:
    def __init__(self, ref: ImageReference, client: RegistryClient, layers: LayerCache, options: VerifyOptions,
                 deadline: Deadline) -> None:
        self.ref, self.client, self.layers, self.options, self.deadline = ref, client, layers, options, deadline
        self.shared_used = False  # a table shared through the registry stood for a layer read

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
        if not self.shared_used:  # a shared table vouches for its own repository's images only: no verdict
            self.layers.store_verdict(key, {"v": VERDICT_VERSION, "platform": platform,  # for any other
                                            "checks": [[c.platform, c.name, str(c.status), c.detail] for c in checks]})
        return platform, checks

    def _verdict_key(self, digest: str, index_platform: str | None) -> str:
        what = json.dumps([VERDICT_VERSION, index_platform, list(self.options.allow_foreign), self.options.page_size])
        return f"{digest}/{hashlib.sha256(what.encode()).hexdigest()[:16]}"

    def _platform(self, index_platform: str | None, manifest: Manifest) -> tuple[str, list[Check]]:
        with parsing(f"manifest {self.ref.name}@{manifest.digest}"):
            body = manifest.json()
            config = sized_descriptor(body["config"], "image config")
            layer_descriptors = [sized_descriptor(la, "layer") for la in body.get("layers") or []]
        if len(layer_descriptors) > MAX_LAYERS:
            raise LimitError(f"{len(layer_descriptors)} layers (limit: {MAX_LAYERS} per image)")
        # The layers are read beside the config, not after it: one round trip less per image.
        reading = threads.start(lambda: threads.map_in_threads(self._layer, layer_descriptors, name="verify-layer",
                                                               deadline=self.deadline), name="verify-layers")
        with parsing(f"image config {config.digest} of {self.ref.name}"):
            raw = self.client.get_blob(self.ref, config.digest, size=config.size, deadline=self.deadline)
            settings = config_json(raw, f"image config {config.digest}")
            actual = platform_of(settings)
        platform = index_platform or actual
        if index_platform is None:
            checks = [Check(platform, "config", CheckStatus.SKIP, f"single-platform manifest: no index entry to compare; "
                                                      f"config says {actual}")]
        elif actual == index_platform:
            checks = [Check(platform, "config", CheckStatus.PASS, f"config says {actual}")]
        else:
            detail = f"index says {index_platform} but the image config says {actual}"
            checks = [Check(platform, "config", CheckStatus.FAIL, detail)]
        tables = threads.wait(reading, deadline=self.deadline)
        if sum(len(t.entries) for t in tables) > MAX_IMAGE_ENTRIES:
            raise LimitError(f"more than {MAX_IMAGE_ENTRIES} tar entries in all layers (limit per image)")
        view = LayeredView(tables)
        files = visible_elf_files(view)
        allow = self.options.allow_foreign
        with parsing(f"image config {config.digest} of {self.ref.name}"):
            entrypoint = check_entrypoint(platform, view, settings)
            workdir = working_dir(settings)
        pages = check_page_size(platform, files, allow, self.options.page_size)
        return platform, [*checks, entrypoint, check_elf_files(platform, files, allow),
                          check_interp(platform, view, files, allow, workdir=workdir),
                          *([pages] if pages else [])]

    def _layer(self, layer: Descriptor) -> LayerTable:
        return read_layer(self.client, self.ref, layer, cache=self.layers, limits=self.options.limits,
                          deadline=self.deadline, shared=self.options.shared, on_shared=self._used_shared)

    def _used_shared(self) -> None:
        self.shared_used = True

    def entry(self, platform: str, entry: Descriptor) -> list[Check]:
        digest = entry.digest
        try:
            manifest = self.client.get_manifest(self.ref.with_digest(digest).with_tag(None), deadline=self.deadline)
            check_size(f"manifest {digest}", manifest.content, entry.size)
            return self.platform(platform, manifest)[1]
        except OperationError as exc:
            raise _located(exc, f"{self.ref.name}@{digest} {platform}") from None


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
    with parsing(f"index {pinned}"):
        descriptors = top.json().get("manifests") or []
        if len(descriptors) > MAX_INDEX_ENTRIES:
            raise LimitError(f"index {pinned} lists {len(descriptors)} manifests (limit: {MAX_INDEX_ENTRIES})")
        images = [d for d in descriptors if not is_attestation(d)]
        entries = [(platform_of(d.get("platform")), sized_descriptor(d, "platform manifest")) for d in images]
    platform_check = check_platform_set(required, [p for p, _ in entries], exact=exact,
                                        ignored=len(descriptors) - len(images))
    per_platform = threads.map_in_threads(lambda e: verifier.entry(*e), entries, name="verify-platform",
                                          deadline=deadline)
    return Verification(
        pinned,
        top.digest,
        tuple(PlatformImage(p, d.digest) for p, d in entries),
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
    with parsing(f"index {reference}"):
        return {d["digest"] for d in manifest.json()["manifests"] if not is_attestation(d)}

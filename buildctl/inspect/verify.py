"""Verify pushed image bytes: the platform set, each platform's config, and the ELF machine of
the entrypoint — from the registry, without pulling anything into the engine.

Checks (``Check.name``): ``platforms`` (image-wide), then per platform ``config`` and ``elf``.
Attestation manifests in an index are recognised by the annotation buildx puts on them
(``vnd.docker.reference.type: attestation-manifest``, see
https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md), never by
their ``unknown/unknown`` platform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from buildctl.errors import OperationError, UsageError
from buildctl.inspect import elf
from buildctl.inspect.image_fs import (
    LayeredView,
    LayerTable,
    ResolveError,
    normalize,
    resolve_command,
)
from buildctl.inspect.layers import LayerCache, scan_layer, shared_layer_cache
from buildctl.inspect.results import Check, CheckStatus, PlatformImage, Verification
from buildctl.platforms import Platform, PlatformError
from buildctl.references import ImageReference, parse_reference
from buildctl.registry.client import Manifest, RegistryClient

ATTESTATION_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_VALUE = "attestation-manifest"
NO_COMMAND = "no ENTRYPOINT/CMD; architecture of the bytes not checked"
MAX_IMAGE_WORKERS = 8


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


def check_elf(platform: str, view: LayeredView, config: Mapping[str, Any]) -> Check:
    """Resolve the entrypoint in ``view`` and compare every ELF on the way with ``platform``."""
    os_name, _, arch = platform.partition("/")
    arch = arch.partition("/")[0]
    expected = elf.expected_for(arch)
    if os_name != "linux" or expected is None:
        return Check(platform, "elf", CheckStatus.SKIP, f"no ELF machine known for {platform}; not checked")
    settings = config.get("config") or {}
    argv = list(settings.get("Entrypoint") or []) + list(settings.get("Cmd") or [])
    if not argv:
        return Check(platform, "elf", CheckStatus.SKIP, NO_COMMAND)
    env = dict(item.partition("=")[::2] for item in settings.get("Env") or [])
    workdir = normalize(settings.get("WorkingDir") or "/")
    try:
        resolution = resolve_command(view, argv, path_env=env.get("PATH"), workdir=workdir)
    except ResolveError as exc:
        return Check(platform, "elf", CheckStatus.FAIL, f"cannot start {json.dumps(argv[0])}: {exc}")
    wrong = [f"{path} is {ident.describe()}, expected {expected.name}"
             for path, ident in resolution.binaries if not expected.matches(ident)]
    if wrong:
        return Check(platform, "elf", CheckStatus.FAIL, "; ".join(wrong))
    chain = " -> ".join(resolution.chain)
    return Check(platform, "elf", CheckStatus.PASS, f"{chain}: {resolution.binaries[-1][1].describe()}")


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


class _Verifier:
    def __init__(self, ref: ImageReference, client: RegistryClient, layers: LayerCache) -> None:
        self.ref, self.client, self.layers = ref, client, layers

    def platform(self, index_platform: str | None, manifest: Manifest) -> tuple[str, list[Check]]:
        """config and elf checks of one platform; ``index_platform`` is None for a lone manifest."""
        where = index_platform or "?"
        if manifest.is_index:
            return where, [Check(where, "config", CheckStatus.FAIL, f"{manifest.digest} is a nested index, not an image")]
        with _parsing(f"manifest {self.ref.name}@{manifest.digest}"):
            body = manifest.json()
            config_digest, layer_digests = body["config"]["digest"], [la["digest"] for la in body.get("layers") or []]
        with _parsing(f"image config {config_digest} of {self.ref.name}"):
            config = json.loads(self.client.get_blob(self.ref, config_digest))
            actual = _platform_of(config)
            has_command = _argv_present(config)
        platform = index_platform or actual
        if index_platform is None:
            checks = [Check(platform, "config", CheckStatus.SKIP, f"single-platform manifest: no index entry to compare; "
                                                      f"config says {actual}")]
        elif actual == index_platform:
            checks = [Check(platform, "config", CheckStatus.PASS, f"config says {actual}")]
        else:
            detail = f"index says {index_platform} but the image config says {actual}"
            checks = [Check(platform, "config", CheckStatus.FAIL, detail)]
        if not has_command:
            return platform, [*checks, Check(platform, "elf", CheckStatus.SKIP, NO_COMMAND)]
        tables = [self._layer(digest) for digest in layer_digests]
        with _parsing(f"image config {config_digest} of {self.ref.name}"):
            return platform, [*checks, check_elf(platform, LayeredView(tables), config)]

    def _layer(self, digest: str) -> LayerTable:
        return self.layers.get(digest, lambda: self.client.stream_blob(self.ref, digest, scan_layer))

    def entry(self, platform: str, digest: str) -> list[Check]:
        return self.platform(platform, self.client.get_manifest(self.ref.with_digest(digest).with_tag(None)))[1]


def verify_image(
    reference: str,
    *,
    platforms: Sequence[str],
    exact: bool = True,
    client: RegistryClient,
    layers: LayerCache | None = None,
) -> Verification:
    """Verify one image (index or single manifest) against the ``platforms`` it must provide."""
    try:
        ref = parse_reference(reference)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    required = [parse_platform(p) for p in platforms]
    verifier = _Verifier(ref, client, layers or shared_layer_cache())
    top = client.get_manifest(ref)
    pinned = f"{ref.name}@{top.digest}"
    if not top.is_index:
        platform, checks = verifier.platform(None, top)
        return Verification(pinned, None, (PlatformImage(platform, top.digest),),
                            (check_platform_set(required, [platform], exact=exact), *checks))
    with _parsing(f"index {pinned}"):
        descriptors = top.json().get("manifests") or []
        images = [d for d in descriptors if not is_attestation(d)]
        entries = [(_platform_of(d.get("platform")), d["digest"]) for d in images]
    platform_check = check_platform_set(required, [p for p, _ in entries], exact=exact,
                                        ignored=len(descriptors) - len(images))
    with ThreadPoolExecutor(max_workers=max(len(entries), 1), thread_name_prefix="verify-platform") as pool:
        per_platform = list(pool.map(lambda e: verifier.entry(*e), entries))
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
    with ThreadPoolExecutor(max_workers=min(len(references), MAX_IMAGE_WORKERS), thread_name_prefix="verify") as pool:
        futures = [pool.submit(verify_image, r, platforms=p, exact=exact, client=client, layers=cache)
                   for r, p in zip(references, per_image, strict=True)]
        return tuple(f.result() for f in futures)


def platform_digests(client: RegistryClient, reference: str) -> set[str]:
    """The image manifest digests an index (or lone manifest) holds, attestations excluded."""
    manifest = client.get_manifest(reference)
    if not manifest.is_index:
        return {manifest.digest}
    with _parsing(f"index {reference}"):
        return {d["digest"] for d in manifest.json()["manifests"] if not is_attestation(d)}

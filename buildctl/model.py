"""Frozen data passed between pipeline steps.

Data flows one way: Config -> Plan -> BuildResult -> Verification -> GitOpsChange -> record.
Only plain values live here; no module in this file does I/O.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(items or {}))


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class GitOpsFile:
    """A manifest file in the GitOps repository that a service updates.

    ``containers`` names the containers (or kustomize image names) to touch; empty means every
    container whose image repository equals the service's image repository.
    """

    path: str  # relative to the GitOps repository root, POSIX separators
    containers: tuple[str, ...] = ()
    helm: HelmKeys | None = None  # set: a Helm values file, edited at these keys


@dataclass(frozen=True)
class HelmKeys:
    """Where Helm values keep a service's image: dotted key paths (``image.tag``; a number indexes a
    list: ``sidecars.0.image.tag``), in one of three layouts:

    - split: ``repository`` + ``tag`` (+ ``digest``; + ``registry``, which None finds by itself when
      a ``registry`` key stands beside the repository key, as Bitnami and Grafana charts have it);
    - ``image``: one value holding ``repo:tag[@digest]``;
    - ``prefix``: the chart prints ``PREFIX/<name>:TAG`` for many services from one prefix and one
      ``tag`` key (microservices-demo).
    ``digest`` None: with digest pinning the tag is written as ``TAG@sha256:...``.
    """

    repository: str | None = "image.repository"
    tag: str | None = "image.tag"
    digest: str | None = None
    registry: str | None = None
    image: str | None = None
    prefix: str | None = None

    @property
    def named(self) -> tuple[str, ...]:
        """Every key path this names, in the order the layout reads them."""
        keys = (self.image,) if self.image else (self.registry, self.prefix, self.repository, self.tag, self.digest)
        return tuple(k for k in keys if k)


class TagOrder(StrEnum):
    """How release tags compare, so an older release never replaces a newer one (gitops.tag_order)."""

    AUTO = "auto"  # semver, numeric or lexical (fixed-width dates), whichever both tags fit
    SEMVER = "semver"
    NUMERIC = "numeric"
    LEXICAL = "lexical"
    NONE = "none"  # the last writer wins


@dataclass(frozen=True)
class SignConfig:
    """``sign:``: cosign signs every verified index digest with ``key`` (a path or a cosign KMS URI);
    the key's password is read from the environment variable ``password_env``, never argv."""

    key: str
    password_env: str = "COSIGN_PASSWORD"


@dataclass(frozen=True)
class GitOpsConfig:
    repo: str  # URL (https, ssh, file) or local path (absolute, resolved against services.yaml)
    branch: str = "main"
    pin_digest: bool = False
    message: str = "release {tag}: {summary}"
    author_name: str = "buildctl"
    author_email: str = "buildctl@localhost"
    push_branch: str | None = None  # push to this new branch (for a pull request) instead
    push_retries: int = 8
    tag_order: TagOrder = TagOrder.AUTO
    render_check: bool = True  # kustomize build touched kustomizations before pushing


class Driver(StrEnum):
    """buildx drivers buildctl can create builders with."""

    DOCKER = "docker"  # the engine's built-in builder (named after a Docker context)
    DOCKER_CONTAINER = "docker-container"  # BuildKit in a container on the engine
    REMOTE = "remote"  # BuildKit daemons buildx connects to (tcp://, unix://)
    KUBERNETES = "kubernetes"  # BuildKit pods in a cluster


@dataclass(frozen=True)
class BuilderNode:
    """One node of a builder: `docker buildx create [--append]` each.

    ``endpoint`` "" is the driver's default (the current Docker context); ``platforms`` () lets
    BuildKit report what it can build (one node of a builder may leave them out).
    """

    endpoint: str = ""
    platforms: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class BuilderConfig:
    name: str = "default"
    driver: Driver = Driver.DOCKER
    driver_opts: Mapping[str, str] = field(default_factory=frozen_map)  # every node's, under its own
    config: Path | None = None  # buildkitd.toml (absolute) -> --buildkitd-config
    nodes: tuple[BuilderNode, ...] = ()  # () = one node at the driver's default endpoint
    recreate: bool = False  # --recreate-builder (not in services.yaml): replace a builder that differs

    def effective_nodes(self) -> tuple[BuilderNode, ...]:
        """The nodes to create, each with the builder-wide driver options under its own."""
        declared = self.nodes or (BuilderNode(),)
        return tuple(
            BuilderNode(n.endpoint, n.platforms, frozen_map({**self.driver_opts, **n.driver_opts}))
            for n in declared
        )


@dataclass(frozen=True)
class BinfmtConfig:
    method: str = "host"  # host (qemu-user-static + binfmt-support) | image (privileged installer)
    image: str = "tonistiigi/binfmt:qemu-v8.1.5"


@dataclass(frozen=True)
class BuildOptions:
    provenance: bool = True
    sbom: bool = False
    pull: bool = False
    no_cache: bool = False
    # BuildKit cache specs as users write them (`type=registry,ref=REG/cache/{service},mode=max`);
    # {service}, {image} and {repository} are expanded per service by the plan.
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    # "auto": the commit time of the build context's git HEAD (unset outside git); "" never; or digits.
    source_date_epoch: str = "auto"


def csv_options(spec: str) -> dict[str, str]:
    """`type=registry,ref=r/c,mode=max` -> {"type": "registry", ...}; a bare `r/c:tag` is a registry
    ref (buildx's shorthand). Quoted fields keep their commas, as buildx's CSV reader does."""
    fields = next(csv.reader([spec]), [])
    if len(fields) == 1 and "=" not in fields[0]:
        return {"type": "registry", "ref": fields[0]}
    pairs = [f.split("=", 1) for f in fields]
    if any(len(p) != 2 or not p[0].strip() for p in pairs):
        raise ValueError(f"expected key=value[,key=value...], got {spec!r}")
    return {k.strip(): v.strip() for k, v in pairs}


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    context: Path  # absolute
    dockerfile: Path  # absolute
    image: str  # repository path in the registry, e.g. "voting-app/vote"
    platforms: tuple[str, ...]
    build_args: Mapping[str, str] = field(default_factory=frozen_map)
    secrets: Mapping[str, str] = field(default_factory=frozen_map)  # BuildKit secret id -> env var
    target: str | None = None
    manifests: tuple[GitOpsFile, ...] = ()
    smoke: tuple[str, ...] = ()  # optional command run per platform under emulation
    line: int | None = None  # where the service is defined in services.yaml
    allow_foreign: tuple[str, ...] = ()  # verify.allow_foreign: added to the top-level globs


@dataclass(frozen=True)
class VerifyConfig:
    """``verify:``: globs of files meant to be foreign (firmware, cross toolchains), the
    deadline covering every registry request of one image's verification, and the page size of
    the arm64 nodes' kernels (``4k``, ``16k`` or ``64k``)."""

    allow_foreign: tuple[str, ...] = ()
    deadline_seconds: float = 120.0
    page_size: str = "4k"
    attest: bool = True  # attach each released index's verification to it (signing/attestation.py)


@dataclass(frozen=True)
class BaseImagePolicy:
    """``policy.base_images``: where the images a build pulls may come from (``registries``: hosts,
    empty = any) and whether each must be pinned by digest; checked before the build."""

    registries: tuple[str, ...] = ()
    require_digest: bool = False


@dataclass(frozen=True)
class Config:
    path: Path  # services.yaml, absolute
    registry: str  # host[:port], e.g. 127.0.0.1:5000 or myacr.azurecr.io
    tag: str
    platforms: tuple[str, ...]
    builder: BuilderConfig
    binfmt: BinfmtConfig
    build: BuildOptions
    gitops: GitOpsConfig | None
    services: tuple[ServiceConfig, ...]
    sign: SignConfig | None = None
    verify: VerifyConfig = VerifyConfig()
    base_images: BaseImagePolicy = BaseImagePolicy()  # services.yaml policy.base_images

    @property
    def root(self) -> Path:
        return self.path.parent

    def with_gitops(self, *, repo: str | None = None, branch: str | None = None,
                    pin_digest: bool | None = None) -> Config:
        """This configuration with command-line overrides of the gitops section, applied once."""
        if repo is None and branch is None and pin_digest is None:
            return self
        gitops = self.gitops or GitOpsConfig(repo=repo or "")
        changes = {k: v for k, v in (("repo", repo), ("branch", branch), ("pin_digest", pin_digest)) if v is not None}
        return replace(self, gitops=replace(gitops, **changes))

    def gitops_files(self) -> dict[str, tuple[GitOpsFile, ...]]:
        """Per service with ``manifests:``, the GitOps files it updates."""
        return {s.name: s.manifests for s in self.services if s.manifests}

    def all_platforms(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for svc in self.services:
            seen.update(dict.fromkeys(svc.platforms))
        return tuple(seen)


# --------------------------------------------------------------------------- statuses


class Phase(StrEnum):
    """Where one service x platform of a release stands (the progress display's rows)."""

    QUEUED = "queued"
    BUILDING = "building"
    PUSHING = "pushing"
    PUSHED = "pushed"
    VERIFYING = "verifying"
    VERIFIED = "verified"
    VERIFICATION_FAILED = "verification failed"
    WAITING = "waiting: another run is releasing this tag"  # registry/claims.py
    REUSED = "reused"  # inputs unchanged: the index released before, not rebuilt (pipeline/reuse.py)
    TAGGED = "tagged"
    FAILED = "failed"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    step: tuple[int, int] | None = None  # (n, m) of the BuildKit steps, while building
    detail: str = ""  # after the phase, as it is shown: " (inputs sha256:..., from TAG)" when reused

    def __str__(self) -> str:
        return f"{self.phase} step {self.step[0]}/{self.step[1]}" if self.step else f"{self.phase}{self.detail}"


# (service, platform or "" for all of its platforms, progress): how steps report to the display.
ProgressFn = Callable[[str, str, Progress], None]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReleasedImage:
    """A verified, promoted image: what the GitOps step writes into manifests."""

    service: str
    repository: str  # registry/path
    tag: str
    digest: str  # index digest recorded by the build


@dataclass(frozen=True)
class BuildSpec:
    """One `docker buildx build` for all of a service's platforms."""

    service: str
    context: Path
    dockerfile: Path
    platforms: tuple[str, ...]
    staging_ref: str  # repository:staging-tag, what the build pushes
    build_args: Mapping[str, str] = field(default_factory=frozen_map)
    secrets: Mapping[str, str] = field(default_factory=frozen_map)
    target: str | None = None
    options: BuildOptions = field(default_factory=BuildOptions)  # cache specs expanded for this service
    source_date_epoch: str | None = None  # SOURCE_DATE_EPOCH build arg
    rewrite_timestamp: bool = False  # image exporter clamps timestamps to it (not on the docker driver)
    builder: str = "default"  # the buildx builder it runs on (--builder)
    metadata_file: Path | None = None  # where buildx writes the index digest (in the run's folder)
    by_digest: bool = False  # pushed by digest only, no tag at all (`build --by-digest`, native agents)
    annotations: Mapping[str, str] = field(default_factory=frozen_map)  # `index:dev.buildctl.inputs` -> digest

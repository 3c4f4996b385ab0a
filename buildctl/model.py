"""Frozen data passed between pipeline steps.

Data flows one way: Config -> Plan -> BuildResult -> Verification -> ManifestChange -> record.
Only plain values live here; no module in this file does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(items or {}))


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ManifestTarget:
    """A manifest file in the GitOps repository that a service updates.

    ``containers`` names the containers (or kustomize image names) to touch; empty means every
    container whose image repository equals the service's image repository.
    """

    path: str  # relative to the GitOps repository root, POSIX separators
    containers: tuple[str, ...] = ()


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


@dataclass(frozen=True)
class BuilderConfig:
    name: str = "default"
    driver: str = "docker"  # docker | docker-container
    driver_opts: Mapping[str, str] = field(default_factory=frozen_map)


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
    cache_from: tuple[str, ...] = ()
    cache_to: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=frozen_map)


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
    manifests: tuple[ManifestTarget, ...] = ()
    smoke: tuple[str, ...] = ()  # optional command run per platform under emulation
    line: int | None = None  # where the service is defined in services.yaml


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

    @property
    def root(self) -> Path:
        return self.path.parent

    def service(self, name: str) -> ServiceConfig:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise KeyError(name)

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
    TAGGED = "tagged"
    FAILED = "failed"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    step: tuple[int, int] | None = None  # (n, m) of the BuildKit steps, while building

    def __str__(self) -> str:
        return f"{self.phase} step {self.step[0]}/{self.step[1]}" if self.step else str(self.phase)


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



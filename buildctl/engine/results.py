"""What the engine steps report: the engine, builders, binfmt handlers, locally loaded images.

Plain frozen data, beside the code that produces it (docker.py, builders.py, binfmt.py) but in a
module of its own, so the renderer and the release record can import these types without
loading python-on-whales.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BinfmtAction(StrEnum):
    NATIVE = "native"  # no emulation needed
    UNCHANGED = "unchanged"  # a correct handler was there already
    REGISTERED = "registered"


class BuilderAction(StrEnum):
    REUSED = "reused"
    CREATED = "created"


@dataclass(frozen=True)
class EngineInfo:
    client_version: str
    server_version: str
    image_store: str  # "io.containerd.snapshotter.v1" when the containerd image store is on
    native_platform: str  # e.g. linux/amd64

    @property
    def multi_platform_store(self) -> bool:
        return self.image_store.startswith("io.containerd.snapshotter")


@dataclass(frozen=True)
class BuilderState:
    name: str
    driver: str
    status: str
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class BuilderReport:
    name: str
    driver: str
    action: BuilderAction
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class HandlerState:
    platform: str
    handler: str
    registered: bool
    enabled: bool
    flags: str
    interpreter: str

    @property
    def ok(self) -> bool:
        return self.registered and self.enabled and "F" in self.flags


@dataclass(frozen=True)
class BinfmtResult:
    platform: str
    handler: str
    action: BinfmtAction
    state: HandlerState | None
    qemu_version: str = ""
    probe: str = ""  # what the probe proved, or why it was not run


@dataclass(frozen=True)
class LocalImage:
    service: str
    platform: str
    tag: str
    image_id: str
    log_file: str

    @property
    def run_hint(self) -> str:
        return f"docker run --rm --platform {self.platform} {self.tag}"

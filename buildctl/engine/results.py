"""What the engine steps report: the engine, builders, binfmt handlers, locally loaded images.

Plain frozen data, beside the code that produces it (docker.py, builders.py, binfmt.py) but in a
module of its own, so the renderer and the release record can import these types without
loading python-on-whales.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from buildctl.platforms import normalize


class BinfmtAction(StrEnum):
    NATIVE = "native"  # no emulation needed
    UNCHANGED = "unchanged"  # a correct handler was there already
    REGISTERED = "registered"
    EMULATED = "emulated"  # the builder's own host emulates it (remote nodes): not ours to register


class BuilderAction(StrEnum):
    REUSED = "reused"
    CREATED = "created"
    RECREATED = "recreated"  # its nodes differed from services.yaml and --recreate-builder was given
    NOT_NEEDED = "not needed: every service reused"  # pipeline/reuse.py: nothing was built


@dataclass(frozen=True)
class EngineInfo:
    client_version: str
    server_version: str
    image_store: str  # "io.containerd.snapshotter.v1" when the containerd image store is on
    native_platform: str  # e.g. linux/amd64
    operating_system: str = ""  # e.g. "Debian GNU/Linux 12 (bookworm)", "Docker Desktop"

    @property
    def multi_platform_store(self) -> bool:
        return self.image_store.startswith("io.containerd.snapshotter")


@dataclass(frozen=True)
class NodeState:
    """One node as `docker buildx inspect` shows it."""

    name: str
    endpoint: str
    status: str  # running, inactive, stopped, error...
    version: str = ""  # BuildKit version, known once the node ran
    platforms: tuple[str, ...] = ()  # what it can build (native first, then emulated)
    pinned: tuple[str, ...] = ()  # the platforms set with `buildx create --platform` (`*` in inspect)
    driver_opts: tuple[tuple[str, str], ...] = ()
    error: str = ""

    @property
    def native(self) -> tuple[str, ...]:
        """The platforms this node runs without emulation: pinned ones, else the worker's own."""
        return self.pinned or self.platforms[:1]


@dataclass(frozen=True)
class BuilderState:
    name: str
    driver: str
    nodes: tuple[NodeState, ...] = ()

    @property
    def status(self) -> str:
        return self.nodes[0].status if self.nodes else "unknown"

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for n in self.nodes for p in n.platforms))


@dataclass(frozen=True)
class BuilderReport:
    name: str
    driver: str
    action: BuilderAction
    platforms: tuple[str, ...]
    nodes: tuple[NodeState, ...] = ()
    platform_nodes: tuple[tuple[str, str], ...] = ()  # (platform, node name): where each platform builds
    local: bool = True  # runs on the local engine (binfmt handlers there are the ones that matter)

    def node_of(self, platform: str) -> str:
        want = normalize(platform)
        return next((node for p, node in self.platform_nodes if normalize(p) == want), "")


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

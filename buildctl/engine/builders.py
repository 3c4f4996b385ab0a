"""Step 2: select or create the buildx builder and check it covers every platform."""

from __future__ import annotations

from buildctl import platforms as platforms_of
from buildctl.engine import docker as engine
from buildctl.engine.results import BuilderAction, BuilderReport, EngineInfo
from buildctl.errors import OperationError
from buildctl.model import BuilderConfig

DAEMON_JSON_FIX = (
    'add {"features": {"containerd-snapshotter": true}} to /etc/docker/daemon.json and restart '
    "dockerd (scripts/stack.sh up does this), or use a docker-container builder"
)


def ensure_builder(cfg: BuilderConfig, *, platforms: tuple[str, ...], info: EngineInfo) -> BuilderReport:
    state = engine.inspect_builder(cfg.name, bootstrap=True)
    action = BuilderAction.REUSED
    if state is None:
        if cfg.driver == "docker":
            raise OperationError(
                f"buildx builder {cfg.name!r} not found",
                hint="docker-driver builders are named after a Docker context (usually 'default'); "
                "set builder.name: default or builder.driver: docker-container",
            )
        state = engine.create_builder(cfg.name, driver=cfg.driver, driver_opts=cfg.driver_opts)
        action = BuilderAction.CREATED
    elif state.driver != cfg.driver:
        raise OperationError(
            f"buildx builder {cfg.name!r} uses the {state.driver} driver, services.yaml asks for {cfg.driver}",
            hint="rename the builder in services.yaml or remove the existing one (docker buildx rm NAME)",
        )
    if state.driver == "docker" and len(platforms) > 1 and not info.multi_platform_store:
        raise OperationError(
            f"the docker driver of builder {cfg.name!r} cannot build multi-platform images: the engine's "
            f"image store is {info.image_store or 'unknown'}, not the containerd image store",
            hint=DAEMON_JSON_FIX,
        )
    missing = platforms_of.missing(platforms, state.platforms)
    if missing:
        raise OperationError(
            f"buildx builder {cfg.name!r} does not support {', '.join(missing)} "
            f"(it supports {', '.join(state.platforms) or 'nothing'})",
            hint="the QEMU binfmt handler for that architecture is missing or was registered after the "
            "builder started: run `buildctl binfmt`, then restart dockerd or recreate the builder",
        )
    return BuilderReport(state.name, state.driver, action, state.platforms)

"""Step 2: select or create the buildx builder, check its nodes are up and cover every platform.

A builder that exists is reused only when its driver, nodes, endpoints, pinned platforms and
driver options match services.yaml; otherwise it is refused with what differs, and replaced only
when asked (--recreate-builder). Every node that is down is reported within a bound, never a hang.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from concurrent.futures import Future
from urllib.parse import urlsplit

from buildctl import platforms as platforms_of
from buildctl.engine import builder_spec
from buildctl.engine import docker as engine
from buildctl.engine.results import (
    BuilderAction,
    BuilderReport,
    BuilderState,
    EngineInfo,
)
from buildctl.errors import CommandError, OperationError
from buildctl.model import BuilderConfig, Driver

DAEMON_JSON_FIX = (
    'add {"features": {"containerd-snapshotter": true}} to /etc/docker/daemon.json and restart '
    "dockerd (scripts/stack.sh up does this), or use a docker-container builder"
)
CONNECT_TIMEOUT = 5.0  # per tcp:// node, before buildx's own 20 s bootstrap wait
BOOTSTRAP_TIMEOUT = 60.0  # a docker-container node may have to pull its image first


def runs_locally(cfg: BuilderConfig, info: EngineInfo, *, environ=None) -> bool:
    """Do this builder's builds run on the engine of this very host (so that its binfmt handlers
    are the ones that matter)? Not for remote/kubernetes nodes, Docker Desktop (its VM has its own
    kernel) or a DOCKER_HOST on another machine."""
    env = os.environ if environ is None else environ
    if cfg.driver not in (Driver.DOCKER, Driver.DOCKER_CONTAINER):
        return False
    if any(n.endpoint and not n.endpoint.startswith("unix://") for n in cfg.nodes):
        return False
    host = env.get("DOCKER_HOST", "")
    return (not host or host.startswith("unix://")) and "Docker Desktop" not in info.operating_system


def ensure_builder(cfg: BuilderConfig, *, platforms: tuple[str, ...], info: EngineInfo,
                   recreate: bool = False, read: Future[BuilderState | None] | None = None,
                   before_change: Callable[[], None] | None = None) -> BuilderReport:
    """``read``: ``describe(cfg)`` started earlier; its answer stands for the first inspect when it
    has one (a failed one is inspected again, so an error is the inspect's own). ``before_change``
    is called before the builder is removed, created or started: builds begun before this check
    must stop then (pipeline/release.py starts them beside it)."""
    changing = before_change or (lambda: None)
    state = _earlier(read) if read is not None else _UNREAD
    if state is _UNREAD:
        state = _inspect(cfg.name)
    action = BuilderAction.REUSED
    if cfg.driver is Driver.DOCKER and state is None:
        raise OperationError(
            f"buildx builder {cfg.name!r} not found",
            hint="docker-driver builders are named after a Docker context (usually 'default'); "
            "set builder.name: default or builder.driver: docker-container",
        )
    if state is not None and (diffs := builder_spec.differences(cfg, state)):
        if not (recreate or cfg.recreate) or cfg.driver is Driver.DOCKER or state.driver == Driver.DOCKER:
            raise OperationError(
                f"buildx builder {cfg.name!r} differs from services.yaml: {'; '.join(diffs)}",
                hint="run again with --recreate-builder to replace it, or set another builder.name"
                if state.driver != Driver.DOCKER else "set another builder.name (the docker driver's builder "
                "is the engine's own and cannot be replaced)",
            )
        changing()
        engine.buildx(("docker", "buildx", "rm", cfg.name), what=f"cannot remove buildx builder {cfg.name!r}")
        state, action = None, BuilderAction.RECREATED
    if state is None:
        changing()
        _create(cfg)
        action = BuilderAction.RECREATED if action is BuilderAction.RECREATED else BuilderAction.CREATED
    if state is None or any(n.status != "running" for n in state.nodes):
        changing()
        _check_reachable(cfg)
        state = _bootstrap(cfg, created=action is not BuilderAction.REUSED)
    _check_nodes(state)
    if state.driver == Driver.DOCKER and len(platforms) > 1 and not info.multi_platform_store:
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
            "builder started: run `buildctl binfmt`, then restart dockerd or recreate the builder"
            if runs_locally(cfg, info) else "add a node for it (builder.nodes) or enable QEMU on a node's host",
        )
    return BuilderReport(state.name, state.driver, action, state.platforms, nodes=state.nodes,
                         platform_nodes=builder_spec.platform_nodes(platforms, state),
                         local=runs_locally(cfg, info))


def describe(cfg: BuilderConfig, *, early: bool = False) -> BuilderState | None:
    """The configured builder as it is now (None if missing), starting and changing nothing.
    ``early``: as `buildx inspect` found it when the CLI started (engine/early_info.py), if it did."""
    return _inspect(cfg.name, early=early)


_UNREAD = object()  # no earlier answer to use


def _earlier(read: Future[BuilderState | None]) -> BuilderState | None | object:
    try:
        return read.result()
    except OperationError:
        return _UNREAD


def _inspect(name: str, *, early: bool = False) -> BuilderState | None:
    """The builder as it is, without starting it (a down node shows as inactive at once)."""
    try:
        text = engine.inspect_builder(name, early=early)
    except CommandError as exc:
        if "no builder" in exc.failure.output and "found" in exc.failure.output:
            return None
        raise
    return builder_spec.parse_inspect(text)


def _create(cfg: BuilderConfig) -> None:
    for argv in builder_spec.create_commands(cfg):
        try:
            engine.buildx(argv, what=f"cannot create buildx builder {cfg.name!r} (driver {cfg.driver})")
        except CommandError as exc:
            _remove_quietly(cfg.name)  # a half-made builder (some nodes appended) was ours
            if cfg.driver is Driver.KUBERNETES:
                exc.hint = ("the kubernetes driver needs a cluster: a kubeconfig (KUBECONFIG) whose current "
                            "context, or builder.nodes[].endpoint, names it")
            raise


def _remove_quietly(name: str) -> None:
    try:
        engine.buildx(("docker", "buildx", "rm", name), what=f"cannot remove buildx builder {name!r}")
    except CommandError:
        pass  # best effort: it may not have been registered at all


def _check_reachable(cfg: BuilderConfig) -> None:
    """A tcp:// node that refuses or ignores connections, named with its endpoint, in seconds."""
    for i, node in enumerate(cfg.effective_nodes()):
        parts = urlsplit(node.endpoint)
        if parts.scheme != "tcp" or cfg.driver is not Driver.REMOTE:
            continue
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc)).lower()
            raise OperationError(
                f"builder node {builder_spec.node_name(cfg, i)} ({node.endpoint}) is down: {why}",
                hint="start the BuildKit daemon on that host (here: scripts/stack.sh nodes) "
                "or fix builder.nodes[].endpoint",
            ) from None


def _bootstrap(cfg: BuilderConfig, *, created: bool) -> BuilderState:
    try:
        text = engine.buildx(builder_spec.bootstrap_command(cfg.name), what=f"cannot start buildx builder {cfg.name!r}",
                             timeout=BOOTSTRAP_TIMEOUT)
    except CommandError as exc:
        state = _inspect(cfg.name)
        down = next((n for n in state.nodes if n.status != "running"), None) if state else None
        last = (exc.failure.output.strip().splitlines() or ["?"])[-1]
        if created and cfg.driver is Driver.DOCKER_CONTAINER:
            _remove_quietly(cfg.name)  # its image could not start: leave no broken builder behind
        where = f"node {down.name} ({down.endpoint or 'local engine'})" if down else "it"
        raise OperationError(
            f"buildx builder {cfg.name!r} did not start: {where}: {last}",
            hint="the docker-container driver runs its BuildKit image: mirror it and set "
            "builder.driver_opts.image (scripts/stack.sh up --buildkit makes a local one)"
            if cfg.driver is Driver.DOCKER_CONTAINER else "check that every node's BuildKit daemon runs",
        ) from None
    return builder_spec.parse_inspect(text)


def _check_nodes(state: BuilderState) -> None:
    for node in state.nodes:
        if node.status != "running":
            detail = f": {node.error}" if node.error else ""
            raise OperationError(
                f"builder node {node.name} ({node.endpoint or 'local engine'}) is {node.status}{detail}",
                hint="start the BuildKit daemon there, or run again with --recreate-builder",
            )

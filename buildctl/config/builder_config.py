"""services.yaml `builder:` and `build.cache_*` -> BuilderConfig / cache specs, checked strictly.

The schema has already checked shape; this checks what it cannot: which keys each driver takes,
endpoints, node platforms, file paths, cache specs and their {placeholders}.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from buildctl.config import builder_name, paths
from buildctl.config.yaml_source import Path_, shorten
from buildctl.errors import ConfigError
from buildctl.model import BuilderConfig, BuilderNode, Driver, csv_options, frozen_map
from buildctl.platforms import Platform, PlatformError

Fail = Callable[..., ConfigError]

# The driver options buildx 0.13 accepts per driver (docs.docker.com/build/builders/drivers/);
# anything else buildx would only reject after the builder exists.
_DRIVER_OPTS: Mapping[Driver, frozenset[str]] = {
    Driver.DOCKER: frozenset(),
    Driver.DOCKER_CONTAINER: frozenset({
        "image", "network", "cgroup-parent", "memory", "memory-swap", "cpu-quota", "cpu-period",
        "cpu-shares", "cpuset-cpus", "cpuset-mems", "restart-policy", "default-load",
    }),
    Driver.REMOTE: frozenset({"cacert", "cert", "key", "servername", "default-load"}),
    Driver.KUBERNETES: frozenset({
        "image", "namespace", "replicas", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
        "limits.cpu", "limits.memory", "limits.ephemeral-storage", "nodeselector", "annotations", "labels",
        "tolerations", "serviceaccount", "rootless", "loadbalance", "qemu.install", "qemu.image",
        "default-load", "timeout", "schedulername",
    }),
}
_ENV_OPT = re.compile(r"^env\.[A-Za-z_][A-Za-z0-9_]*$")  # docker-container: env.NAME=value
_TLS_FILES = ("cacert", "cert", "key")  # remote: paths, resolved against services.yaml
_REMOTE_SCHEMES = ("tcp", "unix", "docker-container", "kube-pod", "ssh")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
CACHE_PLACEHOLDERS = ("service", "image", "repository")
_CACHE_TYPES = ("registry", "local", "inline", "gha", "s3", "azblob")


def stack_buildkit_image(environ: Mapping[str, str] | None = None) -> str | None:
    """The BuildKit image `scripts/stack.sh up --buildkit` pushed to the local registry, if any."""
    env = os.environ if environ is None else environ
    marker = Path(env.get("BUILDCTL_STACK_DIR") or "/var/lib/buildctl-stack") / "buildkit" / "image"
    try:
        return marker.read_text().strip() or None
    except OSError:
        return None


def builder_config(raw: Mapping[str, Any], root: Path, fail: Fail, *,
                   environ: Mapping[str, str] | None = None) -> BuilderConfig:
    at: Path_ = ("builder",)
    driver = Driver(raw.get("driver", "docker"))
    name = raw.get("name", builder_name.default_name(driver.value))
    opts = _driver_opts(raw.get("driver_opts"), driver, (*at, "driver_opts"), root, fail)
    # No Docker Hub here: the stack's own BuildKit image, when it made one; else buildx's default.
    image = stack_buildkit_image(environ) if driver is Driver.DOCKER_CONTAINER and not raw.get("nodes") else None
    if image and "image" not in opts:
        opts = frozen_map({**opts, "image": image})
    config = None
    if "config" in raw:
        if driver not in (Driver.DOCKER_CONTAINER, Driver.KUBERNETES):
            raise fail(f"the {driver} driver takes no buildkitd config (the daemon reads its own buildkitd.toml)",
                       (*at, "config"))
        config = _existing_file(root, raw["config"], (*at, "config"), fail, what="buildkitd config")
    nodes = tuple(_node(n, driver, (*at, "nodes", i), root, fail) for i, n in enumerate(raw.get("nodes", ())))
    if driver is Driver.DOCKER and nodes:
        raise fail("the docker driver has no nodes: it is the engine's own builder (use docker-container, "
                   "remote or kubernetes for nodes)", (*at, "nodes"))
    if driver is Driver.REMOTE and not nodes:
        raise fail("the remote driver needs nodes: [{endpoint: tcp://HOST:PORT, platforms: [...]}]", at)
    if sum(1 for n in nodes if not n.platforms) > 1:
        i = [j for j, n in enumerate(nodes) if not n.platforms][1]
        raise fail("only one node may leave out platforms (buildx would not know which node builds what)",
                   (*at, "nodes", i))
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for platform in node.platforms:
            if platform in seen:
                raise fail(f"platform {platform} is on node {seen[platform]} already: one node per platform",
                           (*at, "nodes", i, "platforms"))
            seen[platform] = i
        if node.endpoint and sum(1 for n in nodes if n.endpoint == node.endpoint) > 1:
            raise fail(f"endpoint {node.endpoint} is used by two nodes", (*at, "nodes", i, "endpoint"))
    return BuilderConfig(name=name, driver=driver, driver_opts=opts, config=config, nodes=nodes)


def _node(raw: Mapping[str, Any], driver: Driver, at: Path_, root: Path, fail: Fail) -> BuilderNode:
    endpoint = raw.get("endpoint", "")
    if driver is Driver.REMOTE:
        if not endpoint:
            raise fail("a remote node needs an endpoint, e.g. tcp://buildkit-arm64:1234", at)
        _check_endpoint(endpoint, (*at, "endpoint"), fail)
    platforms: list[str] = []
    for i, text in enumerate(raw.get("platforms", ())):
        try:
            normal = str(Platform.parse(text))
        except PlatformError as exc:
            raise fail(str(exc), (*at, "platforms", i)) from None
        if normal in platforms:  # worded as the loader words a service's
            j = platforms.index(normal)
            raise fail(f"duplicate {text!r} (the same platform as item {j}, {raw['platforms'][j]!r})", (*at, "platforms", i))
        platforms.append(normal)
    opts = _driver_opts(raw.get("driver_opts"), driver, (*at, "driver_opts"), root, fail)
    return BuilderNode(endpoint, tuple(platforms), opts)


def _check_endpoint(endpoint: str, at: Path_, fail: Fail) -> None:
    try:
        parts = urlsplit(endpoint)
    except ValueError as exc:  # "Invalid IPv6 URL" (an unclosed '['), a bracketed host that is no address
        raise fail(f"invalid endpoint {shorten(endpoint, 80)}: {exc}; an IPv6 address is written "
                   "tcp://[ADDRESS]:PORT", at) from None
    if parts.scheme not in _REMOTE_SCHEMES:
        raise fail(f"invalid endpoint {endpoint!r}: expected tcp://HOST:PORT or unix:///PATH", at)
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.username is not None or parts.password is not None:  # never echo them back
            raise fail("the endpoint holds credentials (user@ or user:password@); BuildKit takes TLS "
                       "client certificates: driver_opts cacert, cert, key", at)
        if not parts.hostname or port is None or not 0 < port <= 65535 or parts.path not in ("", "/"):
            raise fail(f"invalid endpoint {endpoint!r}: expected tcp://HOST:PORT (port 1-65535)", at)
    elif parts.scheme == "unix" and not parts.path.startswith("/"):
        raise fail(f"invalid endpoint {endpoint!r}: expected unix:///absolute/path", at)


def _driver_opts(raw: Mapping[str, Any] | None, driver: Driver, at: Path_, root: Path, fail: Fail) -> Mapping[str, str]:
    opts: dict[str, str] = {}
    allowed = _DRIVER_OPTS[driver]
    for key, value in (raw or {}).items():
        if key not in allowed and not (driver is Driver.DOCKER_CONTAINER and _ENV_OPT.match(key)):
            if not allowed:
                raise fail(f"the {driver} driver takes no driver options", (*at, key))
            raise fail(f"unknown {driver} driver option (allowed: {', '.join(sorted(allowed))})", (*at, key))
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if not text:
            raise fail("must not be empty", (*at, key))
        if driver is Driver.REMOTE and key in _TLS_FILES:
            text = str(_existing_file(root, text, (*at, key), fail, what=f"TLS {key}"))
        opts[key] = text
    return frozen_map(opts)


def _existing_file(root: Path, rel: str, at: Path_, fail: Fail, *, what: str) -> Path:
    return paths.regular_file(root, rel, at, fail, what=what, missing="does not exist (paths are relative to services.yaml)")


def cache_specs(values: list[str] | tuple[str, ...], at: Path_, fail: Fail) -> tuple[str, ...]:
    """Each spec parses as buildx's CSV and uses only known placeholders; kept as written."""
    for i, spec in enumerate(values):
        unknown = [p for p in _PLACEHOLDER.findall(spec) if p not in CACHE_PLACEHOLDERS]
        if unknown:
            raise fail(f"unknown placeholder {{{unknown[0]}}} (allowed: "
                       f"{', '.join('{' + p + '}' for p in CACHE_PLACEHOLDERS)})", (*at, i))
        try:
            fields = csv_options(spec)
        except ValueError as exc:
            raise fail(f"invalid cache spec: {exc}", (*at, i)) from None
        kind = fields.get("type", "")
        if kind not in _CACHE_TYPES:
            raise fail(f"invalid cache type {kind!r} in {spec!r} (one of {', '.join(_CACHE_TYPES)})", (*at, i))
        if kind == "registry" and not fields.get("ref"):
            raise fail(f"a registry cache needs ref=REGISTRY/REPOSITORY[:TAG]: {spec!r}", (*at, i),
                       hint='quote the whole spec: ["type=registry,ref=REG/cache/{service},mode=max"] '
                       "(unquoted in [...], YAML splits it at the commas)")
    return tuple(values)


def expand_cache(spec: str, *, service: str, image: str, repository: str) -> str:
    values = {"service": service, "image": image, "repository": repository}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], spec)

"""Builders, pure: the `docker buildx create` commands of a BuilderConfig, `buildx inspect` text
parsed into a BuilderState, what differs between the two, and which node builds which platform.

No I/O, no python-on-whales: `buildctl plan` shows these commands and builders.py runs them.
"""

from __future__ import annotations

import csv
import io
import shlex

from buildctl import platforms as platforms_of
from buildctl.engine.results import BuilderState, NodeState
from buildctl.model import BuilderConfig, Driver


def node_name(cfg: BuilderConfig, index: int) -> str:
    return f"{cfg.name}{index}"  # buildx's own default naming, made explicit


def create_commands(cfg: BuilderConfig) -> tuple[tuple[str, ...], ...]:
    """One `docker buildx create` per node (the first creates, the others --append).

    The docker driver is the engine's own builder: nothing to create. Bootstrapping is a separate
    command (bootstrap_command), so a node that is down is reported on its own within a bound.
    """
    if cfg.driver is Driver.DOCKER:
        return ()
    commands = []
    for i, node in enumerate(cfg.effective_nodes()):
        argv = ["docker", "buildx", "create", "--name", cfg.name, "--driver", str(cfg.driver)]
        if i:
            argv.append("--append")
        argv += ["--node", node_name(cfg, i)]
        for key, value in node.driver_opts.items():
            argv += ["--driver-opt", _csv_field(f"{key}={value}")]
        if cfg.config is not None:
            argv += ["--buildkitd-config", str(cfg.config)]
        if node.platforms:
            argv += ["--platform", ",".join(node.platforms)]
        if node.endpoint:
            argv.append(node.endpoint)
        commands.append(tuple(argv))
    return tuple(commands)


def bootstrap_command(name: str) -> tuple[str, ...]:
    return ("docker", "buildx", "inspect", "--bootstrap", name)


def _csv_field(text: str) -> str:
    """buildx reads --driver-opt as CSV: a value with a comma or quote must be quoted."""
    if "," not in text and '"' not in text:
        return text
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([text])
    return out.getvalue()


def parse_inspect(text: str) -> BuilderState:
    """`docker buildx inspect NAME` (it has no JSON output; `buildx ls` JSON lacks the pinned
    platforms and driver options, which the node comparison needs)."""
    name = driver = ""
    nodes: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line or line[0].isspace() or ":" not in line:
            continue  # labels, GC policy details
        key, value = (part.strip() for part in line.split(":", 1))
        if key == "Nodes":
            nodes = []
        elif key == "Name" and (nodes or name):
            nodes.append({"Name": value})
        elif key == "Name":
            name = value
        elif key == "Driver" and not nodes:
            driver = value
        elif nodes:
            nodes[-1].setdefault(key, value)
    return BuilderState(name, driver, tuple(_node(n) for n in nodes))


def _node(fields: dict[str, str]) -> NodeState:
    listed = [p.strip() for p in fields.get("Platforms", "").split(",") if p.strip()]
    opts = tuple(tuple(item.split("=", 1)) for item in shlex.split(fields.get("Driver Options", "")) if "=" in item)
    return NodeState(
        name=fields["Name"],
        endpoint=fields.get("Endpoint", ""),
        status=fields.get("Status", "unknown"),
        version=fields.get("BuildKit version", fields.get("Buildkit", "")),
        platforms=tuple(p.rstrip("*") for p in listed),
        pinned=tuple(p.rstrip("*") for p in listed if p.endswith("*")),
        driver_opts=opts,  # type: ignore[arg-type]
        error=fields.get("Error", ""),
    )


def differences(cfg: BuilderConfig, state: BuilderState) -> tuple[str, ...]:
    """What differs between the configured builder and the existing one, one phrase each."""
    if state.driver != cfg.driver:
        return (f"it uses the {state.driver} driver, services.yaml asks for {cfg.driver}",)
    if cfg.driver is Driver.DOCKER:
        return ()
    wanted = cfg.effective_nodes()
    if len(wanted) != len(state.nodes):
        return (f"it has {len(state.nodes)} node(s), services.yaml has {len(wanted)}",)
    found = []
    for i, (node, have) in enumerate(zip(wanted, state.nodes)):
        label = f"node {have.name}"
        if node.endpoint and node.endpoint != have.endpoint:
            found.append(f"{label} is at {have.endpoint}, services.yaml says {node.endpoint}")
        if {platforms_of.normalize(p) for p in node.platforms} != {platforms_of.normalize(p) for p in have.pinned}:
            found.append(f"{label} is pinned to [{', '.join(have.pinned)}], "
                         f"services.yaml says [{', '.join(node.platforms)}]")
        have_opts = dict(have.driver_opts)
        for key, value in node.driver_opts.items():
            if have_opts.get(key) != value:  # buildx inspect prints every option set, for every driver
                found.append(f"{label} has driver option {key}={have_opts.get(key, '(unset)')}, "
                             f"services.yaml says {value}")
    return tuple(found)


def platform_nodes(platforms: tuple[str, ...], state: BuilderState) -> tuple[tuple[str, str], ...]:
    """Which node builds each platform, the way buildx picks: a node pinned to it, else one that
    runs it natively, else the first that can build it (under QEMU)."""
    chosen = []
    for platform in platforms:
        want = platforms_of.normalize(platform)
        for pool in ("pinned", "native", "platforms"):
            node = next((n for n in state.nodes
                         if want in {platforms_of.normalize(p) for p in getattr(n, pool)}), None)
            if node is not None:
                chosen.append((platform, node.name))
                break
    return tuple(chosen)

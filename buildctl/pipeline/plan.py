"""Config -> Plan: everything a release will do, resolved, with no I/O.

`buildctl plan` prints this; build/run execute it. The staging tag keeps the release tag out of
the registry until every service has passed verification (docker/buildx#1089).
"""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from buildctl import workdir
from buildctl.config.builder_config import expand_cache
from buildctl.engine import build_command, builder_spec
from buildctl.model import BuildOptions, BuildSpec, Config, Driver, GitOpsFile

STAGING_PREFIX = "buildctl-staging-"


@dataclass(frozen=True)
class ServicePlan:
    name: str
    repository: str  # registry/image
    release_ref: str  # repository:tag — created only after the gate
    build: BuildSpec
    manifests: tuple[GitOpsFile, ...]
    smoke: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    config: Config
    run_id: str
    tag: str
    registry: str
    services: tuple[ServicePlan, ...]


def new_run_id() -> str:
    return secrets.token_hex(4)


def make_plan(config: Config, *, run_id: str, options: BuildOptions | None = None,
              commit_times: Mapping[str, str] | None = None) -> Plan:
    """``commit_times``: service -> commit time of its context's git HEAD (what the caller found),
    used when build.source_date_epoch is auto."""
    opts = options or config.build
    services = []
    for svc in config.services:
        repository = f"{config.registry}/{svc.image}"
        epoch = _epoch(opts.source_date_epoch, (commit_times or {}).get(svc.name))
        spec = BuildSpec(
            service=svc.name,
            context=svc.context,
            dockerfile=svc.dockerfile,
            platforms=svc.platforms,
            staging_ref=f"{repository}:{STAGING_PREFIX}{run_id}",
            build_args=svc.build_args,
            secrets=svc.secrets,
            target=svc.target,
            options=_service_options(opts, service=svc.name, image=svc.image, repository=repository),
            source_date_epoch=epoch,
            rewrite_timestamp=bool(epoch) and config.builder.driver is not Driver.DOCKER,
            builder=config.builder.name,
            metadata_file=metadata_path(workdir.run_path(config.root, run_id), svc.name),
        )
        services.append(
            ServicePlan(
                name=svc.name,
                repository=repository,
                release_ref=f"{repository}:{config.tag}",
                build=spec,
                manifests=svc.manifests,
                smoke=svc.smoke,
            )
        )
    return Plan(config=config, run_id=run_id, tag=config.tag, registry=config.registry, services=tuple(services))


def build_options(config: Config, *, pull: bool = False, no_cache: bool = False) -> BuildOptions:
    """services.yaml's build options with the command line's --pull / --no-cache (either turns it on)."""
    return replace(config.build, pull=config.build.pull or pull, no_cache=config.build.no_cache or no_cache)


def metadata_path(run_dir: Path, service: str) -> Path:
    """Where buildx writes ``service``'s metadata (its index digest) in a run's folder."""
    return run_dir / f"{service}.metadata.json"


def _epoch(setting: str, commit_time: str | None) -> str | None:
    if setting == "auto":
        return commit_time or None
    return setting or None


def _service_options(opts: BuildOptions, **values: str) -> BuildOptions:
    return replace(opts, cache_from=tuple(expand_cache(c, **values) for c in opts.cache_from),
                   cache_to=tuple(expand_cache(c, **values) for c in opts.cache_to))


def builder_commands(config: Config) -> tuple[tuple[str, ...], ...]:
    """The `docker buildx create` commands a release runs when the builder does not exist yet,
    then its bootstrap (`plan` shows them; builders.ensure_builder runs exactly these)."""
    creates = builder_spec.create_commands(config.builder)
    return (*creates, builder_spec.bootstrap_command(config.builder.name)) if creates else ()


def buildx_argv(spec: BuildSpec, *, metadata_file: str | Path | None = None) -> list[str]:
    """The `docker buildx build` command a release runs for ``spec``: engine.build runs this very
    argv (engine/build_command.py), so what `plan` prints is what runs, builder included.
    ``metadata_file``: elsewhere than the run's folder (the benchmarks' raw builds)."""
    if metadata_file is not None:
        spec = replace(spec, metadata_file=Path(metadata_file))
    return build_command.build_argv(spec)


def render_argv(argv: list[str]) -> str:
    return shlex.join(argv)

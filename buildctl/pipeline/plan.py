"""Config -> Plan: everything a release will do, resolved, with no I/O.

`buildctl plan` prints this; build/run execute it. The staging tag keeps the release tag out of
the registry until every service has passed verification (docker/buildx#1089).
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from buildctl.model import BuildOptions, BuildSpec, Config, GitOpsFile

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

    def service(self, name: str) -> ServicePlan:
        return next(s for s in self.services if s.name == name)


def new_run_id() -> str:
    return secrets.token_hex(4)


def make_plan(config: Config, *, run_id: str, options: BuildOptions | None = None) -> Plan:
    opts = options or config.build
    services = []
    for svc in config.services:
        repository = f"{config.registry}/{svc.image}"
        spec = BuildSpec(
            service=svc.name,
            context=svc.context,
            dockerfile=svc.dockerfile,
            platforms=svc.platforms,
            staging_ref=f"{repository}:{STAGING_PREFIX}{run_id}",
            build_args=svc.build_args,
            secrets=svc.secrets,
            target=svc.target,
            options=opts,
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


def buildx_argv(spec: BuildSpec, *, metadata_file: str = "METADATA.json") -> list[str]:
    """The docker CLI equivalent of what engine.build runs, for `plan` and logs."""
    opts = spec.options
    argv = ["docker", "buildx", "build", "--platform", ",".join(spec.platforms), "--file", str(spec.dockerfile)]
    for key, value in spec.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for key, env in spec.secrets.items():
        argv += ["--secret", f"id={key},env={env}"]
    if spec.target:
        argv += ["--target", spec.target]
    for key, value in opts.labels.items():
        argv += ["--label", f"{key}={value}"]
    argv += [f"--provenance={str(opts.provenance).lower()}", f"--sbom={str(opts.sbom).lower()}"]
    if opts.pull:
        argv.append("--pull")
    if opts.no_cache:
        argv.append("--no-cache")
    for ref in opts.cache_from:
        argv += ["--cache-from", ref]
    for ref in opts.cache_to:
        argv += ["--cache-to", ref]
    argv += ["--tag", spec.staging_ref, "--push", "--metadata-file", metadata_file, str(spec.context)]
    return argv


def render_argv(argv: list[str]) -> str:
    return shlex.join(argv)

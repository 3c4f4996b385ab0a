"""The Docker engine and buildx, through python-on-whales. The only module that imports it.

Every DockerException becomes a CommandError carrying command, exit code and output, so the CLI
shows one clear failure. Nothing here decides; callers (binfmt, builder, build, release) do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from buildctl.errors import CommandError, OperationError
from buildctl.plan import BuildSpec

_docker = DockerClient()


def _command_error(what: str, exc: DockerException, *, hint: str | None = None) -> CommandError:
    output = "\n".join(part for part in (exc.stdout, exc.stderr) if part)
    return CommandError(what, command=exc.docker_command, returncode=exc.return_code, output=output, hint=hint)


@dataclass(frozen=True)
class EngineInfo:
    client_version: str
    server_version: str
    image_store: str  # "io.containerd.snapshotter.v1" when the containerd image store is on
    native_platform: str  # e.g. linux/amd64

    @property
    def multi_platform_store(self) -> bool:
        return self.image_store.startswith("io.containerd.snapshotter")


def engine_info() -> EngineInfo:
    try:
        version = _docker.version()
        info = _docker.system.info()
    except DockerException as exc:
        raise _command_error(
            "the Docker daemon is not reachable", exc, hint="start it: scripts/stack.sh up (or Docker Desktop)"
        ) from None
    store = dict(info.driver_status or []).get("driver-type", info.driver or "")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(info.architecture or "", info.architecture or "")
    return EngineInfo(
        client_version=version.client.version if version.client else "?",
        server_version=version.server.version if version.server else "?",
        image_store=store,
        native_platform=f"{info.os_type or 'linux'}/{arch}",
    )


def buildx_version() -> str:
    try:
        # "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3": the second field is the version
        return _docker.buildx.version().split()[1]
    except DockerException as exc:
        raise _command_error("docker buildx is not available", exc, hint="install docker-buildx") from None


@dataclass(frozen=True)
class BuilderState:
    name: str
    driver: str
    status: str
    platforms: tuple[str, ...]


def inspect_builder(name: str, *, bootstrap: bool = False) -> BuilderState | None:
    """The builder ``name``, or None when no builder has that name."""
    try:
        builder = _docker.buildx.inspect(name, bootstrap=bootstrap)
    except DockerException as exc:
        output = (exc.stderr or "") + (exc.stdout or "")
        if "no builder" in output and "found" in output:
            return None
        raise _command_error(f"cannot inspect buildx builder {name!r}", exc) from None
    return _builder_state(builder)


def _builder_state(builder) -> BuilderState:
    node = builder.nodes[0] if builder.nodes else None
    platforms = tuple(str(p) for p in (node.platforms if node else []) or [])
    status = (node.status if node else None) or "unknown"
    return BuilderState(builder.name, builder.driver, status, platforms)


def create_builder(name: str, *, driver: str, driver_opts: Mapping[str, str]) -> BuilderState:
    try:
        builder = _docker.buildx.create(name=name, driver=driver, driver_options=dict(driver_opts), bootstrap=True)
    except DockerException as exc:
        _remove_builder(name)  # a failed bootstrap leaves a broken builder behind; it was ours
        raise _command_error(
            f"cannot create buildx builder {name!r} (driver {driver})",
            exc,
            hint="the docker-container driver pulls its BuildKit image; mirror it and set "
            "builder.driver_opts.image, or use the default docker builder",
        ) from None
    return _builder_state(builder)


def _remove_builder(name: str) -> None:
    try:
        _docker.buildx.remove(name)
    except DockerException:
        pass  # best effort: it may not have been registered at all


def build(spec: BuildSpec, *, builder: str, log_file: Path, metadata_file: Path,
          on_line: Callable[[str], None] | None = None) -> str:
    """Build and push ``spec``; stream the plain log into ``log_file`` (and each line to
    ``on_line``, for progress); return the index digest."""
    opts = spec.options
    with log_file.open("w", encoding="utf-8") as log:
        try:
            lines = _docker.buildx.build(
                spec.context,
                builder=builder,
                file=spec.dockerfile,
                platforms=list(spec.platforms),
                build_args=dict(spec.build_args),
                secrets=[f"id={key},env={env}" for key, env in spec.secrets.items()],
                target=spec.target,
                labels=dict(opts.labels),
                provenance=opts.provenance,
                sbom=opts.sbom,
                pull=opts.pull,
                cache=not opts.no_cache,
                cache_from=list(opts.cache_from) or None,
                cache_to=opts.cache_to[0] if opts.cache_to else None,
                tags=[spec.staging_ref],
                push=True,
                metadata_file=metadata_file,
                progress="plain",
                stream_logs=True,
            )
            for line in lines:
                log.write(line if line.endswith("\n") else line + "\n")
                log.flush()
                if on_line is not None:
                    on_line(line)
        except DockerException as exc:
            log.write(exc.stderr or "")
            raise _command_error(f"build of {spec.service} failed", exc) from None
    try:
        digest = json.loads(metadata_file.read_text())["containerimage.digest"]
    except (OSError, ValueError, KeyError) as exc:
        raise OperationError(f"build of {spec.service}: buildx wrote no image digest to {metadata_file} ({exc})") from None
    return digest


def tag_index(*, source: str, tag_ref: str) -> None:
    """Point ``tag_ref`` at ``source`` (repo@sha256:...) in the registry, without re-pushing layers.

    With one source and no annotations, imagetools create reuses the source's bytes, so the
    tag resolves to the very digest that was verified.
    """
    try:
        _docker.buildx.imagetools.create(sources=[source], tags=[tag_ref])
    except DockerException as exc:
        raise _command_error(f"cannot tag {tag_ref}", exc) from None


def login(registry: str, *, username: str, password: str) -> None:
    """`docker login --password-stdin`: the password never reaches argv."""
    try:
        _docker.login(server=registry, username=username, password=password)
    except DockerException as exc:
        raise CommandError(
            f"login to {registry} as {username} failed",
            command=["docker", "login", registry, "--username", username, "--password-stdin"],
            returncode=exc.return_code,
            output=(exc.stderr or "").replace(password, "***"),
            hint="check BUILDCTL_REGISTRY_USERNAME / BUILDCTL_REGISTRY_PASSWORD",
        ) from None


def run(image: str, command: Sequence[str], *, platform: str | None = None, privileged: bool = False,
        entrypoint: str | None = None) -> str:
    """Run a throw-away container and return its output."""
    try:
        out = _docker.run(image, list(command), platform=platform, privileged=privileged, remove=True,
                          entrypoint=entrypoint, pull="missing")
    except DockerException as exc:
        raise _command_error(f"`{' '.join(command)}` in {image} ({platform or 'native'}) failed", exc) from None
    return out if isinstance(out, str) else ""




def build_local(spec: BuildSpec, *, builder: str, platform: str, tag: str, log_file: Path) -> str:
    """Build ``spec`` for one platform and load it into the local engine (no push); return its id."""
    opts = spec.options
    with log_file.open("w", encoding="utf-8") as log:
        try:
            for line in _docker.buildx.build(
                spec.context, builder=builder, file=spec.dockerfile, platforms=[platform],
                build_args=dict(spec.build_args), secrets=[f"id={k},env={v}" for k, v in spec.secrets.items()],
                target=spec.target, labels=dict(opts.labels), pull=opts.pull, cache=not opts.no_cache,
                tags=[tag], load=True, progress="plain", stream_logs=True,
            ):
                log.write(line if line.endswith("\n") else line + "\n")
        except DockerException as exc:
            log.write(exc.stderr or "")
            raise _command_error(f"local build of {spec.service} for {platform} failed", exc) from None
    try:
        return _docker.image.inspect(tag).id
    except DockerException as exc:
        raise _command_error(f"the local build of {spec.service} left no image {tag}", exc) from None

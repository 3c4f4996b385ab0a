"""The Docker engine and buildx. The only module that imports python-on-whales, and only on first
use (``_whales``): its import builds some 150 pydantic models, ~0.3 s of start-up. What a release
runs on its path — `docker info`, `buildx` commands, the builds themselves — goes through the
subprocess path (programs.py) instead, so a release loads it only for a smoke test or a binfmt image.

Every DockerException becomes a CommandError carrying command, exit code and output, so the CLI
shows one clear failure. Nothing here decides; callers (binfmt, builder, build, release) do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from buildctl import jsonsafe
from buildctl.engine import early_info
from buildctl.engine.build_command import build_argv
from buildctl.engine.buildx_program import DOCKER, program_argv
from buildctl.engine.logins import renewer
from buildctl.engine.results import EngineInfo
from buildctl.engine.retry import PUSH_RETRY, TAG_RETRY, typed, with_retries
from buildctl.errors import CommandError, OperationError
from buildctl.model import BuildSpec
from buildctl.platforms import Platform
from buildctl.programs import ProgramError, ProgramResult, ProgramStopped, Stop, run_program, stream_program
from buildctl.references import parse_reference
from buildctl.registry.auth import Unauthorized

if TYPE_CHECKING:  # the run's client is passed in; the registry layer loads with it
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    from buildctl.registry.client import RegistryClient

BUILDX_TIMEOUT = 30.0  # buildx gives up on an unreachable remote node after 20 s


class _Whales(NamedTuple):
    client: DockerClient
    error: type[DockerException]  # what every python-on-whales call raises on a failed command


@functools.cache
def _whales() -> _Whales:
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    return _Whales(DockerClient(client_call=[DOCKER]), DockerException)


def _command_error(what: str, exc: DockerException, *, hint: str | None = None) -> CommandError:
    output = "\n".join(part for part in (exc.stdout, exc.stderr) if part)
    return CommandError(what, command=exc.docker_command, returncode=exc.return_code, output=output, hint=hint)


def engine_info() -> EngineInfo:
    # One `docker info` (it carries the client's version too, which python-on-whales' model
    # drops) instead of `docker version` + `docker info`: every docker process costs ~50 ms of
    # CPU, paid on each release (benchmarks/, issue #7). Through the one subprocess path, so a
    # release that builds nothing never loads python-on-whales.
    # Started by the CLI before its imports, when it can (engine/early_info.py).
    argv = list(early_info.INFO_ARGV)
    hint = "start it: scripts/stack.sh up (or Docker Desktop)"
    try:
        proc = early_info.take().result()
    except ProgramError as exc:  # no docker client, or no answer within early_info.INFO_TIMEOUT
        raise CommandError(exc.message, command=argv, returncode=-1, output=exc.output, hint=hint) from None
    if proc.returncode != 0:
        raise CommandError("the Docker daemon is not reachable", command=argv, returncode=proc.returncode,
                           output=proc.stdout + proc.stderr, hint=hint)
    raw = proc.stdout
    try:
        info = jsonsafe.loads(raw)
    except ValueError:
        raise OperationError(f"`docker info --format '{{{{json .}}}}'` printed no JSON: {raw[:200]!r}") from None
    store = dict(info.get("DriverStatus") or []).get("driver-type", info.get("Driver") or "")
    return EngineInfo(
        client_version=(info.get("ClientInfo") or {}).get("Version") or "?",
        server_version=info.get("ServerVersion") or "?",
        image_store=store,
        native_platform=str(Platform.of_machine(info.get("Architecture") or "", os_name=info.get("OSType") or "linux")),
        operating_system=info.get("OperatingSystem") or "",
    )


def buildx_version() -> str:
    whales = _whales()
    try:
        # "github.com/docker/buildx 0.13.1+ds1 0.13.1+ds1-3": the second field is the version
        return whales.client.buildx.version().split()[1]
    except whales.error as exc:
        raise _command_error("docker buildx is not available", exc, hint="install docker-buildx") from None


def buildx(argv: Sequence[str], *, what: str, timeout: float = BUILDX_TIMEOUT) -> str:
    """Run one `docker buildx ...` command (``argv`` as builder_spec makes it, from "docker");
    its stdout. A command that outlives ``timeout`` is killed: a node that does not answer must
    not hang a release (python-on-whales' runner has no timeout). The plugin runs directly when it
    can (engine/buildx_program.py)."""
    full = program_argv(argv)
    return _succeeded(full, what, lambda: run_program(full, what=what, timeout=timeout)).stdout


def inspect_builder(builder: str, *, early: bool = False) -> str:
    """`docker buildx inspect BUILDER`'s stdout; with ``early``, the one the CLI started before its
    imports when it did (engine/early_info.py): only for the first read of a release, before
    anything could have changed the builder."""
    argv, what = early_info.inspect_argv(builder), early_info.inspect_what(builder)
    started = early_info.take_inspect(builder) if early else None
    if started is None:
        return buildx(argv, what=what)
    return _succeeded(program_argv(argv), what, started.result).stdout


def _succeeded(full: list[str], what: str, run: Callable[[], ProgramResult]) -> ProgramResult:
    """``run()``'s result; CommandError (command, exit code, output) when it could not start, was
    stopped, or exited non-zero."""
    try:
        proc = run()
    except ProgramStopped:  # by the caller, on purpose: nothing to retry or classify
        raise
    except ProgramError as exc:  # not started, or stopped after its timeout: its output so far is kept
        raise CommandError(exc.message, command=full, returncode=-1, output=exc.output) from None
    if proc.returncode != 0:
        raise CommandError(what, command=full, returncode=proc.returncode, output=proc.stdout + proc.stderr)
    return proc


def probe_build(builder: str, platforms: tuple[str, ...], context: Path) -> str:
    """Build ``context`` for ``platforms`` on ``builder`` with no cache and no output (binfmt probe)."""
    return buildx(("docker", "buildx", "build", "--builder", builder, "--platform", ",".join(platforms),
                   "--no-cache", "--output", "type=cacheonly", "--progress", "plain", str(context)),
                  what=f"emulation probe on builder {builder!r}", timeout=120)


def build(spec: BuildSpec, *, log_file: Path, on_line: Callable[[str], None] | None = None,
          stop: Stop | None = None) -> str:
    """Build and push ``spec`` on its builder; stream the plain log into ``log_file`` (and each line
    to ``on_line``, for progress); return the index digest, read from ``spec.metadata_file``.
    ``stop``, when pulled, ends the build (ProgramStopped).

    A push that fails on a transient registry fault is retried (engineretry.PUSH_RETRY): the
    build runs again from the BuildKit cache — even under --no-cache, whose fresh layers the first
    attempt just made — and pushes the same layers.
    """
    registry = _registry_of(spec.staging_ref)
    with log_file.open("w", encoding="utf-8") as log:

        def attempt(number: int) -> None:
            if number > 1:
                log.write(f"\nbuildctl: attempt {number}: building again from the cache and pushing\n\n")
            again = spec if number == 1 else replace(spec, options=replace(spec.options, no_cache=False))
            try:
                _build_once(build_argv(again), log=log, on_line=on_line, what=f"build of {spec.service} failed",
                            stop=stop)
            except CommandError as exc:
                raise typed(exc, registry=registry) from None

        with_retries(f"push of {spec.service}", attempt, policy=PUSH_RETRY, renew_login=renewer(registry))
    try:
        digest = jsonsafe.loads(spec.metadata_file.read_text())["containerimage.digest"]
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise OperationError(f"build of {spec.service}: buildx wrote no image digest to {spec.metadata_file} "
                             f"({exc})") from None
    return digest


def _build_once(argv: Sequence[str], *, log, on_line: Callable[[str], None] | None, what: str,
                stop: Stop | None = None) -> None:
    """Run one `docker buildx build` (``argv`` from build_command, from "docker"), its plain log
    streamed into ``log``; CommandError (command, exit code, output) when it fails. Through the
    subprocess path, not python-on-whales: a release that builds then never loads its ~0.3 s of
    imports (issue #20). The plugin runs directly when it can (engine/buildx_program.py)."""
    full = program_argv(argv)

    def line(text: str) -> None:
        log.write(text if text.endswith("\n") else text + "\n")
        log.flush()
        if on_line is not None:
            on_line(text)

    _succeeded(full, what, lambda: stream_program(full, what=what, on_line=line, stop=stop))


def tag_index(*, source: str, tag_ref: str, client: RegistryClient | None = None) -> None:
    """Point ``tag_ref`` at ``source`` (repo@sha256:...) in the registry, without re-pushing layers.

    With ``client`` and the tag in the source's own repository, the source's bytes (read by digest,
    so verified) are PUT under the tag with their own content type: the tag resolves to the very
    digest that was verified, and no docker process runs (one `imagetools create` per service
    cost ~0.2 s of a warm release). The client is the run's, with the credentials every other
    registry call of the run uses. Otherwise `imagetools create` with one source and no
    annotations, which reuses the source's bytes too — also after an HTTP 401, a login that
    expired since the push (ACR tokens last 3 hours): that path renews the run's login once.
    """
    failed = f"cannot tag {tag_ref}"
    if client is not None and _same_repository(source, tag_ref):
        try:
            manifest = client.get_manifest(source)  # from memory when the run read it (registry/manifest_memo.py),
            if client.head_manifest(source) is None:  # so asked: deleted behind the run's back, it is not brought back
                raise OperationError(f"{source} is no longer in the registry")
            client.put_manifest(tag_ref, manifest.content, manifest.media_type)
            return
        except Unauthorized:
            pass  # to imagetools create and its login renewal, below
        except OperationError as exc:  # after the client's retries of transient faults
            raise OperationError(f"{failed}: {exc.message}", hint=exc.hint) from None
    create_index(sources=(source,), tag_ref=tag_ref, failed=failed, doing=f"tagging {tag_ref}")


def _same_repository(source: str, tag_ref: str) -> bool:
    try:
        src, tag = parse_reference(source), parse_reference(tag_ref)
    except ValueError:
        return False
    return src.digest is not None and tag.tag is not None and tag.digest is None and src.name == tag.name


def create_index(*, sources: Sequence[str], tag_ref: str, failed: str = "", doing: str = "") -> None:
    """`docker buildx imagetools create --tag TAG_REF SOURCE...` (each repo@sha256:...), retried on
    transient faults. Sources that are indexes are merged into one: their platform images and the
    attestation manifests that refer to them, by digest (native agents' per-platform pushes)."""
    registry = _registry_of(tag_ref)
    failed = failed or f"cannot merge {len(sources)} images into {tag_ref}"

    def attempt(number: int) -> None:
        whales = _whales()
        try:
            whales.client.buildx.imagetools.create(sources=list(sources), tags=[tag_ref])
        except whales.error as exc:
            raise typed(_command_error(failed, exc), registry=registry) from None

    with_retries(doing or f"merging into {tag_ref}", attempt, policy=TAG_RETRY, renew_login=renewer(registry))


def _registry_of(ref: str) -> str:
    try:
        return parse_reference(ref).registry
    except ValueError:
        return ref.split("/", 1)[0]


def run(image: str, command: Sequence[str], *, platform: str | None = None, privileged: bool = False,
        entrypoint: str | None = None) -> str:
    """Run a throw-away container and return its output."""
    whales = _whales()
    try:
        if platform:
            # python-on-whales' pull="missing" pulls without --platform, i.e. the host's: an index of a
            # foreign platform alone (a native agent's by-digest push) has no match for it.
            whales.client.image.pull(image, platform=platform, quiet=True)
        out = whales.client.run(image, list(command), platform=platform, privileged=privileged, remove=True,
                          entrypoint=entrypoint, pull="missing")
    except whales.error as exc:
        raise _command_error(f"`{' '.join(command)}` in {image} ({platform or 'native'}) failed", exc) from None
    return out if isinstance(out, str) else ""


def build_local(spec: BuildSpec, *, platform: str, tag: str, log_file: Path) -> str:
    """Build ``spec`` for one platform and load it into the local engine (no push); return its id."""
    with log_file.open("w", encoding="utf-8") as log:
        _build_once(build_argv(spec, local=(platform, tag)), log=log, on_line=None,
                    what=f"local build of {spec.service} for {platform} failed")
    whales = _whales()
    try:
        return whales.client.image.inspect(tag).id
    except whales.error as exc:
        raise _command_error(f"the local build of {spec.service} left no image {tag}", exc) from None

"""Dockerfile lint: stages that run RUN steps under QEMU emulation (pure: text in, findings out).

A stage without ``--platform`` runs at the *target* platform, so on an amd64 machine every RUN
step of a linux/arm64 image executes under QEMU — 4x slower here, far more on compile-heavy
builds. A stage whose files are only copied out (``COPY --from``) can usually run on the build
machine's own platform instead and cross-compile (``FROM --platform=$BUILDPLATFORM``, then
``TARGETOS``/``TARGETARCH``); see https://docs.docker.com/build/building/multi-platform/#cross-compilation.
The opposite mistake is flagged too: a final stage pinned to one platform ships that platform's
bytes in every image (the ``exec format error`` this project exists to prevent), and so is a
default on ``ARG TARGETARCH`` (``TARGETPLATFORM``, ``TARGETOS``, ``TARGETVARIANT``), which
replaces BuildKit's per-platform value — that one is refused before a build, too.

Only stages the build really runs count: those reachable from the target stage through ``FROM
<stage>``, ``COPY/ADD --from`` and ``RUN --mount=from=``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from buildctl import platforms as platforms_of
from buildctl.errors import ConfigError
from buildctl.inspect.dockerfile_parse import BUILD, TARGET, Stage, by_name, parse, platform_arg_defaults

__all__ = ["BUILD", "TARGET", "BaseImage", "Finding", "Severity", "Stage", "base_images", "image_base", "lint",
           "parse", "preflight_findings"]

PLATFORM_ARG_DEFAULT = "platform-arg-default"


class Severity(StrEnum):
    ERROR = "error"  # exit 1: every platform's image would carry one architecture's binaries
    WARNING = "warning"  # advice: a stage that could run natively
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    code: str  # emulated-build-stage | emulated-image-stage | pinned-platform | platform-arg-default
    severity: Severity
    stage: str
    message: str

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


# --------------------------------------------------------------------------- analysis


def _resolve(stages: Sequence[Stage], ref: str) -> Stage | None:
    """A ``--from`` value: a stage name or index (anything else is an image)."""
    if ref.isascii() and ref.isdigit():  # "²".isdigit() is True, and int("²") fails
        return stages[int(ref)] if int(ref) < len(stages) else None
    return by_name(stages, ref)


def _target_stage(stages: Sequence[Stage], target: str | None, path: str) -> Stage:
    if target is None:
        return stages[-1]
    found = by_name(stages, target)
    if found is None:
        raise ConfigError(f"target stage {target!r} not found", file=path)
    return found


@dataclass(frozen=True)
class _Build:
    """The stages a build of the target runs."""

    stages: tuple[Stage, ...]
    final: Stage
    in_image: frozenset[int]  # the target stage and the stages it is built FROM
    reachable: dict[int, Stage]
    copied_at: dict[int, int]  # stage index -> a line that copies from it


def _build(text: str, path: str, target: str | None, build_args: Mapping[str, str] | None = None) -> _Build:
    stages = parse(text, path=path, build_args=build_args)
    final = _target_stage(stages, target, path)
    image_chain, stage = [final], final
    while (parent := by_name(stages[: stage.index], stage.base)) is not None:
        image_chain.append(parent)
        stage = parent
    reachable: dict[int, Stage] = {}
    todo = list(image_chain)
    copied_at: dict[int, int] = {}
    while todo:
        stage = todo.pop()
        if stage.index in reachable:
            continue
        reachable[stage.index] = stage
        parent = by_name(stages[: stage.index], stage.base)
        deps = [parent] if parent else []
        for ref, line in stage.copies:
            if (source := _resolve(stages, ref)) is not None:
                copied_at.setdefault(source.index, line)
                deps.append(source)
        todo.extend(deps)
    return _Build(stages, final, frozenset(s.index for s in image_chain), reachable, copied_at)


def lint(text: str, *, path: str, platforms: Sequence[str], native: str,
         target: str | None = None) -> tuple[Finding, ...]:  # fmt: skip
    """Findings for building ``text`` for ``platforms`` on a ``native`` machine, sorted by line."""
    build = _build(text, path, target)
    foreign = list(platforms_of.foreign(tuple(platforms), native))  # aarch64 = arm64: one Platform type
    findings = [f for s in sorted(build.reachable.values(), key=lambda s: s.index)
                if (f := _emulation(s, path, foreign, native, in_image=s.index in build.in_image,
                                    copied_at=build.copied_at.get(s.index)))]  # fmt: skip
    if (pinned := _pinned(build.final, path, platforms, native)) is not None:
        findings.append(pinned)
    findings += _platform_arg_defaults(text, path, build)
    return tuple(sorted(findings, key=lambda f: f.line))


def preflight_findings(text: str, *, path: str, target: str | None = None) -> tuple[Finding, ...]:
    """The findings a build is refused for before anything is built (whatever the platforms)."""
    return _platform_arg_defaults(text, path, _build(text, path, target))


@dataclass(frozen=True)
class BaseImage:
    """An image (not a stage) a stage the build runs is built FROM or copies/mounts from."""

    line: int
    reference: str  # as written, build args and global ARG defaults substituted
    platform: str | None  # the stage's: TARGET, BUILD, a literal os/arch[/variant], or None (unknown)


def base_images(text: str, *, path: str, target: str | None = None,
                build_args: Mapping[str, str] | None = None) -> tuple[BaseImage, ...]:  # fmt: skip
    """The images the build pulls, in line order; a reference still holding ``$`` (an ARG without a
    value) and ``scratch`` are left out."""
    build = _build(text, path, target, build_args)
    found = []
    for stage in build.reachable.values():
        if by_name(build.stages[: stage.index], stage.base) is None:
            found.append(BaseImage(stage.line, stage.base, stage.platform))
        found += [BaseImage(line, ref, stage.platform) for ref, line in stage.copies
                  if _resolve(build.stages, ref) is None]
    return tuple(sorted((b for b in found if "$" not in b.reference and b.reference.lower() != "scratch"),
                        key=lambda b: b.line))


def image_base(text: str, *, path: str, target: str | None = None,
               build_args: Mapping[str, str] | None = None) -> BaseImage | None:  # fmt: skip
    """The image whose layers are the bottom of the built image: the ``FROM`` image of the target
    stage's chain (``FROM <stage>`` followed down). None for ``scratch`` or an unresolved ``$``;
    images only copied or mounted from add files, never their layers."""
    build = _build(text, path, target, build_args)
    stage = build.final
    while (parent := by_name(build.stages[: stage.index], stage.base)) is not None:
        stage = parent
    if "$" in stage.base or stage.base.lower() == "scratch":
        return None
    return BaseImage(stage.line, stage.base, stage.platform)  # the platform the image is pulled for


def _platform_arg_defaults(text: str, path: str, build: _Build) -> tuple[Finding, ...]:
    out = []
    for arg in platform_arg_defaults(text):
        if arg.stage is not None and arg.stage not in build.reachable:
            continue  # a stage the build does not run
        label = "global scope" if arg.stage is None else build.stages[arg.stage].label
        out.append(Finding(path, arg.line, PLATFORM_ARG_DEFAULT, Severity.ERROR, label,
                           f"`ARG {arg.name}={arg.default}` gives BuildKit's per-platform argument a default: every "
                           f"platform's build then uses {arg.name}={arg.default!r} (each image fetches or builds "
                           f"that one platform's binaries); declare it without a value: `ARG {arg.name}`"))
    return tuple(out)


def _emulated(stage: Stage, foreign: Sequence[str], native: str) -> list[str]:
    if stage.platform == TARGET:
        return list(foreign)
    if stage.platform not in (None, BUILD) and platforms_of.foreign((stage.platform,), native):
        return [stage.platform]
    return []


def _emulation(stage: Stage, path: str, foreign: Sequence[str], native: str, *, in_image: bool,
               copied_at: int | None) -> Finding | None:  # fmt: skip
    emulated = _emulated(stage, foreign, native)
    if not stage.runs or not emulated:
        return None
    plural = "s" if len(stage.runs) != 1 else ""
    where = (f"stage {stage.label}: {len(stage.runs)} RUN step{plural} (line{plural} "
             f"{', '.join(map(str, stage.runs))}) run{'' if plural else 's'} under QEMU emulation for {', '.join(emulated)}")
    if in_image:
        return Finding(path, stage.runs[0], "emulated-image-stage", Severity.INFO, stage.label,
                       f"{where}; this stage becomes the image's filesystem, so only steps that must run inside "
                       "the image belong here — move steps that just produce files (downloads, compiles, installs of "
                       "pure-code dependencies) to a `FROM --platform=$BUILDPLATFORM` stage and COPY --from it")
    return Finding(path, stage.line, "emulated-build-stage", Severity.WARNING, stage.label,
                   f"{where}, yet only its files are used (COPY --from at line {copied_at}): "
                   "`FROM --platform=$BUILDPLATFORM` runs it natively; cross-compile for TARGETOS/TARGETARCH "
                   "(e.g. GOOS=$TARGETOS GOARCH=$TARGETARCH go build)")


def _pinned(final: Stage, path: str, platforms: Sequence[str], native: str) -> Finding | None:
    if final.platform in (None, TARGET):
        return None
    bytes_of = native if final.platform == BUILD else final.platform
    others = list(platforms_of.foreign(tuple(platforms), bytes_of))
    if not others:
        return None
    written = "--platform=$BUILDPLATFORM" if final.platform == BUILD else f"--platform={final.platform}"
    return Finding(path, final.line, "pinned-platform", Severity.ERROR, final.label,
                   f"the final stage is `FROM {written}`: the images for {', '.join(others)} would carry "
                   f"{bytes_of} binaries (exec format error); build the final stage FROM the target platform "
                   "and copy only architecture-independent or cross-compiled files into it")

"""The options and arguments that several verbs share, declared once (typer's Annotated form),
and what turns them into a Config, platforms and a progress mode (docker buildx's conventions:
-f/--file, --builder, --platform a,b, --progress, --metadata-file; issue #18)."""

from __future__ import annotations

import dataclasses
import importlib
import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from buildctl import cli_completion, errors
from buildctl.platforms import PlatformError, parse_list

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", "--file", "-f",
                                         help="services.yaml (-f/--file as in docker buildx bake); paths in it are "
                                              "relative to its folder.")]
TagOpt = Annotated[Optional[str], typer.Option("--tag", help="Release tag (overrides services.yaml).")]
RegistryOpt = Annotated[Optional[str], typer.Option("--registry", help="Registry host[:port] (overrides services.yaml).")]
BuilderOpt = Annotated[Optional[str], typer.Option("--builder", metavar="NAME",
                                                   help="The buildx builder (overrides builder.name in services.yaml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result.")]
ServicesArg = Annotated[Optional[list[str]], typer.Argument(metavar="[SERVICE]...", help="Services to act on (default: all).",
                                                            show_default=False, autocompletion=cli_completion.services)]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Build at most N services at once (default: all).")]
DEFAULT_CONFIG = Path(cli_completion.DEFAULT_CONFIG)
RecreateOpt = Annotated[bool, typer.Option("--recreate-builder", help="Replace the buildx builder when its nodes differ from services.yaml (default: refuse).")]
RecordOut = Annotated[Optional[Path], typer.Option("--record", help="Write the release record here (default: .buildctl/runs/ID/release.json).")]
MetadataOut = Annotated[Optional[Path], typer.Option(
    "--metadata-file", metavar="FILE", dir_okay=False, writable=True,
    help="Also write the released images here as docker buildx bake --metadata-file does: per service "
         "containerimage.digest and image.name.")]
PullOpt = Annotated[bool, typer.Option("--pull", help="Always pull newer base images.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Build without the build cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Same as --progress quiet.")]
RebuildOpt = Annotated[bool, typer.Option("--rebuild", help="Build every service, also one whose inputs equal those of an image released before (default: reuse it).")]
RetagOpt = Annotated[bool, typer.Option("--retag", help="Move a release tag that already holds other images (tags are immutable otherwise; the record says so).")]


class ProgressMode(StrEnum):
    """--progress, as docker buildx names its modes."""

    AUTO = "auto"  # a live table on a terminal, one line per change elsewhere (CI logs)
    PLAIN = "plain"
    TTY = "tty"
    QUIET = "quiet"  # no progress; the result is printed only on failure


ProgressOpt = Annotated[ProgressMode, typer.Option(
    "--progress", case_sensitive=False,
    help="auto (a live table on a terminal, lines otherwise), plain, tty or quiet (no progress; the result "
         "only on failure).")]
ByDigestOpt = Annotated[Optional[Path], typer.Option(
    "--by-digest", metavar="FILE", dir_okay=False,
    help="A native agent's share (with one --platform): push that platform by digest only, no tag; verify it; "
         "write FILE for the final agent's --from (README: Native agents).")]
FromOpt = Annotated[Optional[list[Path]], typer.Option(
    "--from", metavar="FILE", dir_okay=False,
    help="Release what native agents built (their --by-digest files, one per platform): check they belong "
         "together, merge each service's digests into one index, verify, then gate and tag as usual.")]
PlatformOpt = Annotated[Optional[list[str]], typer.Option(
    "--platform", metavar="PLATFORM[,PLATFORM...]", autocompletion=cli_completion.platforms,
    help="os/arch[/variant]: a comma list, the option repeatable (as docker buildx takes it).")]


def platform_list(values: list[str] | None) -> tuple[str, ...]:
    """--platform values, through the one Platform parse (platforms.parse_list); () when not given."""
    try:
        return parse_list(values or ())
    except PlatformError as exc:
        raise errors.UsageError(str(exc)) from None  # names the platform, as services.yaml errors do


def progress_mode(progress: ProgressMode, *, quiet: bool) -> ProgressMode:
    """--progress with -q/--quiet (its older spelling); the two saying different things is bad input."""
    if not quiet:
        return progress
    if progress not in (ProgressMode.AUTO, ProgressMode.QUIET):
        raise errors.UsageError(f"--quiet and --progress {progress} contradict each other: pass one")
    return ProgressMode.QUIET


def load(config: Path, tag: str | None, registry: str | None, services: list[str] | None, *,
         builder: str | None = None, recreate_builder: bool = False):
    """services.yaml with the command line's overrides, restricted to ``services``."""
    cfg = loader.select_services(loader.load_config(config, tag=tag, registry=registry, builder=builder),
                                 services or [])
    return dataclasses.replace(cfg, builder=dataclasses.replace(cfg.builder, recreate=True)) if recreate_builder else cfg


class Deferred:
    """A module imported on first use: `buildctl --help` needs neither the config loader
    (jsonschema) nor the renderer (rich), and every verb loads only what it uses (issue #15)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


loader = Deferred("buildctl.config.loader")


def configured_platforms(config: Path, tag: str | None, registry: str | None):
    """The configured platforms and ``verify:`` settings (the defaults without a services.yaml)."""
    from buildctl.model import VerifyConfig

    if config == DEFAULT_CONFIG and not config.exists():
        return loader.DEFAULT_PLATFORMS, VerifyConfig()
    loaded = loader.load_config(config, tag=tag, registry=registry)
    return loaded.all_platforms(), loaded.verify


def display_args(progress: ProgressMode) -> dict[str, bool | None]:
    """output.progress.make_display's arguments for --progress (auto: plain unless stderr is a TTY)."""
    return {"quiet": progress is ProgressMode.QUIET,
            "plain": {ProgressMode.PLAIN: True, ProgressMode.TTY: False}.get(progress)}


def display_for(progress: ProgressMode, config):
    """The progress display --progress asks for (output/progress.py)."""
    from buildctl.output import progress as displays

    return displays.make_display([(s.name, s.platforms) for s in config.services], **display_args(progress))


def finite(value: float | None) -> float | None:
    """A float option's callback: typer's min/max let nan through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value

"""The options and arguments that several verbs share, declared once (typer's Annotated form)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="services.yaml; paths in it are relative to its folder.")]
TagOpt = Annotated[Optional[str], typer.Option("--tag", help="Release tag (overrides services.yaml).")]
RegistryOpt = Annotated[Optional[str], typer.Option("--registry", help="Registry host[:port] (overrides services.yaml).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result.")]
ServicesArg = Annotated[Optional[list[str]], typer.Argument(metavar="[SERVICE]...", help="Services to act on (default: all).", show_default=False)]
JobsOpt = Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, help="Build at most N services at once (default: all).")]
DEFAULT_CONFIG = Path("services.yaml")
RecreateOpt = Annotated[bool, typer.Option("--recreate-builder", help="Replace the buildx builder when its nodes differ from services.yaml (default: refuse).")]
RecordOut = Annotated[Optional[Path], typer.Option("--record", help="Write the release record here (default: .buildctl/runs/ID/release.json).")]
PullOpt = Annotated[bool, typer.Option("--pull", help="Always pull newer base images.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Build without the build cache.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display; print the result only on failure.")]
RetagOpt = Annotated[bool, typer.Option("--retag", help="Move a release tag that already holds other images (tags are immutable otherwise; the record says so).")]


def finite(value: float | None) -> float | None:
    """A float option's callback: typer's min/max let nan through (every comparison with it is false)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value

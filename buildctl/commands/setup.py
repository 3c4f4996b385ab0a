"""`buildctl binfmt` and `buildctl builder`: the first two pipeline steps on their own."""

from __future__ import annotations

from dataclasses import replace

from buildctl.engine import binfmt
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.model import Config


def binfmt_step(config: Config, *, method: str | None = None) -> tuple[binfmt.BinfmtResult, ...]:
    cfg = replace(config.binfmt, method=method) if method else config.binfmt
    info = engine.engine_info()
    return binfmt.ensure(config.all_platforms(), native=info.native_platform, config=cfg)


def builder_step(config: Config) -> builder.BuilderReport:
    info = engine.engine_info()
    return builder.ensure_builder(config.builder, platforms=config.all_platforms(), info=info)

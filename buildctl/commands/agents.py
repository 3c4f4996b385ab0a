"""Native agents (README "Native agents"): `buildctl build --platform P --by-digest FILE` on each
platform's own CI agent; the final agent's `run --from FILE ...` is commands/release.py's with
``sources``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from buildctl.errors import UsageError
from buildctl.model import Config, ProgressFn
from buildctl.pipeline.by_digest import AgentRun, build_by_digest, for_platform


def build_agent(config: Config, *, platforms: tuple[str, ...], file: Path,
                display: Callable[[Config], AbstractContextManager[ProgressFn]], jobs: int | None = None,
                pull: bool = False, no_cache: bool = False) -> AgentRun:
    """Build ``config``'s services for the one platform of ``platforms`` (an agent builds its own),
    with a progress ``display`` made for that platform's rows."""
    if len(platforms) != 1:
        raise UsageError(f"--by-digest {file} builds one platform: pass --platform once "
                         f"(got {', '.join(platforms) or 'none'})")
    with display(for_platform(config, platforms[0])) as progress:
        return build_by_digest(config, platform=platforms[0], file=file, jobs=jobs, pull=pull, no_cache=no_cache,
                               progress=progress)

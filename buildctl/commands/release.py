"""`buildctl build` (build, push, verify, tag) and `buildctl run` (the same, then GitOps)."""

from __future__ import annotations

from pathlib import Path

from buildctl.model import Config, ProgressFn
from buildctl.pipeline.results import RunResult
from buildctl.pipeline.run import nightly_tag, run_release
from buildctl.registry import tls
from buildctl.registry.auth import is_loopback

__all__ = ["build", "nightly_tag", "preload_tls", "run"]


def preload_tls(config: Config) -> None:
    """A release to a TLS registry loads the CA certificates beside its start-up (registry/tls.py);
    one to a local registry never needs them."""
    if not is_loopback(config.registry):
        tls.preload()


def build(config: Config, *, jobs: int | None = None, pull: bool = False, no_cache: bool = False,
          record_path: Path | None = None, progress: ProgressFn | None = None, retag: bool = False,
          sources: tuple[Path, ...] = (), rebuild: bool = False) -> RunResult:
    return run_release(config, with_gitops=False, jobs=jobs, pull=pull, no_cache=no_cache,
                       record_path=record_path, progress=progress, retag=retag, sources=sources, rebuild=rebuild)


def run(config: Config, *, jobs: int | None = None, pull: bool = False, no_cache: bool = False,
        record_path: Path | None = None, nightly: bool = False, progress: ProgressFn | None = None,
        retag: bool = False, sources: tuple[Path, ...] = (), rebuild: bool = False) -> RunResult:
    """The whole release; ``nightly`` rebuilds (with --pull) exactly the services whose inputs — base
    digests included — moved, and reuses the rest (README: Nightly rebuild); ``sources``: merge what
    native agents built (README: Native agents) instead of building."""
    return run_release(config, with_gitops=True, jobs=jobs, pull=pull, no_cache=no_cache,
                       record_path=record_path, nightly=nightly, progress=progress, retag=retag, sources=sources,
                       rebuild=rebuild)

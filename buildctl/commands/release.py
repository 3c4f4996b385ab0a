"""`buildctl build` (build, push, verify, tag) and `buildctl run` (the same, then GitOps)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from buildctl import credentials, record
from buildctl.commands.update_manifests import update_manifests
from buildctl.errors import OperationError
from buildctl.model import BuildOptions, Config, GitOpsResult
from buildctl.plan import new_run_id
from buildctl.registry import RegistryClient
from buildctl.release import ProgressFn, ReleaseOutcome, build_release


@dataclass(frozen=True)
class RunResult:
    outcome: ReleaseOutcome
    gitops: GitOpsResult | None
    record_path: str


def _options(config: Config, *, pull: bool, no_cache: bool) -> BuildOptions:
    return replace(config.build, pull=config.build.pull or pull, no_cache=config.build.no_cache or no_cache)


def release(config: Config, *, with_gitops: bool, jobs: int | None = None, pull: bool = False,
            no_cache: bool = False, record_path: Path | None = None, pin_digest: bool | None = None,
            progress: ProgressFn | None = None) -> RunResult:
    run_id = new_run_id()
    run_dir = config.root / ".buildctl" / "runs" / run_id
    creds = credentials.registry_credentials_from_env()
    if creds is not None:
        credentials.login(config.registry, creds)
    with RegistryClient(credentials={config.registry: creds} if creds else None) as client:
        outcome = build_release(config, run_dir=run_dir, run_id=run_id, jobs=jobs,
                                options=_options(config, pull=pull, no_cache=no_cache), client=client,
                                progress=progress)
    gitops = None
    target = record_path or run_dir / "release.json"
    try:
        if outcome.passed and with_gitops:
            if config.gitops is None:
                raise OperationError("`buildctl run` needs a gitops: section in services.yaml (or use `buildctl build`)")
            gitops = update_manifests(config, releases=outcome.released(), pin_digest=pin_digest)
    finally:
        record.write_record(target, record.release_record(outcome, gitops=gitops))
    return RunResult(outcome, gitops, str(target))

"""`buildctl doctor`: is this machine ready to release? One line per check, with a fix."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from buildctl import platforms as platforms_of
from buildctl.engine import binfmt
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.errors import BuildctlError, CommandError
from buildctl.gitops import git as gitops
from buildctl.inspect.cache import shared_layer_cache
from buildctl.model import Config
from buildctl.pipeline.results import DoctorCheck, DoctorResult
from buildctl.programs import ProgramError, run_program
from buildctl.redaction import redact_url
from buildctl.registry import access
from buildctl.registry.credentials import CredentialLookup

STACK_FIX = access.STACK_FIX


def _failed(name: str, exc: BuildctlError, fix: str) -> DoctorCheck:
    return DoctorCheck(name, False, exc.message.splitlines()[0], exc.hint or fix)


def doctor(config: Config) -> DoctorResult:
    checks: list[DoctorCheck] = []
    docker_cli = shutil.which("docker")
    checks.append(DoctorCheck("docker CLI", bool(docker_cli), docker_cli or "not found on PATH", STACK_FIX))
    info = None
    try:
        info = engine.engine_info()
        checks.append(DoctorCheck("docker daemon", True, f"client {info.client_version}, server {info.server_version}"))
    except BuildctlError as exc:
        checks.append(_failed("docker daemon", exc, STACK_FIX))
    try:
        checks.append(DoctorCheck("buildx", True, engine.buildx_version()))
    except BuildctlError as exc:
        checks.append(_failed("buildx", exc, "apt-get install docker-buildx (see README, The stack)"))
    if info is not None:
        checks.append(DoctorCheck(
            "multi-platform image store", info.multi_platform_store, info.image_store or "unknown",
            "" if info.multi_platform_store else builder.DAEMON_JSON_FIX,
        ))
    native = info.native_platform if info else "linux/amd64"
    if info is None or builder.runs_locally(config.builder, info):  # remote nodes: their hosts' handlers
        for platform in platforms_of.foreign(config.all_platforms(), native):
            checks.append(_binfmt_check(platform))
    if info is not None:
        checks.extend(_builder_checks(config))
    checks.extend(_registry_checks(config))
    try:
        checks.append(DoctorCheck("git", True, gitops.git_version()))
    except BuildctlError as exc:
        checks.append(_failed("git", exc, "apt-get install git"))
    if config.gitops is not None:
        checks.append(_gitops_remote_check(config))
    checks.append(_layer_cache_check())
    if (clash := _name_clash_check()) is not None:
        checks.append(clash)
    return DoctorResult(tuple(checks))


def _registry_checks(config: Config) -> list[DoctorCheck]:
    """Reachable, and the credentials a release would use found and accepted (push scope for the
    first service's repository where the registry issues tokens)."""
    repository = config.services[0].image if config.services else "buildctl/doctor"
    try:
        reachable, credentials = access.check(config.registry, repository, CredentialLookup(release_registry=config.registry))
    except BuildctlError as exc:  # the lookup itself failed: half-set variables, an unreadable Docker config
        return [_failed("registry credentials", exc, "")]
    return [DoctorCheck("registry", reachable.ok, reachable.detail, reachable.fix),
            DoctorCheck("registry credentials", credentials.ok, credentials.detail, credentials.fix)]


def _gitops_remote_check(config: Config) -> DoctorCheck:
    """``git ls-remote`` of the GitOps repository with the token a release would use."""
    cfg = config.gitops
    assert cfg is not None
    shown = redact_url(cfg.repo)
    try:
        gitops.check_repo_url(cfg.repo)
        git = gitops.Git(cfg, token=gitops.git_token_from_env(), throwaway=True)
        proc = git.run("ls-remote", "--heads", "--", gitops.clone_source(cfg.repo), cfg.branch, cwd=None,
                       what=f"reaching the GitOps repository {shown}")
    except CommandError as exc:
        if gitops.no_repository(exc.failure.output):
            exc = gitops.missing_repository_error(cfg.repo, key="gitops.repo")
        fix = exc.hint or ("set BUILDCTL_GIT_TOKEN (SYSTEM_ACCESSTOKEN in Azure Pipelines) to a token that may "
                           "push, or fix gitops.repo")
        return DoctorCheck("gitops remote", False, exc.message.splitlines()[0], fix)
    except BuildctlError as exc:
        return DoctorCheck("gitops remote", False, exc.message.splitlines()[0], exc.hint or "fix gitops.repo")
    if not proc.stdout.strip():  # the release clones that branch: without it, the GitOps step fails
        return DoctorCheck("gitops remote", False, f"{shown} reachable, but it has no branch {cfg.branch}",
                           "push that branch first, or fix gitops.branch")
    return DoctorCheck("gitops remote", True, f"{shown} reachable with its auth, branch {cfg.branch} found")


def _layer_cache_check() -> DoctorCheck:
    """Where verification caches layer tables and verdicts, how full, and its bound (LRU eviction)."""
    cache = shared_layer_cache()
    files, used = cache.usage()
    writable = _writable(cache.directory)
    detail = (f"{cache.directory}: {files} files, {used / (1 << 20):.1f} MiB of {cache.max_bytes >> 20} MiB "
              "(least recently used evicted first)")
    return DoctorCheck("layer cache", writable, detail + ("" if writable else "; not writable"),
                       "" if writable else "set XDG_CACHE_HOME to a writable folder (verification still works, uncached)")


def _writable(directory) -> bool:
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _binfmt_check(platform: str) -> DoctorCheck:
    name = f"binfmt {platform}"
    if not binfmt.mounted():
        return DoctorCheck(name, False, "binfmt_misc is not mounted", "buildctl binfmt (or scripts/stack.sh up)")
    state = binfmt.read_handler(platform)
    if not state.registered:
        return DoctorCheck(name, False, f"{state.handler} not registered", "buildctl binfmt")
    if not state.enabled:
        return DoctorCheck(name, False, f"{state.handler} registered but disabled", f"update-binfmts --enable {state.handler}")
    if "F" not in state.flags:
        return DoctorCheck(name, False, f"{state.handler} lacks the F flag (flags: {state.flags or '-'})",
                           "re-register with the F (fix-binary) flag: buildctl binfmt --method image")
    return DoctorCheck(name, True, f"{state.handler} enabled, flags {state.flags}, {state.interpreter}")


def _builder_checks(config: Config) -> list[DoctorCheck]:
    """One line per node of the configured builder: endpoint, status, BuildKit version, platforms."""
    cfg = config.builder
    try:
        state = builder.describe(cfg)
    except BuildctlError as exc:
        return [_failed(f"builder {cfg.name}", exc, "docker buildx ls")]
    if state is None:
        fine = cfg.driver != "docker"  # buildctl creates it on first use
        return [DoctorCheck(f"builder {cfg.name}", fine, "not created yet (build/run/builder create it)" if fine
                            else "not found", "" if fine else "set builder.name to a Docker context (default)")]
    return [
        DoctorCheck(f"builder node {n.name}", n.status == "running",
                    f"{n.endpoint or 'local engine'} {n.status}, BuildKit {n.version or '?'}, "
                    f"platforms {', '.join(n.pinned or n.platforms[:6]) or '?'}",
                    "" if n.status == "running" else "buildctl builder (starts it) or start its BuildKit daemon")
        for n in state.nodes
    ]


# BuildKit's CLI is also called buildctl (moby/buildkit images, Homebrew's and Alpine's buildkit
# packages); our stack installs it as bk-buildctl. Only a clash gets a line; ok, since calling this
# one by its path or as `python -m buildctl` is fine: the line says which one `buildctl` runs.
def _name_clash_check() -> DoctorCheck | None:
    found = _every_on_path("buildctl")
    others = [p for p in found if not _is_this_package(p)]
    if not others:
        return None
    venv_script = Path(sys.executable).parent / "buildctl"
    how = (f"{venv_script} or " if venv_script.is_file() else "") + f"{sys.executable} -m buildctl"
    listed = "; ".join(f"{_whose(p)} at {p}" for p in others)
    if _is_this_package(found[0]):
        return DoctorCheck("buildctl on PATH", True, f"`buildctl` runs this one ({found[0]}); also on PATH: {listed}. "
                                                     f"Unambiguous: {how}")
    return DoctorCheck("buildctl on PATH", True, f"warning: `buildctl` runs {_whose(found[0])} ({found[0]}), not this one; "
                                                 f"call this one as {how}, or put its folder first on PATH")


def _every_on_path(name: str) -> list[Path]:
    seen: dict[Path, Path] = {}
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and (hit := shutil.which(name, path=entry)):
            seen.setdefault(Path(hit).resolve(), Path(hit))
    return list(seen.values())


def _is_this_package(path: Path) -> bool:
    """This very program, or a console script of this package (pip writes `from buildctl.__main__ import main`)."""
    if path.resolve() == Path(sys.argv[0]).resolve():
        return True
    try:
        with path.open("rb") as file:
            return b"from buildctl." in file.read(4096)
    except OSError:
        return False


def _whose(path: Path) -> str:
    try:
        out = run_program([str(path), "--version"], what="which buildctl", timeout=5).stdout
    except ProgramError:
        out = ""
    return "BuildKit's buildctl" if "github.com/moby/buildkit" in out else "another buildctl"

"""`buildctl doctor`: is this machine ready to release? One line per check, with a fix."""

from __future__ import annotations

import shutil

from buildctl import platforms as platforms_of
from buildctl.engine import binfmt
from buildctl.engine import builders as builder
from buildctl.engine import docker as engine
from buildctl.errors import BuildctlError
from buildctl.gitops import git as gitops
from buildctl.model import Config
from buildctl.pipeline.results import DoctorCheck, DoctorResult
from buildctl.registry import client as registry

STACK_FIX = "run scripts/stack.sh up (installs and starts the engine, QEMU and the local registry)"


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
    for platform in platforms_of.foreign(config.all_platforms(), native):
        checks.append(_binfmt_check(platform))
    try:
        checks.append(DoctorCheck("registry", True, registry.ping(config.registry)))
    except BuildctlError as exc:
        checks.append(_failed("registry", exc, f"start it ({STACK_FIX}) or set registry: in services.yaml"))
    try:
        checks.append(DoctorCheck("git", True, gitops.git_version()))
    except BuildctlError as exc:
        checks.append(_failed("git", exc, "apt-get install git"))
    return DoctorResult(tuple(checks))


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

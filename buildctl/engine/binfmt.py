"""Step 1: QEMU binfmt_misc handlers for every configured non-native platform.

A handler must be registered, enabled and carry the `F` flag (interpreter opened at
registration, so it also works inside containers whose rootfs has no qemu). Registration is
idempotent: a correct handler is left alone. Afterwards we execute a tiny static program of
that architecture to prove emulation really runs.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from dataclasses import replace
from pathlib import Path

from buildctl import platforms as platforms_of
from buildctl.engine import docker as engine
from buildctl.engine.results import (
    BinfmtAction,
    BinfmtResult,
    BuilderReport,
    HandlerState,
)
from buildctl.errors import CommandError, OperationError
from buildctl.model import BinfmtConfig
from buildctl.platforms import Platform
from buildctl.programs import ProgramError, run_program

PROGRAM_TIMEOUT_SECONDS = 30  # update-binfmts, `qemu --version`, the probe: each a moment
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# A minimal static program per architecture that exits with status 42: proof that the kernel
# handed it to a working emulator. (ELF machine, code)
_PROBE_EXIT = 42
_PROBE_CODE = {  # (ELF machine, code for an exit status < 256)
    "amd64": (62, lambda status: bytes([0xBF, status, 0, 0, 0]) + bytes.fromhex("b83c000000" "0f05")),  # mov edi,S; mov eax,60; syscall
    "arm64": (183, lambda status: struct.pack("<3I", 0xD2800000 | status << 5, 0xD2800BA8, 0xD4000001)),  # mov x0,#S; mov x8,#93; svc #0
}


def arch_of(platform: str) -> str:
    return Platform.of(*platform.split("/")).arch


def handler_of(platform: str) -> str | None:
    """The qemu-user-static binfmt handler that runs ``platform``'s binaries (platforms.ARCHES)."""
    info = Platform.of(*platform.split("/")).info
    return info.qemu if info else None




def mounted() -> bool:
    return (BINFMT_DIR / "status").exists()


def read_handler(platform: str) -> HandlerState:
    name = handler_of(platform)
    if name is None:
        raise OperationError(f"no known QEMU binfmt handler for {platform}")
    path = BINFMT_DIR / name
    try:
        text = path.read_text()
    except FileNotFoundError:
        return HandlerState(platform, name, False, False, "", "")
    fields = dict(line.split(" ", 1) if " " in line else (line, "") for line in text.splitlines())
    return HandlerState(
        platform=platform,
        handler=name,
        registered=True,
        enabled="enabled" in text.splitlines()[:1],
        flags=fields.get("flags:", "").strip(),
        interpreter=fields.get("interpreter", "").strip(),
    )


def ensure(platforms: tuple[str, ...], *, native: str, config: BinfmtConfig) -> tuple[BinfmtResult, ...]:
    """Register missing handlers with the configured method, then probe each foreign platform."""
    return tuple(r if r.action is BinfmtAction.NATIVE else replace(r, probe=probe(r.platform))
                 for r in register_host(platforms, native=native, config=config))


def register_host(platforms: tuple[str, ...], *, native: str, config: BinfmtConfig) -> tuple[BinfmtResult, ...]:
    """This host's handlers for every foreign platform: registered when missing, left alone when
    correct. Only for builders on the local engine (builders.runs_locally)."""
    results = []
    for platform in platforms:
        if not platforms_of.foreign((platform,), native):
            results.append(BinfmtResult(platform, "", BinfmtAction.NATIVE, None, probe="native"))
            continue
        state = read_handler(platform) if mounted() else None
        action = BinfmtAction.UNCHANGED
        if state is None or not state.ok:
            _register(platform, config=config)
            action = BinfmtAction.REGISTERED
            state = read_handler(platform)
            if not state.ok:
                raise OperationError(
                    f"binfmt handler {state.handler} for {platform} is still not usable after registration "
                    f"(registered={state.registered}, enabled={state.enabled}, flags={state.flags or '-'})",
                    hint="the F flag is required; see README 'The stack'",
                )
        results.append(BinfmtResult(platform, state.handler, action, state, _qemu_version(state)))
    return tuple(results)


def probe_local(host: tuple[BinfmtResult, ...], *, builder: BuilderReport) -> tuple[BinfmtResult, ...]:
    """For a builder on this host's engine: its builds run on this kernel, through the handlers
    ``register_host`` just checked (F flag: usable inside its containers too), so running the probe
    program here proves what a probe build would — in 5 ms instead of a ~0.5 s build."""
    return tuple(r if r.action is BinfmtAction.NATIVE else
                 replace(r, probe=f"{probe(r.platform)} on this host's kernel, where builder {builder.name} builds")
                 for r in host)


def probe_builder(platforms: tuple[str, ...], *, builder: BuilderReport,
                  host: tuple[BinfmtResult, ...] = ()) -> tuple[BinfmtResult, ...]:
    """Prove the builder runs every platform it has no native node for: one build (no cache, no
    output) whose RUN step executes a tiny static program of each such platform — where the builds
    really run, be it this engine, Docker Desktop's VM or a remote daemon. ``host``: this host's
    handler results, when the builder runs on the local engine."""
    natives = {platforms_of.normalize(p): n.name for n in builder.nodes for p in n.native}
    emulated = [p for p in platforms if platforms_of.normalize(p) not in natives]
    probed = [p for p in emulated if arch_of(p) in _PROBE_CODE]
    if probed:
        with tempfile.TemporaryDirectory(prefix="buildctl-probe-") as tmp:
            for arch in {arch_of(p) for p in probed}:
                (Path(tmp) / f"probe-{arch}").write_bytes(probe_program(arch, status=0))
            (Path(tmp) / "Dockerfile").write_text(_PROBE_DOCKERFILE)
            try:
                engine.probe_build(builder.name, tuple(probed), Path(tmp))
            except CommandError as exc:
                last = (exc.failure.output.strip().splitlines() or ["?"])[-1]
                nodes = ", ".join(sorted({builder.node_of(p) for p in probed} - {""}))
                raise OperationError(
                    f"builder {builder.name!r} cannot run {', '.join(probed)} programs"
                    + (f" (node {nodes})" if nodes else "") + f": {last}",
                    hint="run `buildctl binfmt` (QEMU handlers with the F flag), then recreate the builder"
                    if builder.local else "enable QEMU binfmt handlers (F flag) on that node's host, "
                    "or add a native node for the platform (builder.nodes)",
                ) from None
    by_platform = {r.platform: r for r in host}
    results = []
    for platform in platforms:
        node = natives.get(platforms_of.normalize(platform))
        if node is not None:
            results.append(BinfmtResult(platform, "", BinfmtAction.NATIVE, None, probe=f"native on node {node}"))
            continue
        known = by_platform.get(platform)
        base = known or BinfmtResult(platform, handler_of(platform) or "", BinfmtAction.EMULATED, None)
        where = f"on builder {builder.name} node {builder.node_of(platform) or '?'}"
        results.append(replace(base, probe=f"ran a {platform} program {where} under emulation"
                               if platform in probed else f"not probed (no probe program for {platform})"))
    return tuple(results)


# A RUN step needs no shell: the probe is the whole image. TARGETARCH picks the program.
_PROBE_DOCKERFILE = """FROM scratch
ARG TARGETARCH
COPY --chmod=0755 probe-${TARGETARCH} /probe
RUN ["/probe"]
"""


def _register(platform: str, *, config: BinfmtConfig) -> None:
    if not mounted():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)], "cannot mount binfmt_misc")
    if config.method == "image":
        # What hosted CI agents do; pinned because unpinned installers have shipped broken qemu.
        engine.run(config.image, ["--install", arch_of(platform)], privileged=True)
        return
    if not shutil.which("update-binfmts"):
        raise OperationError(
            f"cannot register a QEMU handler for {platform}: update-binfmts not found",
            hint="apt-get install qemu-user-static binfmt-support, or set binfmt.method: image",
        )
    _run(["update-binfmts", "--enable", handler_of(platform) or ""], f"cannot enable the handler for {platform}")


def _run(argv: list[str], what: str) -> str:
    proc = run_program(argv, what=what, timeout=PROGRAM_TIMEOUT_SECONDS)
    if proc.returncode != 0:
        raise CommandError(what, command=argv, returncode=proc.returncode, output=proc.stdout + proc.stderr)
    return proc.stdout


def _qemu_version(state: HandlerState) -> str:
    interpreter = Path(state.interpreter).resolve() if state.interpreter else None
    if interpreter is None or not interpreter.exists():
        return "unknown (interpreter not visible from this host)"
    try:
        proc = run_program([str(interpreter), "--version"], what="qemu version", timeout=PROGRAM_TIMEOUT_SECONDS)
    except ProgramError:
        return "unknown"
    return proc.stdout.splitlines()[0].strip() if proc.returncode == 0 and proc.stdout else "unknown"


def probe_program(arch: str, *, status: int = _PROBE_EXIT) -> bytes:
    """A 64-bit little-endian static ELF executable that exits with ``status``."""
    machine, assemble = _PROBE_CODE[arch]
    code = assemble(status)
    base, header_size = 0x400000, 64 + 56
    ehdr = struct.pack(
        "<4sBBBBB7xHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, little endian, version 1, SysV ABI
        2, machine, 1, base + header_size, 64, 0, 0, 64, 56, 1, 0, 0, 0,
    )
    size = header_size + len(code)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # PT_LOAD, R+X
    return ehdr + phdr + code


def probe(platform: str) -> str:
    arch = arch_of(platform)
    if arch not in _PROBE_CODE:
        return f"not probed (no probe program for {platform})"
    with tempfile.TemporaryDirectory(prefix="buildctl-probe-") as tmp:
        path = Path(tmp) / f"probe-{arch}"
        path.write_bytes(probe_program(arch))
        os.chmod(path, 0o755)
        try:
            proc = run_program([str(path)], what=f"emulation of {platform}", timeout=PROGRAM_TIMEOUT_SECONDS)
        except ProgramError as exc:
            raise OperationError(
                f"emulation of {platform} does not run: {exc.message.removeprefix(f'emulation of {platform}: ')}",
                hint="the binfmt handler is registered but its interpreter cannot start; run `buildctl binfmt`",
            ) from None
    if proc.returncode != _PROBE_EXIT:
        raise OperationError(f"emulation of {platform} is broken: the probe exited {proc.returncode}, expected {_PROBE_EXIT}")
    return f"ran a {platform} program under emulation (exit {_PROBE_EXIT})"

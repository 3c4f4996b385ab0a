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
import subprocess
import tempfile
from pathlib import Path

from buildctl import platforms as platforms_of
from buildctl.engine import docker as engine
from buildctl.engine.results import BinfmtAction, BinfmtResult, HandlerState
from buildctl.errors import CommandError, OperationError
from buildctl.model import BinfmtConfig
from buildctl.platforms import Platform

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# A minimal static program per architecture that exits with status 42: proof that the kernel
# handed it to a working emulator. (ELF machine, code)
_PROBE_EXIT = 42
_PROBE_CODE = {
    "amd64": (62, bytes.fromhex("bf2a000000" "b83c000000" "0f05")),  # mov edi,42; mov eax,60; syscall
    "arm64": (183, struct.pack("<3I", 0xD2800540, 0xD2800BA8, 0xD4000001)),  # mov x0,#42; mov x8,#93; svc #0
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
        results.append(BinfmtResult(platform, state.handler, action, state, _qemu_version(state), probe(platform)))
    return tuple(results)


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
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CommandError(what, command=argv, returncode=proc.returncode, output=proc.stdout + proc.stderr)
    return proc.stdout


def _qemu_version(state: HandlerState) -> str:
    interpreter = Path(state.interpreter).resolve() if state.interpreter else None
    if interpreter is None or not interpreter.exists():
        return "unknown (interpreter not visible from this host)"
    proc = subprocess.run([str(interpreter), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines()[0].strip() if proc.returncode == 0 and proc.stdout else "unknown"


def probe_program(arch: str) -> bytes:
    """A 64-bit little-endian static ELF executable that exits with status 42."""
    machine, code = _PROBE_CODE[arch]
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
            proc = subprocess.run([str(path)], capture_output=True, check=False, timeout=30)
        except OSError as exc:
            raise OperationError(
                f"emulation of {platform} does not run: {exc.strerror}",
                hint="the binfmt handler is registered but its interpreter cannot start; run `buildctl binfmt`",
            ) from None
    if proc.returncode != _PROBE_EXIT:
        raise OperationError(f"emulation of {platform} is broken: the probe exited {proc.returncode}, expected {_PROBE_EXIT}")
    return f"ran a {platform} program under emulation (exit {_PROBE_EXIT})"

"""Running kustomize: the only module that does (as git.py is for git). Bounded time, no secrets.

``kustomize build`` is what Argo CD (and Flux) run on a kustomization directory; running it on
the release's work tree before pushing shows the error there instead of in the CD system.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from buildctl.gitops.git import TOKEN_VARIABLES, TRANSPORT_POLICY
from buildctl.programs import ProgramError, run_program

KUSTOMIZE_TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class KustomizeBuild:
    directory: Path
    ok: bool
    output: str  # the error text when not ok (paths relative to the repository)


def available() -> str | None:
    """The kustomize executable, or None when it is not installed (the check is then skipped)."""
    return shutil.which("kustomize")


def helm() -> str | None:
    """The helm executable that ``kustomize build --enable-helm`` runs for ``helmCharts:``, or None."""
    return shutil.which("helm")


def build_command(exe: str, directory: Path, *, enable_helm: bool) -> list[str]:
    # --enable-helm: kustomize inflates `helmCharts:` with `helm template` (kustomize's helmCharts docs).
    return [exe, "build", *(["--enable-helm"] if enable_helm else []), str(directory)]


def build(directory: Path, *, root: Path, enable_helm: bool = False) -> KustomizeBuild:
    """``kustomize build DIRECTORY``; the rendered YAML is not kept, only whether it rendered."""
    exe = available()
    if exe is None:
        raise FileNotFoundError("kustomize")
    # The Git token has no business in kustomize's environment (it may run git for remote bases),
    # and the git it runs for them gets buildctl's transport policy (no ext::, fd::, ...).
    env = {**{k: v for k, v in os.environ.items() if k not in TOKEN_VARIABLES}, **TRANSPORT_POLICY}
    try:
        proc = run_program(build_command(exe, directory, enable_helm=enable_helm), what="render",
                           timeout=KUSTOMIZE_TIMEOUT_SECONDS, env=env, cwd=root)
    except ProgramError as exc:  # not started, or no answer in time: the directory did not render here
        return KustomizeBuild(directory, False, exc.message.removeprefix("render: "))
    if proc.returncode == 0:
        return KustomizeBuild(directory, True, "")
    text = proc.stderr.strip() or proc.stdout.strip() or f"exited {proc.returncode}"
    return KustomizeBuild(directory, False, text.replace(f"{root.resolve()}/", "").replace(f"{root}/", ""))

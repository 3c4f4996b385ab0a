"""Scratch projects for end-to-end releases: Dockerfiles that pass or fail verification, a
services.yaml for them, a bare GitOps remote, and registry look-ups of what was pushed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.cli import BASE_IMAGE, REGISTRY
from tests.helpers.gitops import git
from tests.helpers.manifest_lookup import INDEX_ACCEPT, manifest_digest  # noqa: F401 (INDEX_ACCEPT: re-exported for tests)

GOOD = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN python3 -c "import platform; print(platform.machine())" > /machine
COPY app.py /app/app.py
ENTRYPOINT ["python3", "/app/app.py"]
"""
# The seed's failure: an amd64-pinned base in a multi-platform build. The arm64 entry's config
# says arm64, every binary is x86-64.
PINNED = GOOD.replace("FROM ${BASE_IMAGE}", "FROM --platform=linux/amd64 ${BASE_IMAGE}").replace("RUN python3", "RUN true || python3")
BROKEN_ON_ARM = GOOD.replace(
    "RUN python3",
    'RUN if [ "$(uname -m)" = aarch64 ]; then echo "compiler crashed on arm64" >&2; exit 3; fi; python3',
)


def index_digest(repository: str, tag: str) -> str | None:
    """The digest of ``repository:tag`` in the local registry; None only on 404 manifest unknown."""
    return manifest_digest(f"http://{REGISTRY}/v2/{repository}/manifests/{tag}")


def make_project(root: Path, dockerfiles: dict[str, str]) -> Path:
    services = []
    for name, dockerfile in dockerfiles.items():
        (root / name).mkdir()
        (root / name / "Dockerfile").write_text(dockerfile)
        (root / name / "app.py").write_text(f"print('{name}')\n")
        services.append(f"  {name}:\n    context: {name}\n    image: buildctl-e2e/{name}\n"
                        f"    build_args: {{BASE_IMAGE: {BASE_IMAGE}}}\n")
    (root / "services.yaml").write_text("services:\n" + "".join(services))
    return root


def record_of(path: Path) -> dict:
    return json.loads(path.read_text())


def seed_gitops(tmp_path: Path, source: Path) -> Path:
    """A bare GitOps remote holding ``source`` (a folder of manifests) on main."""
    work = tmp_path / "seed"
    git("init", "-q", "-b", "main", str(work))
    subprocess.run(["cp", "-r", str(source), str(work / source.name)], check=True)
    git("add", "-A", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed", cwd=work)
    bare = tmp_path / "gitops.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare

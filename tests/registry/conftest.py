"""Fixtures the registry tests share: a two-platform image in the stack's registry, real
registries with Basic (htpasswd) and Bearer (token server) auth pulling it through, and a folder
on PATH for real credential helper programs."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.buildx import build_push
from tests.helpers.elf import elf_for
from tests.helpers.registry import UPSTREAM, TokenServer, htpasswd_registry, token_registry

REPO = "buildctl-test/registry-probe"


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-platform scratch image in the stack's registry (REPO:1); yields its index digest."""
    ctx = tmp_path_factory.mktemp("probe")
    for arch in ("amd64", "arm64"):
        (ctx / arch).mkdir()
        (ctx / arch / "app").write_bytes(elf_for(arch))
    (ctx / "Dockerfile").write_text('FROM scratch\nARG TARGETARCH\nCOPY --chmod=755 ${TARGETARCH}/app /app\n'
                                    'ENTRYPOINT ["/app"]\n')
    ref = f"{UPSTREAM}/{REPO}:1"
    built = build_push(["--platform", "linux/amd64,linux/arm64", "--tag", ref, "--push",
                        "--metadata-file", str(ctx / "meta.json"), str(ctx)], timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    yield json.loads((ctx / "meta.json").read_text())["containerimage.digest"]
    subprocess.run(["docker", "image", "rm", "--force", ref], capture_output=True)


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[str]:
    registry = htpasswd_registry(tmp_path_factory.mktemp("htpasswd-registry"))
    yield registry.address
    registry.close()


@pytest.fixture(scope="module")
def bearer_registry(tmp_path_factory: pytest.TempPathFactory, image: str) -> Iterator[tuple[str, TokenServer]]:
    tokens = TokenServer(tmp_path_factory.mktemp("token-server"))
    registry = token_registry(tmp_path_factory.mktemp("token-registry"), tokens)
    yield registry.address, tokens
    registry.close()
    tokens.close()


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder first on PATH (of this process and the programs it starts)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}:{os.environ['PATH']}")
    return folder

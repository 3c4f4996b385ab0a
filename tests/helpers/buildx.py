"""docker commands that push (`buildx build --push`, `imagetools create`) for test fixtures, retried
like buildctl's own pushes.

The stack's Distribution registry answers 500 now and then under concurrent pushes (README
"Performance"); buildctl retries that (engine/retry.py), and so must the raw builds that make
test images, or a fixture fails for a reason no test is about. The same classifier decides.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from buildctl.config.builder_config import stack_buildkit_image
from buildctl.engine.retry import classify
from buildctl.model import BuilderConfig, Driver, frozen_map
from tests.helpers.cli import REGISTRY
from tests.helpers.manifest_lookup import manifest_digest

ATTEMPTS = 3


def build_push(args: Sequence[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``docker buildx build *args`` (which should --push); the last attempt's result."""
    return docker_retried(["buildx", "build", *args], timeout=timeout)


def docker_retried(args: Sequence[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``docker *args``, again (up to ATTEMPTS) while it fails on a transient registry fault."""
    for attempt in range(1, ATTEMPTS + 1):
        proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        verdict = classify(proc.stderr) if proc.returncode != 0 else None
        if verdict is None or verdict[0] != "transient" or attempt == ATTEMPTS:
            return proc
        time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def pushed_once(ref: str, context: Path, *options: str) -> str:
    """``ref`` (a tag of the stack's registry that names its content: a digest of the context) built
    from ``context`` with ``options`` and pushed, unless the registry holds it already; ``ref``."""
    repository, _, tag = ref.removeprefix(f"{REGISTRY}/").partition(":")
    if manifest_digest(f"http://{REGISTRY}/v2/{repository}/manifests/{tag}") is None:
        proc = build_push([*options, "--tag", ref, "--push", str(context)])
        assert proc.returncode == 0, f"building {ref} failed:\n{proc.stderr[-3000:]}"
    return ref


@contextmanager
def new_container_builder(prefix: str) -> Iterator[BuilderConfig]:
    """The config of a docker-container builder on the stack's BuildKit image that does not exist
    yet (named ``prefix``-<random>); removed afterwards if something created it."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    image = stack_buildkit_image()
    if image is None:
        pytest.fail("no local BuildKit image: run scripts/stack.sh up --buildkit")
    try:
        yield BuilderConfig(name=name, driver=Driver.DOCKER_CONTAINER,
                            driver_opts=frozen_map({"network": "host", "image": image}))
    finally:
        subprocess.run(["docker", "buildx", "rm", name], capture_output=True, check=False)

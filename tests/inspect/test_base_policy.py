"""policy.base_images (inspect/base_policy.py): allowed registries and digest pinning of every image
the build pulls, refused with Dockerfile:LINE before anything is built; the real CLI against the
local registry and the stack's multi-arch base."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from buildctl.config.loader import load_config
from buildctl.errors import ConfigError
from buildctl.inspect.base_policy import refuse_policy_violations, violation
from buildctl.model import BaseImagePolicy
from tests.helpers.cli import BASE_IMAGE, REGISTRY, run_cli

LOCAL_ONLY = BaseImagePolicy(registries=(REGISTRY,))
PINNED = BaseImagePolicy(require_digest=True)
DIGEST = "sha256:" + "a" * 64


def test_registries_are_compared_as_docker_reads_the_name() -> None:
    assert violation(f"{REGISTRY}/team/base:1", LOCAL_ONLY) is None
    assert violation("python:3.12", BaseImagePolicy(registries=("docker.io",))) is None
    assert violation("index.docker.io/library/python:3.12", BaseImagePolicy(registries=("docker.io",))) is None
    assert violation("python:3.12", BaseImagePolicy(registries=("index.docker.io",))) is None
    message, hint = violation("python:3.12", LOCAL_ONLY)
    assert message == f"python:3.12 comes from docker.io, which policy.base_images.registries does not allow " \
                      f"(allowed: {REGISTRY})"
    assert "mirror the image" in hint
    # a registry is a host, not a prefix of one
    assert violation(f"{REGISTRY}0/team/base:1", LOCAL_ONLY) is not None
    assert violation("127.0.0.1/team/base:1", LOCAL_ONLY) is not None


def test_require_digest_wants_a_digest_whatever_the_tag() -> None:
    assert violation(f"{REGISTRY}/team/base@{DIGEST}", PINNED) is None
    assert violation(f"{REGISTRY}/team/base:1@{DIGEST}", PINNED) is None
    assert violation(f"{REGISTRY}/team/base:1", PINNED)[0] == (
        f"{REGISTRY}/team/base:1 is not pinned by digest (policy.base_images.require_digest)")
    assert violation("alpine", PINNED) is not None
    assert violation("alpine", BaseImagePolicy()) is None  # no policy: anything


def _project(root: Path, dockerfile: str, policy: str) -> Path:
    (root / "api").mkdir(exist_ok=True)
    (root / "api" / "Dockerfile").write_text(dockerfile)
    image = "buildctl-test-policy/api-" + "".join(c for c in root.name.lower() if c.isalnum())[-12:]
    (root / "services.yaml").write_text(f"policy:\n  base_images: {policy}\nservices:\n  api:\n"
                                        f"    context: api\n    image: {image}\n")
    return root / "services.yaml"


def test_the_config_key_is_read_and_checked(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path, "FROM scratch\n", f"{{registries: [{REGISTRY}], require_digest: true}}"))
    assert config.base_images == BaseImagePolicy((REGISTRY,), True)
    bad = _project(tmp_path, "FROM scratch\n", "{registries: ['https://r.io']}")
    with pytest.raises(ConfigError, match=r"services.yaml:2: .*invalid registry 'https://r.io'"):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"unknown key 'require_digests'"):
        load_config(_project(tmp_path, "FROM scratch\n", "{require_digests: true}"))


def test_every_image_of_the_stages_the_build_runs_is_checked_at_its_line(tmp_path: Path) -> None:
    text = (f"FROM {BASE_IMAGE}@{DIGEST} AS tools\nFROM alpine AS unused\n"
            f"FROM {BASE_IMAGE}@{DIGEST}\nCOPY --from=tools /a /a\nRUN --mount=from=busybox:1,target=/b true\n")
    config = load_config(_project(tmp_path, text, f"{{registries: [{REGISTRY}]}}"))
    with pytest.raises(ConfigError) as refused:
        refuse_policy_violations(config)
    assert refused.value.message.startswith("api/Dockerfile:5: service api: busybox:1 comes from docker.io")



def _tags(config: Path) -> int:
    repository = "buildctl-test-policy/api-" + "".join(c for c in config.parent.name.lower() if c.isalnum())[-12:]
    return httpx.get(f"http://{REGISTRY}/v2/{repository}/tags/list", timeout=10).status_code


@pytest.mark.engine
@pytest.mark.parametrize(("dockerfile", "policy", "expected"), [
    (f"FROM {BASE_IMAGE}\nCOPY --from=ghcr.io/org/tool:1 /t /t\n", f"{{registries: [{REGISTRY}]}}",
     "api/Dockerfile:2: service api: ghcr.io/org/tool:1 comes from ghcr.io, which policy.base_images.registries "
     f"does not allow (allowed: {REGISTRY})"),
    (f"ARG BASE={BASE_IMAGE}\nFROM ${{BASE}}\n", "{require_digest: true}",
     f"api/Dockerfile:2: service api: {BASE_IMAGE} is not pinned by digest (policy.base_images.require_digest)"),
])
def test_a_build_breaking_the_policy_is_refused_before_anything_is_built(tmp_path, dockerfile, policy,
                                                                         expected) -> None:
    config = _project(tmp_path, dockerfile, policy)
    result = run_cli("build", "-c", str(config), "--tag", "1")
    assert result.code == 2, result.output
    assert result.stderr.startswith(f"buildctl: error: {expected}"), result.stderr
    assert _tags(config) == 404  # nothing pushed
    assert not list((tmp_path / ".buildctl").glob("runs/*/*.log"))  # no build started


@pytest.mark.engine
def test_a_pinned_base_from_an_allowed_registry_passes_the_preflight(tmp_path) -> None:
    from buildctl.inspect.base_platforms import refuse_missing_platforms

    digest = httpx.head(f"http://{REGISTRY}/v2/buildctl/base/manifests/bookworm-1", timeout=10, headers={
        "Accept": "application/vnd.oci.image.index.v1+json"}).headers["Docker-Content-Digest"]
    config = load_config(_project(tmp_path, f"FROM {BASE_IMAGE}@{digest}\n",
                                  f"{{registries: [{REGISTRY}], require_digest: true}}"))
    refuse_policy_violations(config)
    refuse_missing_platforms(config)  # and the pinned index has both platforms

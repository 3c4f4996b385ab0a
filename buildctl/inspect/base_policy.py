"""``policy.base_images`` before a build: every image the build pulls (``FROM``, ``COPY --from``,
``RUN --mount=from=`` of the stages it runs, build args applied; inspect/dockerfile.base_images)
comes from an allowed registry (``registries``) and, with ``require_digest``, is pinned by digest.
A violation is refused with ``Dockerfile:LINE`` before any login, build or push.

Pure: the reference as written is the whole answer, so this runs before the registry look-up of
base_platforms.py. A name without a registry is Docker Hub's (``docker.io``), as docker and
BuildKit read it; ``index.docker.io`` is the same registry.
"""

from __future__ import annotations

from buildctl.errors import ConfigError
from buildctl.inspect.dockerfile import base_images
from buildctl.inspect.dockerfile_files import read_dockerfile
from buildctl.model import BaseImagePolicy, Config
from buildctl.references import DEFAULT_REGISTRY, parse_reference

_DOCKER_HUB_ALIASES = {"index.docker.io": DEFAULT_REGISTRY, "registry-1.docker.io": DEFAULT_REGISTRY}


def refuse_policy_violations(config: Config) -> None:
    """ConfigError (Dockerfile:LINE) at the first base image, in services.yaml then line order,
    that ``config.base_images`` does not allow."""
    policy = config.base_images
    if not policy.registries and not policy.require_digest:
        return
    for service in config.services:
        text, shown = read_dockerfile(config, service)
        for base in base_images(text, path=shown, target=service.target, build_args=service.build_args):
            problem = violation(base.reference, policy)
            if problem is not None:
                message, hint = problem
                raise ConfigError(f"service {service.name}: {message}", file=shown, line=base.line, hint=hint)


def violation(reference: str, policy: BaseImagePolicy) -> tuple[str, str] | None:
    """(message, hint) when ``policy`` refuses ``reference``, else None."""
    try:
        ref = parse_reference(reference)
    except ValueError as exc:
        return f"{exc}: policy.base_images cannot allow it", "write the image as REGISTRY/PATH[:TAG][@sha256:...]"
    allowed = {_registry(r) for r in policy.registries}
    if allowed and _registry(ref.registry) not in allowed:
        return (f"{reference} comes from {ref.registry}, which policy.base_images.registries does not allow "
                f"(allowed: {', '.join(policy.registries)})",
                "mirror the image into an allowed registry, or add its registry to policy.base_images.registries")
    if policy.require_digest and ref.digest is None:
        return (f"{reference} is not pinned by digest (policy.base_images.require_digest)",
                f"pin it: {reference}@sha256:... (`docker buildx imagetools inspect {reference}` shows the digest)")
    return None


def _registry(host: str) -> str:
    host = host.lower()
    return _DOCKER_HUB_ALIASES.get(host, host)

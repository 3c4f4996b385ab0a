"""Before a build: every image the build pulls (``FROM``, ``COPY --from``, ``RUN --mount=from=`` of
the stages it runs; build args applied) must have each platform it is pulled for. An image that
lacks one is refused with ``Dockerfile:LINE``: BuildKit would otherwise use a single-platform image
for every target, or fail late (https://github.com/docker/buildx/issues/1389).

Only a definite answer refuses: an image that cannot be resolved here (another registry's
credentials, no network, a reference buildx will reject itself) is left to the build, and the
whole look-up is bounded (PREFLIGHT_SECONDS, no retries), so a build never waits long on it.
``resolved_bases`` is the same look-up for ``plan --diff`` and reuse: each image's digest per platform
(``refuse_missing_platforms`` returns it, so a build resolves every base once).
"""

from __future__ import annotations

import logging

import httpx

from buildctl.errors import ConfigError, OperationError
from buildctl.inspect.descriptors import config_json, descriptor, is_attestation, platform_of
from buildctl.inspect.dockerfile import BUILD, TARGET, BaseImage, base_images
from buildctl.inspect.dockerfile_files import read_dockerfile
from buildctl.inspect.results import ResolvedBase
from buildctl.model import Config, ServiceConfig
from buildctl.platforms import Platform
from buildctl.references import parse_reference
from buildctl.registry.bounds import Deadline
from buildctl.registry.client import CredentialSource, RegistryClient
from buildctl.registry.results import RetryPolicy

log = logging.getLogger(__name__)

PREFLIGHT_SECONDS = 30.0
NOT_RESOLVED = "not resolved"  # the registry did not answer here (left to the build)
ABSENT = "absent"  # the registry answered: the image has no such platform (build/run refuse it)
_RETRY = RetryPolicy(attempts=1, total_seconds=10.0)  # no retry: an unanswered look-up is left to the build


def refuse_missing_platforms(config: Config, *,
                             credentials: CredentialSource | None = None) -> tuple[ResolvedBase, ...]:  # fmt: skip
    """ConfigError at the first base image (in services.yaml order) lacking a platform it is pulled
    for; else every base image with its digests (``resolved_bases``), from the same one look-up."""
    return resolved_bases(config, credentials=credentials, refuse_missing=True)


def _needed(base: BaseImage, service: ServiceConfig) -> list[str]:
    if base.platform == TARGET:
        return [str(Platform.of(*p.split("/"))) for p in service.platforms]
    if base.platform in (None, BUILD):
        return []  # unknown here, or the build machine's own: the build resolves it
    return [str(Platform.of(*base.platform.split("/")))]


def resolved_bases(config: Config, *, credentials: CredentialSource | None = None,
                   refuse_missing: bool = False) -> tuple[ResolvedBase, ...]:
    """Every service's base images and their per-platform digests (the image manifest each
    platform's build would use), as far as the registry answers within PREFLIGHT_SECONDS.
    ``refuse_missing``: ConfigError at the first image that lacks a platform it is pulled for."""
    known: dict[str, dict[str, str] | None] = {}
    out = []
    deadline = Deadline(PREFLIGHT_SECONDS, what="resolving the base images")
    with RegistryClient(credentials=credentials, timeout=10.0, retry=_RETRY) as client:
        for service in config.services:
            text, shown = read_dockerfile(config, service)
            for base in base_images(text, path=shown, target=service.target, build_args=service.build_args):
                if base.reference not in known:
                    known[base.reference] = _digests(client, base.reference, deadline)
                have = known[base.reference]
                needed = _needed(base, service)
                if refuse_missing and have is not None and (missing := [p for p in needed if p not in have]):
                    raise ConfigError(
                        f"service {service.name}: {base.reference} has no {', '.join(missing)} image (it has "
                        f"{', '.join(sorted(have)) or 'no platform'}): the {', '.join(missing)} build would "
                        "use another platform's image or fail late", file=shown, line=base.line,
                        hint="use a multi-platform image, or leave the platforms it lacks out of services.yaml")
                need = needed or sorted(have or ()) or [base.platform or "?"]
                unknown = NOT_RESOLVED if have is None else ABSENT
                out.append(ResolvedBase(service.name, shown, base.line, base.reference,
                                        tuple((p, (have or {}).get(p, unknown)) for p in need)))
    return tuple(out)


def _digests(client: RegistryClient, reference: str, deadline: Deadline) -> dict[str, str] | None:
    """Platform -> image manifest digest of ``reference``, or None when it cannot be told here."""
    try:
        ref = parse_reference(reference)
        manifest = client.get_manifest(ref, deadline=deadline)
        body = manifest.json()
        if manifest.is_index:
            return {platform_of(d.get("platform")): descriptor(d).digest for d in body.get("manifests") or []
                    if not is_attestation(d)}
        config = descriptor(body["config"])
        raw = client.get_blob(ref, config.digest, size=config.size, deadline=deadline)
        return {platform_of(config_json(raw, f"image config of {reference}")): manifest.digest}
    except (ValueError, KeyError, TypeError, AttributeError, OperationError, httpx.HTTPError) as exc:
        log.info("base image %s not resolved before the build: %s", reference, exc)
        return None

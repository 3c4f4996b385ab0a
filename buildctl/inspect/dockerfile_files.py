"""The Dockerfiles services.yaml names, read once for the lint (``doctor --dockerfile``) and for
the build's preflight, which refuses a build before anything is built when a Dockerfile has a
finding no platform survives (dockerfile.preflight_findings), naming ``Dockerfile:LINE``."""

from __future__ import annotations

from buildctl.errors import ConfigError
from buildctl.inspect.dockerfile import preflight_findings
from buildctl.model import Config, ServiceConfig


def read_dockerfile(config: Config, service: ServiceConfig) -> tuple[str, str]:
    """(text, path as shown: relative to services.yaml's folder when inside it)."""
    inside = service.dockerfile.is_relative_to(config.root)
    shown = service.dockerfile.relative_to(config.root).as_posix() if inside else str(service.dockerfile)
    try:
        return service.dockerfile.read_text(encoding="utf-8"), shown
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the Dockerfile: {exc}", file=shown) from None


def refuse_before_build(config: Config) -> None:
    """ConfigError (file:line) at the first preflight finding of any service's Dockerfile."""
    for service in config.services:
        text, shown = read_dockerfile(config, service)
        for finding in preflight_findings(text, path=shown, target=service.target):
            raise ConfigError(f"service {service.name}: {finding.message}", file=finding.file, line=finding.line,
                              hint="buildctl doctor --dockerfile lists every finding")

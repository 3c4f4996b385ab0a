"""`buildctl doctor --dockerfile`: lint every configured service's Dockerfile for emulated RUN steps."""

from __future__ import annotations

import platform as host

from buildctl.inspect import dockerfile as dockerfile_lint
from buildctl.inspect.dockerfile_files import read_dockerfile
from buildctl.inspect.results import DockerfileLint, DockerfileReport
from buildctl.model import Config
from buildctl.platforms import Platform


def native_platform() -> str:
    """The platform a local builder runs natively (BUILDPLATFORM for the docker driver)."""
    return str(Platform.of_machine(host.machine()))


def lint_dockerfiles(config: Config, *, native: str | None = None) -> DockerfileReport:
    native = native or native_platform()
    results = []
    for svc in config.services:
        text, shown = read_dockerfile(config, svc)
        findings = dockerfile_lint.lint(text, path=shown, platforms=svc.platforms, native=native, target=svc.target)
        results.append(DockerfileLint(svc.name, shown, svc.platforms, findings))
    return DockerfileReport(native, tuple(results))

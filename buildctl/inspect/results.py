"""What inspection reports: verification checks of pushed images, and Dockerfile lint findings.

Plain frozen data beside the code that produces it (verify.py, dockerfile.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from buildctl.inspect.dockerfile import Finding, Severity


class CheckStatus(StrEnum):
    """A verification check's verdict; only FAIL stops the release gate."""

    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class PlatformImage:
    platform: str  # os/arch[/variant]
    digest: str  # sha256 of that platform's image manifest


@dataclass(frozen=True)
class Check:
    """One verification check of one platform of one image."""

    platform: str  # "" for image-wide checks (e.g. the platform set)
    name: str  # platforms | config | elf | smoke
    status: CheckStatus
    detail: str = ""

    def __post_init__(self) -> None:
        # A status that is not a CheckStatus (a typo such as "failed") must not pass the gate.
        object.__setattr__(self, "status", CheckStatus(self.status))


@dataclass(frozen=True)
class Verification:
    reference: str  # what was verified, normally repository@sha256:...
    index_digest: str | None
    platforms: tuple[PlatformImage, ...]
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.status is not CheckStatus.FAIL for c in self.checks)


@dataclass(frozen=True)
class DockerfileLint:
    service: str
    dockerfile: str  # relative to services.yaml's folder
    platforms: tuple[str, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class DockerfileReport:
    native: str
    services: tuple[DockerfileLint, ...]

    @property
    def ok(self) -> bool:
        """No error-level finding (emulation findings are advice)."""
        return all(f.severity is not Severity.ERROR for s in self.services for f in s.findings)


@dataclass(frozen=True)
class PrefetchReport:
    """What the prefetch did (release record ``prefetch``)."""

    images: tuple[str, ...]  # "REFERENCE PLATFORM" read
    layers: int  # distinct layers of those images
    read: int  # read from the registry by the prefetch; the others were in the layer cache or shared
    seconds: float  # from its start until the last layer was ready, or it stopped
    errors: tuple[str, ...]  # one line each; the verification reads those layers itself
    shared: int = 0  # tables this run took from the registry instead of reading a layer (shared_tables.py)
    loaded: int = 0  # tables loaded from the layer cache on disk while the builds ran (before verification)


@dataclass(frozen=True)
class ResolvedBase:
    """One image a service's build pulls, with the digest it has for each platform it is pulled for."""

    service: str
    file: str  # the Dockerfile as shown
    line: int
    reference: str
    digests: tuple[tuple[str, str], ...]  # (platform, digest, or NOT_RESOLVED / ABSENT)

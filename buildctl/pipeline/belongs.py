"""Do these agent files make one release? Pure: services.yaml (as the merging agent loaded it), its
commit and the files, in; per service the image of each platform, or a refusal, out.

What the hand-written merges get wrong is exactly what is refused here, before anything is
merged or tagged, with one line naming the file and what differs: a platform missing or built
twice, agents that built different commits or different services.yaml entries, another registry
or release tag, an image that failed its platform's checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from buildctl.errors import OperationError, UsageError
from buildctl.inspect.results import CheckStatus
from buildctl.model import Config
from buildctl.pipeline.agent_file import AgentFile, AgentImage, Verdict, entry_digest


@dataclass(frozen=True)
class Source:
    """One agent file as given on the command line."""

    name: str  # the path as the user wrote it: what every refusal names
    agent: AgentFile


@dataclass(frozen=True)
class PlatformPart:
    platform: str
    image: AgentImage
    source: str  # the file it came from


@dataclass(frozen=True)
class ServiceParts:
    service: str
    parts: tuple[PlatformPart, ...]  # in services.yaml's platform order


def check(config: Config, sources: Sequence[Source], *, commit: str) -> tuple[ServiceParts, ...]:
    """The parts of every service of ``config``, each configured platform exactly once.

    ``commit`` is the merging checkout's HEAD ("" outside git: then the first file's commit is the
    one the others must match). UsageError (exit 2) when the files do not belong together;
    OperationError (exit 1) when they do but an agent's image failed its checks."""
    if not sources:
        raise UsageError("--from needs at least one agent file (buildctl build --platform P --by-digest FILE)")
    want_commit, commit_of = (commit, "this checkout") if commit else (sources[0].agent.commit, sources[0].name)
    seen: dict[str, str] = {}  # platform -> the file that has it
    wanted = config.all_platforms()
    for source in sources:
        agent, name = source.agent, source.name
        if agent.registry != config.registry:
            raise UsageError(f"{name}: built for registry {agent.registry}, this release pushes to {config.registry}")
        if agent.tag != config.tag:
            raise UsageError(f"{name}: built for release tag {agent.tag}, this release is {config.tag}")
        if agent.commit != want_commit:
            raise UsageError(f"{name}: built from commit {_short(agent.commit)}, {commit_of} is at {_short(want_commit)}")
        if agent.dirty:
            raise UsageError(f"{name}: built from a checkout with uncommitted changes to tracked files (at "
                             f"{_short(agent.commit)}): not the build of that commit")
        if agent.platform not in wanted:
            raise UsageError(f"{name}: platform {agent.platform} is not configured in services.yaml "
                             f"(platforms: {', '.join(wanted)})")
        if agent.platform in seen:
            raise UsageError(f"{name}: {agent.platform} is built twice (also in {seen[agent.platform]}); "
                             "give one file per platform")
        seen[agent.platform] = name
    by_file = {(s.agent.platform): s for s in sources}
    services = []
    for svc in config.services:
        repository, entry = f"{config.registry}/{svc.image}", entry_digest(config, svc)
        parts = []
        inputs: dict[str, str] = {}  # input digest -> file
        for platform in svc.platforms:
            source = by_file.get(platform)
            if source is None:
                given = ", ".join(s.name for s in sources)
                raise UsageError(f"{svc.name}: no agent file has {platform} (given: {given}); "
                                 f"every configured platform must be built exactly once")
            image = next((i for i in source.agent.images if i.service == svc.name), None)
            if image is None:
                raise UsageError(f"{source.name}: has no image of service {svc.name} for {platform}")
            _same_image(source.name, image, repository=repository, entry=entry)
            if image.input_digest is not None:
                inputs.setdefault(image.input_digest, source.name)
                if len(inputs) > 1:
                    raise UsageError(f"{source.name}: service {svc.name} has input digest "
                                     f"{_short(image.input_digest)}, {next(iter(inputs.values()))} has "
                                     f"{_short(next(iter(inputs)))}")
            parts.append(PlatformPart(platform, image, source.name))
        services.append(ServiceParts(svc.name, tuple(parts)))
    return tuple(services)


def _same_image(name: str, image: AgentImage, *, repository: str, entry: str) -> None:
    if image.repository != repository:
        raise UsageError(f"{name}: service {image.service} was pushed to {image.repository}, "
                         f"services.yaml says {repository}")
    if image.entry_digest != entry:
        raise UsageError(f"{name}: service {image.service}'s services.yaml entry differs from this checkout's "
                         f"({_short(image.entry_digest)} there, {_short(entry)} here)")
    if image.verdict is not Verdict.PASSED:
        failed = next((c for c in image.checks if c.status is CheckStatus.FAIL), None)
        why = image.error or (f"{failed.name}: {failed.detail}" if failed else "failed")
        raise OperationError(f"{name}: service {image.service} failed on its agent: {why}",
                             hint="nothing was merged or tagged; fix it and run that agent again")


def _short(digest_or_commit: str) -> str:
    if not digest_or_commit:
        return "(no commit)"
    return digest_or_commit[:19] if digest_or_commit.startswith("sha256:") else digest_or_commit[:12]

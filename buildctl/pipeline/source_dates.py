"""SOURCE_DATE_EPOCH per service: the time of the last commit that touched that service's inputs —
its build context, its Dockerfile and its entry in services.yaml.

Not HEAD's time: in a monorepo every commit would then change every service's images (their
config `created`), and no service could ever be reused (pipeline/reuse.py). A commit to `worker/`
leaves the epoch of `vote` and `result` as it was.

Only commits that changed a file the build sees count: a commit to a file `.dockerignore` leaves out
moves nothing (its content is not in the image, nor in the input digest).

Uncommitted changes do not move the epoch (it is the last commit's time): their content is in the
input digest anyway, so an edited file still gives a new key and a build, just with that epoch.

The one input of a plan that comes from git rather than services.yaml; `plan` and the release
read it the same way, so the buildx command `plan` shows is the one the release runs.
"""

from __future__ import annotations

from buildctl import concurrently
from buildctl.gitops import git
from buildctl.inputs.context import seen_by_build
from buildctl.model import BuildOptions, Config, ServiceConfig

HISTORY = 200  # commits of a context read to find its last seen change; past them, the oldest one read


def commit_times(config: Config, options: BuildOptions | None = None) -> dict[str, str]:
    """service -> time of the last commit of its inputs, when build.source_date_epoch is auto."""
    if (options or config.build).source_date_epoch != "auto":
        return {}
    try:
        text = config.path.read_text(encoding="utf-8")
    except OSError:
        text = ""

    def last_time(svc: ServiceConfig) -> str | None:
        history = git.commits_touching(svc.context, limit=HISTORY)
        if history is None and svc.context.is_relative_to(config.path.parent):
            # No repository from the context upwards, so none for services.yaml's folder above it,
            # nor for the Dockerfile's log (run in the context): two git processes that would fail.
            return None
        span = entry_lines(text, svc.line) if svc.line else None
        lines = (config.path, *span) if span else None
        times = [t for t in (_context_time(svc, history or []),
                             git.last_change_time((svc.dockerfile,), cwd=svc.context, lines=lines)) if t]
        return str(max(map(int, times))) if times else None

    # Three git processes a service (~3 ms each, read-only), one outside git: every service's at once.
    found = concurrently.each(last_time, config.services, name="dates")
    return {svc.name: when for svc, when in zip(config.services, found) if when}


def _context_time(svc: ServiceConfig, history: list[tuple[str, tuple[str, ...]]]) -> str | None:
    """The time of the last commit in ``history`` (the context's) that changed a file the build sees."""
    if not history:  # not in a repository, or never committed: no ignore rules to read
        return None
    try:
        seen = seen_by_build(svc.context, svc.dockerfile)
    except OSError:  # an unreadable ignore file: every change counts
        return history[0][0] if history else None
    for when, files in history:
        if any(seen(name) for name in files):
            return when
    return history[-1][0] if len(history) == HISTORY else None


def entry_lines(text: str, first: int) -> tuple[int, int] | None:
    """(first, last) line of the YAML block that starts at line ``first`` (1-based): every following
    line indented deeper, blank and comment lines inside it included, trailing ones not."""
    lines = text.splitlines()
    if not 0 < first <= len(lines):
        return None
    indent = len(lines[first - 1]) - len(lines[first - 1].lstrip())
    last = first
    for number in range(first + 1, len(lines) + 1):
        line = lines[number - 1]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= indent:
            break
        last = number
    return first, last

"""What a line of buildx's plain progress log says about a build's phase (pure).

"#8 [linux/arm64 2/4] RUN ..." is step 2 of 4 of the arm64 build; "#12 pushing layers" is the push.
An "#n ERROR" line is not a failure yet: a push that errs is retried (retry.py); pipeline/build.py
reports the end.
"""

from __future__ import annotations

import re

from buildctl.model import Phase, Progress

_STEP = re.compile(r"^#\d+ \[(?P<platform>[a-z0-9]+/[a-z0-9_]+(?:/v\d+)?) (?:[\w-]+ )?(?P<n>\d+)/(?P<m>\d+)\]")
_PUSH = re.compile(r"^#\d+ (pushing layers|pushing manifest|exporting manifest list)")
# BuildKit's image exporter, once the registry took the manifest (the index, for a multi-platform build)
_PUSHED = re.compile(r"^#\d+ pushing manifest for (?P<ref>\S+)@(?P<digest>sha256:[0-9a-f]{64})(?: [\d.]+s)? done$")


def progress_event(line: str) -> tuple[str, Progress] | None:
    """(platform, progress) that a buildx plain-progress line announces; "" platform = all."""
    if match := _STEP.match(line):
        return match["platform"], Progress(Phase.BUILDING, (int(match["n"]), int(match["m"])))
    if _PUSH.match(line):
        return "", Progress(Phase.PUSHING)
    return None


def pushed_digest(line: str, reference: str) -> str | None:
    """The digest a line says was pushed as ``reference`` (REPO:TAG), done; None for any other line.
    The docker driver pushes through the engine and prints no such line (its builds are checked
    once they exit)."""
    match = _PUSHED.match(line.rstrip("\n"))
    return match["digest"] if match and match["ref"] == reference else None

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


def progress_event(line: str) -> tuple[str, Progress] | None:
    """(platform, progress) that a buildx plain-progress line announces; "" platform = all."""
    if match := _STEP.match(line):
        return match["platform"], Progress(Phase.BUILDING, (int(match["n"]), int(match["m"])))
    if _PUSH.match(line):
        return "", Progress(Phase.PUSHING)
    return None

"""What a registry refused lately, remembered for a day in the user's cache (a mark per kind of
request and registry, or repository where rules may differ by repository): a request it refuses
every time is not sent again on every run.

Distribution 2.x refuses a delete by tag (400: it deletes manifests by digest only) and, by
default, any delete at all; each run asked again, one round trip at its end (issue #20). A mark
a day old no longer counts, so a registry that learnt to delete is asked again the next day.
"""

from __future__ import annotations

import hashlib
import time

from buildctl import workdir

REMEMBERED_SECONDS = 24 * 3600
TAG_DELETE = "tag-delete-refused"  # cache folders, one per kind of request
MANIFEST_DELETE = "claim-tidy-refused"


def refused_lately(kind: str, where: str, *, now: float | None = None) -> bool:
    raw = workdir.read_mark(kind, _name(where), max_bytes=64)
    try:
        return 0 <= (time.time() if now is None else now) - float(raw or b"") < REMEMBERED_SECONDS
    except ValueError:
        return False


def note_refusal(kind: str, where: str, *, now: float | None = None) -> None:
    workdir.set_mark(kind, _name(where), content=str(time.time() if now is None else now).encode())


def _name(where: str) -> str:
    return hashlib.sha256(where.encode()).hexdigest()[:32]

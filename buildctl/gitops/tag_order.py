"""Which of two release tags is newer, so an older release never replaces a newer one (pure).

``gitops.tag_order`` picks the rule; ``auto`` takes the first one both tags fit:
- semver: ``1.4.0``, ``v2.0.0-rc.1``, ``1.10`` (precedence per semver.org, by python-semver;
  minor and patch may be left out, one leading ``v`` is allowed) — except that two tags with the
  same core whose pre-release parts differ only in their digit runs (``8.2.1-debian-12-r9`` vs
  ``-r10``) compare those runs as numbers: semver reads ``debian-12-r9`` as one text identifier,
  so r9 would be newer than r10 and the Bitnami-style revision bump would be kept out;
- numeric: ``41`` vs ``112`` (integers, so 112 > 41 where a string compare says otherwise);
- lexical: both tags have the same shape — every digit a digit, every other character equal —
  and that shape holds a fixed-width date (``nightly-20240501``, ``2024-05-01T1200``): such tags
  sort as strings, and ``nightly-20240501`` vs ``build-20240502`` are *not* compared;
- otherwise the tags are not comparable, and the last writer wins (as with ``none``).

A tag a rule cannot read (``latest`` under ``semver``) is not comparable either: the release goes
ahead rather than guessing.

``buildctl rollback`` writes an older tag on purpose: it edits with ``BYPASS`` and names every
reference the rule would have kept (``downgrade``), so the bypass is said, never silent.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from buildctl.model import TagOrder

if TYPE_CHECKING:
    import semver

_INTEGER = re.compile(r"[0-9]+")
_DIGIT_RUNS = re.compile(r"([0-9]+)")  # split() keeps the runs: text at even, digits at odd positions
# A year 19xx/20xx, month and day, optionally separated by - or . : the fixed-width part that
# makes a string compare meaningful.
_DATE = re.compile(r"(19|20)[0-9]{2}[-.]?[01][0-9][-.]?[0-3][0-9]")


def _semver(tag: str) -> semver.Version | None:
    import semver  # here: its import (~5 ms, argparse with it) is paid only by a run that compares tags

    try:
        return semver.Version.parse(tag[1:] if tag[:1] in "vV" else tag, optional_minor_and_patch=True)
    except (ValueError, TypeError):
        return None


def _by_semver(old: str, new: str) -> int | None:
    a, b = _semver(old), _semver(new)
    if a is None or b is None:
        return None
    if (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch) and a.prerelease and b.prerelease:
        if (by_runs := _by_digit_runs(a.prerelease, b.prerelease)) not in (None, 0):
            return by_runs
    return a.compare(b)


def _by_digit_runs(old: str, new: str) -> int | None:
    """Compare two suffixes by their digit runs as numbers, when the text between them is the same
    (``debian-12-r9`` vs ``debian-12-r10``); None when it is not."""
    a, b = _DIGIT_RUNS.split(old), _DIGIT_RUNS.split(new)
    if len(a) != len(b) or a[0::2] != b[0::2]:
        return None
    return _sign([int(n) for n in a[1::2]], [int(n) for n in b[1::2]])


def _shape(tag: str) -> str:
    return re.sub(r"[0-9]", "9", tag)


def _sign(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _by(rule: TagOrder, old: str, new: str) -> int | None:
    if rule is TagOrder.SEMVER:
        return _by_semver(old, new)
    if rule is TagOrder.NUMERIC:
        if _INTEGER.fullmatch(old) and _INTEGER.fullmatch(new):
            return _sign(int(old), int(new))
        return None
    if rule is TagOrder.LEXICAL:
        if _shape(old) == _shape(new) and _DATE.search(old):
            return _sign(old, new)
        return None
    return None


def compare(old: str, new: str, rule: TagOrder) -> int | None:
    """-1 if ``old`` is older than ``new``, 0 if equal in order, 1 if newer; None: not comparable."""
    if old == new:
        return 0
    if rule is not TagOrder.AUTO:
        return _by(rule, old, new)
    for each in (TagOrder.SEMVER, TagOrder.NUMERIC, TagOrder.LEXICAL):
        if (result := _by(each, old, new)) is not None:
            return result
    return None


def is_newer(current: str | None, release: str, rule: TagOrder) -> bool:
    """True when the tag a manifest holds now (``current``) is newer than ``release``: keep it."""
    return current is not None and compare(current, release, rule) == 1


# The rule a deliberate downgrade (buildctl rollback) edits with: every reference is written.
BYPASS = TagOrder.NONE


def downgrade(current: str | None, release: str, rule: TagOrder) -> str | None:
    """``"42 -> 41"`` when writing ``release`` over ``current`` is a downgrade ``rule`` forbids (the
    edit under ``rule`` would keep ``current``); None when the rule would write it anyway."""
    return f"{current} -> {release}" if is_newer(current, release, rule) else None

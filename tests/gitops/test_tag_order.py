"""gitops.tag_order: which of two tags is newer (pure)."""

from __future__ import annotations

import pytest

from buildctl.gitops.tag_order import compare, is_newer
from buildctl.model import TagOrder

AUTO, SEMVER, NUMERIC, LEXICAL, NONE = TagOrder


@pytest.mark.parametrize(
    ("old", "new", "rule", "expected"),
    [
        ("1.2.0", "1.10.0", AUTO, -1),  # semver, not string order
        ("1.9", "1.10", AUTO, -1),  # minor/patch may be left out
        ("v2.0.0", "v2.0.0-rc.1", AUTO, 1),  # a pre-release sorts before its release
        ("2.0.0-rc.2", "2.0.0-rc.10", AUTO, -1),
        # The same core and a suffix of the same shape apart from its digit runs: those compare as
        # numbers, where semver compares `debian-12-r9` as one text identifier (r9 > r10).
        ("8.2.1-debian-12-r9", "8.2.1-debian-12-r10", AUTO, -1),
        ("8.2.1-debian-12-r10", "8.2.1-debian-12-r9", SEMVER, 1),
        ("8.2.1-debian-11-r30", "8.2.1-debian-12-r2", AUTO, -1),  # the first digit run that differs decides
        ("1.4-alpine3.9", "1.4-alpine3.10", AUTO, -1),
        ("8.2.1-debian-12-r10", "8.2.2-debian-12-r1", AUTO, -1),  # another core: semver as before
        ("1.0.0-alpha2", "1.0.0-beta1", AUTO, -1),  # other text between the digits: semver as before
        ("1.0.0-r09", "1.0.0-r9", AUTO, -1),  # equal as numbers: semver decides ("r09" < "r9")
        ("2.0.0-rc.1", "2.0.0", AUTO, -1),  # a suffix against none: semver as before
        ("41", "112", AUTO, -1),  # integers
        ("112", "41", NUMERIC, 1),
        ("nightly-20240501", "nightly-20240430", AUTO, 1),  # fixed-width date: lexical
        ("2024-05-01T1200", "2024-05-01T0900", LEXICAL, 1),
        ("nightly-20240501", "build-20240502", AUTO, None),  # different shapes: not compared
        ("release-a", "release-b", LEXICAL, None),  # no date in the shape
        ("latest", "1.0.0", AUTO, None),
        ("latest", "1.0.0", SEMVER, None),  # a rule that cannot read a tag does not guess
        ("abc", "abc", NONE, 0),
        ("1.0.0", "2.0.0", NONE, None),  # none: never compared, the last writer wins
        ("1.0.0", "0.9.0", NUMERIC, None),
    ],
)
def test_compare(old: str, new: str, rule: TagOrder, expected: int | None) -> None:
    assert compare(old, new, rule) == expected


def test_is_newer_keeps_only_a_strictly_newer_tag() -> None:
    assert is_newer("1.5.0", "1.4.0", AUTO)
    assert not is_newer("1.4.0", "1.4.0", AUTO)  # the same tag (a --retag) is written
    assert not is_newer("1.3.0", "1.4.0", AUTO)
    assert not is_newer(None, "1.4.0", AUTO)  # a digest-only reference has no tag
    assert not is_newer("1.5.0", "1.4.0", NONE)

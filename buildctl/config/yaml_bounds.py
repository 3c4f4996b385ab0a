"""Bounds on what a YAML text may become once composed: no alias bomb, no nesting past MAX_DEPTH.

services.yaml and every GitOps file pass ``check_bounds`` before they are composed. The exact check
walks libyaml's event stream in Python (~0.2 ms for a 2 KB manifest: a fifth of a 1,000-file
``update-manifests``, issue #20); most texts are proved inside the bounds from their characters
alone first (``plainly_bounded``), and only the others are walked.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from buildctl.errors import ConfigError

# Bounds on what a document may become once its aliases are expanded. An alias bomb ("billion
# laughs") is a few lines that expand to 10^9 nodes (it ran for minutes and took 4.9 GB before
# these, issue #14). Only what aliases add counts: the nodes written out are already in memory as
# text, and a 1 MB manifest without an alias holds well over 100,000 of them.
MAX_NODES = 100_000
MAX_DEPTH = 64


def check_bounds(text: str, shown: str, loader_class: type) -> None:
    """Refuse, from the event stream (one linear pass, no recursion, nothing expanded), a
    document whose aliases add more than MAX_NODES nodes, that nests deeper than MAX_DEPTH
    collections (aliases included), or with an alias inside the node it names (a cycle)."""
    if not plainly_bounded(text):
        walk_bounds(text, shown, loader_class)


def walk_bounds(text: str, shown: str, loader_class: type) -> None:
    """``check_bounds`` the exact way: libyaml's events, one at a time."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, collection levels)
    stack: list[list[Any]] = [[0, 0, None]]  # open collections: [nodes, levels, anchor]
    total = 0
    loader = loader_class(text)

    def fail(message: str, line: int, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=shown, line=line, hint=hint)

    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([1, 1, event.anchor])
                if len(stack) - 1 > MAX_DEPTH:
                    raise fail(f"nested deeper than {MAX_DEPTH} levels", line)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size, levels, anchor = stack.pop()
                if anchor:
                    anchors[anchor] = (size, levels)
            elif isinstance(event, yaml.ScalarEvent):
                size, levels = 1, 0
                if event.anchor:
                    anchors[event.anchor] = (1, 0)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    if any(frame[2] == event.anchor for frame in stack):
                        raise fail(f"alias *{event.anchor} is inside the node it refers to (a cycle)", line)
                    continue  # an undefined alias: the composer reports it
                size, levels = anchors[event.anchor]
                total += size  # what the alias adds: a copy of its node, expanded
                if len(stack) - 1 + levels > MAX_DEPTH:
                    raise fail(f"alias *{event.anchor} nests the document deeper than {MAX_DEPTH} levels", line)
            else:
                continue
            if total > MAX_NODES:
                raise fail(f"aliases expand the document past {MAX_NODES} nodes (an alias bomb?)", line,
                           hint="write the values out, or use fewer nested aliases")
            parent = stack[-1]
            parent[0] += size
            parent[1] = max(parent[1], levels + 1)
    finally:
        loader.dispose()


# Where a line's block nodes can start: after its indentation, and after each indicator of a
# compact nested collection on the same line (`- - a`, `- key: v`, `? - k`, `--- `).
_INDENTATION = re.compile(r"^ *", re.MULTILINE)
_COMPACT = re.compile(r"^( *)((?:(?:---|[-?:])[ \t]+)+)", re.MULTILINE)
_INDICATOR = re.compile(r"(?:---|[-?:])[ \t]+")
_OTHER_BREAKS = "\r\x85\u2028\u2029"  # line breaks to YAML 1.1 (PyYAML, libyaml) besides \n
_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#.*", re.MULTILINE)
_BRACKETS = re.compile(r"[][{}]")
_WEIGHTS = {"[": 2, "{": 1, "]": -2, "}": -1}


def flow_levels(text: str) -> int:
    """At least the most flow levels open at once in ``text`` (one without \r or BOM).

    A flow sequence's entry may be a one-pair mapping without braces (`[a: b]`, `[? k]`): two levels
    for each ``[``, one for each ``{``. Counting every bracket ever opened is always enough; the
    brackets still open are enough when every bracket inside a flow collection is one, and a closing
    bracket that is not one appears only outside any (where none is open, so it takes nothing away
    that was there). Inside a flow collection a plain scalar cannot hold ``[]{}``, and no block
    scalar can start, so only a quoted scalar, a tag (its URI may hold ``[]``) and a comment can.
    Outside quotes, ``#`` after a blank or at a line's start starts a comment in either context
    (or is inside a block scalar's line); removed to the line's end it takes away no real bracket.
    A ``#`` left after that may still start one (PyYAML and libyaml take ``[a,#b]`` for a comment
    after ``a``), and a quote or ``!`` left may start a quoted scalar or a tag: then the crude count.
    None left: no quoted scalar (the first real quote would have been left, as no ``#`` before it
    can be inside quotes), no tag, no other comment, and the brackets still open bound the levels."""
    crude = 2 * text.count("[") + text.count("{")
    if crude <= 2:  # nothing to gain from a closer look
        return crude
    bare = _COMMENT.sub("", text)
    if any(c in bare for c in "'\"!#"):
        return crude
    level = deepest = 0
    for bracket in _BRACKETS.findall(bare):
        level = max(0, level + _WEIGHTS[bracket])
        deepest = max(deepest, level)
    return deepest


def plainly_bounded(text: str) -> bool:
    """True when ``text`` cannot break a bound, whatever it parses into; False says only "walk it".

    Without ``&`` there is no anchor, so no alias (an alias of nothing does not compose). Nesting:
    flow levels are at most ``flow_levels``. A block
    collection nested in another starts at a greater column, except a sequence as a mapping's value
    (`key:` then `- item` at the key's column), and a sequence's items nest at greater columns again;
    so block levels are at most twice the number of distinct columns a block node can start at."""
    if "&" in text or "\ufeff" in text:  # libyaml skips a BOM at the start of any line: unseen columns
        return False
    text = text.replace("\r\n", "\n")
    if any(c in text for c in _OTHER_BREAKS):  # lines this scan would not see
        return False
    budget = MAX_DEPTH - flow_levels(text)
    if budget < 0:
        return False
    columns = set(map(len, _INDENTATION.findall(text)))
    for line in _COMPACT.finditer(text):
        column = len(line[1])
        for indicator in _INDICATOR.findall(line[2]):
            column += len(indicator)
            columns.add(column)
    return 2 * len(columns) <= budget

"""When an edit only swaps scalar tokens, the edited text's node trees follow from the old ones.

Every edit is re-read before it is kept (edits._check_result): its sites must hold exactly what
was written. For 1,000 manifests that second compose was a third of the plan (issue #20). Most
edits swap one image reference for another in the same place and style: ``image: app:41`` becomes
``image: app:42@sha256:...``. Then the characters prove what composing the new text would give —
the same documents with that scalar's value changed — and the tree is updated instead.

The proof, per splice (any splice it does not cover: the text is composed again):
- it replaces one whole scalar node, plain (not empty) or quoted, that does not span lines (a
  `!tag` or `&anchor` before it stays, and so does the node's tag: explicit, or checked below);
- the new token is the same style, and its value is a reference-like word: a letter or digit, then
  letters, digits and ``._/:@+-``, not ending in ``:`` (``: `` and `` #`` cannot occur; no flow
  indicator, quote, escape or line break) — so the scanner reads exactly that token as one scalar;
- what follows on the line is a comment, a flow separator or the line's end (never ``:``, so the
  scalar is no mapping key, whose length and uniqueness would matter);
- a plain value resolves to the same tag as the old one (``42`` would be an int, ``null`` null;
  an explicit tag differs from every implicit one but ``!!str``, which keeps a word a string);
  a quoted one has no tag written before it (``! '42'``, the non-specific tag, resolves its value
  as if it were plain: PyYAML and libyaml give an int).
What comes after the token is unchanged, so the scanner continues in the state it did before (a
plain scalar's continuation on the next line depends only on that line). Tested against composing
(tests/gitops/test_scalar_swap.py), each condition mutation-checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from yaml.nodes import Node

from buildctl.gitops.yaml_nodes import implicit_tag
from buildctl.gitops.yaml_splice import LINE_BREAKS, Splice

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*(?<!:)")
_AFTER = re.compile(r"[ \t]*(?:#|,|\]|\}|\r?\n|\Z)")


def swapped_value(text: str, splice: Splice) -> str | None:
    """The value the scalar ``splice`` replaces provably holds in the spliced text; None if unproven."""
    node = splice.scalar
    if node is None or node.style not in (None, "", "'", '"') or splice.end != node.end_mark.index:
        return None
    quote = node.style or ""
    old, new = text[splice.start:splice.end], splice.text
    if not (old.startswith(quote) and old.endswith(quote) and len(old) >= 2 * len(quote) + (not quote)):
        return None
    value = new[len(quote):len(new) - len(quote)]
    if new != f"{quote}{value}{quote}" or not _WORD.fullmatch(value) or any(b in old for b in LINE_BREAKS):
        return None
    if not _AFTER.match(text, splice.end):
        return None
    if not quote and implicit_tag(value) != node.tag:
        return None
    if quote and "!" in text[node.start_mark.index:splice.start]:
        return None  # `! '42'` (the non-specific tag) resolves a quoted value as if plain: an int
    return value


def swapped_documents(text: str, docs: list[Node], splices: Sequence[Splice]) -> list[Node] | None:
    """``docs`` (composed from ``text``) updated to what ``splices`` applied to ``text`` composes into,
    when every splice is provably a scalar swap; else None (compose the new text). Marks keep their
    lines (no splice here adds or removes one) but not their offsets: for reading, not for editing."""
    values = [swapped_value(text, s) for s in splices]
    if not splices or None in values:
        return None
    for splice, value in zip(splices, values, strict=True):
        splice.scalar.value = value  # type: ignore[union-attr]  # checked by swapped_value
    return docs

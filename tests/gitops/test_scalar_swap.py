"""The character-level proof that a splice only swaps a scalar (``scalar_swap``) never predicts a tree
that composing the spliced text does not give, and covers the edits real releases make.

Soundness is checked on every pairing of contexts (block and flow values, keys, anchors, tags,
comments, continued plain scalars, several documents), old spellings and new tokens, the new
token written plain and in both quotes. Mutation-checked when written: dropping any one condition
of ``swapped_value`` (the word pattern, its first character, its trailing-colon rule, what may
follow, one line, a non-empty plain value, the same implicit tag, the same quotes old and new) makes
these tests fail. Two tests are implied by others: the style (a block scalar spans lines, or is `|`
alone) and that the splice reaches the node's end (else a word or quote follows it).
"""

from __future__ import annotations

import itertools

import pytest
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.gitops.scalar_swap import swapped_documents, swapped_value
from buildctl.gitops.yaml_nodes import compose_documents, every_node
from buildctl.gitops.yaml_splice import Splice, replace_scalar, value_start

OLD = "OLDVALUE"
CONTEXTS = [
    "image: {v}\n", "image: {v}", "- image: {v}  # c\n  name: x\n", "spec: {{image: {v}, name: x}}\n",
    "list: [{v}, other]\n", "list: [other, {v}]\n", "a:\n  image: {v}\n  b: c\n", "image: &anc {v}\nother: *anc\n",
    "image: !!str {v}\n", "image: !custom {v}\n", "image: {v}\n  continued\n", "image: {v}\n\n  continued\n",
    "{v}: value\n", "{v}   : value\n", "image:   {v}   \n", "? {v}\n: value\n", "image: {v}\n---\nkind: X\n",
    "[{v}: x]\n", "x: {{a: {v}}}\n", "image: {v} # comment\n", "{v}\n", "image: {v},x\n", "image: {v}\r\nb: c\r\n",
    "k: {{a: [{v}]}}\n", "- {v}\n- b\n", "- - {v}\n", "image: {v}\n...\n", "image: {v}#x\n", "image: {v}\n#c\n",
    "{{{v}: 1}}\n", "image: {v}\n  # comment\n", "image: {v} \n  more\n", "image: {v}\n  continued\nnext: x\n",
    "image: !!str {v}\n", "image: |\n  {v}\n", "image: >-\n  {v}\nnext: x\n", "image: {v}|\n", "[{v}, !!str ]\n",
    "image: ! {v}\n", "image: !<!> {v}\n", "--- ! {v}\n", "image: &a ! {v}\n", "image: !\n  {v}\n",
]
OLD_SPELLINGS = [OLD, f"'{OLD}'", f'"{OLD}"', f"{OLD} two", f"'{OLD}''s'", ""]
NEW_VALUES = [
    "app:42", "registry.example:5000/team/app:1.2.3@sha256:" + "ab" * 32, "42", "null", "~", "true", "a:", "a::b",
    "a: b", "a #b", "a,b", "a]", "a}", "a?b", "[a]", "-a", "a\nb", "a b", "", "é", "a'b", 'a"b', "a\\b", "1e3",
    "0x1F", "2024-01-02", "x" * 1100, "@a", "a@b", ":a", "a+b/c_d.e-f", "---", "...", "a\tb", "yes", "a:1",
]


def _styles(value: str) -> list[str]:
    return [value, f"'{value}'", f'"{value}"']


def _shape(node: Node) -> object:
    """What the editor and its checks read of a node tree: kinds, tags, values, lines."""
    line = node.start_mark.line
    if isinstance(node, ScalarNode):
        return ("s", node.tag, node.value, node.style or "", line)
    if isinstance(node, SequenceNode):
        return ("q", node.tag, line, [_shape(n) for n in node.value])
    assert isinstance(node, MappingNode)
    return ("m", node.tag, line, [(_shape(k), _shape(v)) for k, v in node.value])


def _target(docs: list[Node], text: str, at: int) -> ScalarNode | None:
    """The scalar written at offset ``at``: the one holding OLD, else an empty one around it (a
    value left empty, `!!str` alone, an empty block scalar)."""
    scalars = [n for n in every_node(docs) if isinstance(n, ScalarNode)]
    return next((n for n in scalars if OLD in n.value), None) or next(
        (n for n in scalars if n.value == "" and n.start_mark.index <= at <= n.end_mark.index + 1), None)


CASES = [(c, o, t) for c, o in itertools.product(CONTEXTS, OLD_SPELLINGS) for v in NEW_VALUES for t in _styles(v)]


def test_a_proven_swap_is_what_composing_the_spliced_text_gives() -> None:
    proven = 0
    for context, old, token in CASES:
        text = context.format(v=old)
        try:
            docs = compose_documents(text, path="t.yaml")
        except ConfigError:
            continue
        node = _target(docs, text, context.index("{v}"))
        if node is None:
            continue
        start = value_start(text, node)  # where replace_scalar would start (it refuses | and >)
        splice = Splice(start, node.end_mark.index, token, scalar=node)
        new_text = text[:splice.start] + token + text[splice.end:]
        predicted = swapped_documents(text, docs, [splice])
        if predicted is None:
            continue
        proven += 1
        composed = compose_documents(new_text, path="t.yaml")  # raises if the proof let a broken text through
        assert [_shape(d) for d in predicted] == [_shape(d) for d in composed], (context, old, token)
    assert proven > 300  # the proof is not vacuous: most contexts take most references


@pytest.mark.parametrize("text", ["image: app:41\n", "- image: 'app:41'  # pinned\n", "x: {image: \"app:41\"}\n",
                                  "image: &a app:41\nalso: *a\n", "image: app:41\r\n"])
def test_the_edits_of_a_release_are_proven(text: str) -> None:
    docs = compose_documents(text, path="t.yaml")
    node = _target_of(docs, "app:41")
    splice = replace_scalar(text, node, "app:42@sha256:" + "0" * 64, path="t.yaml")
    assert swapped_value(text, splice) == "app:42@sha256:" + "0" * 64


def _target_of(docs: list[Node], value: str) -> ScalarNode:
    return next(n for n in every_node(docs) if isinstance(n, ScalarNode) and n.value == value)


@pytest.mark.parametrize("text, new", [
    ("image: app:41\n", "app: 42"),  # would become a mapping: quoted by the edit, and not proven
    ("image: !!str app:41\n", "app:42"),  # an explicit tag: composed again
    ("image: app:41\n  continued\n", "app:42"),  # spans lines
    ("image: app:41\n", "42"),  # plain 42 is an int: quoted by the edit, whose quotes the proof checks
])
def test_what_the_proof_does_not_cover_is_composed_again(text: str, new: str) -> None:
    docs = compose_documents(text, path="t.yaml")
    node = next(n for n in every_node(docs) if isinstance(n, ScalarNode) and n.value.startswith("app:41"))
    splice = replace_scalar(text, node, new, path="t.yaml")
    new_text = text[:splice.start] + splice.text + text[splice.end:]
    predicted = swapped_documents(text, docs, [splice])
    if predicted is not None:  # proven: then exactly what composing gives
        assert [_shape(d) for d in predicted] == [_shape(d) for d in compose_documents(new_text, path="t.yaml")]
    else:
        assert swapped_value(text, splice) is None


def test_an_edit_the_proof_covers_changes_only_the_named_container() -> None:
    """Two containers of one repository, one named: the re-read of the updated trees agrees."""
    text = "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: app:41\n  - name: b\n    image: app:41\n"
    new, edits, _ = edit_file(text, path="p.yaml", repository="docker.io/library/app", new_reference="app:42",
                              containers=("a",))
    assert new.count("app:42") == 1 and len(edits) == 1


def test_a_splice_that_stops_inside_the_scalar_is_not_a_swap() -> None:
    text = "image: app:41 two\n"
    docs = compose_documents(text, path="t.yaml")
    node = _target_of(docs, "app:41 two")
    assert swapped_value(text, Splice(7, node.end_mark.index - 4, "app:42", scalar=node)) is None
    assert swapped_value(text, Splice(7, node.end_mark.index, "app:42", scalar=node)) == "app:42"

"""The character-level proof that a YAML text is inside the bounds (``plainly_bounded``) never
passes a text the exact event walk refuses, and passes the manifests real repositories hold."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml

from buildctl.config.yaml_bounds import MAX_DEPTH, check_bounds, flow_levels, plainly_bounded, walk_bounds
from buildctl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
LOADERS = [getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader]


def depth(text: str) -> int:
    """Collection levels of ``text`` as composed (no aliases here)."""
    deepest, level = 0, 0
    for event in yaml.parse(text, Loader=LOADERS[0]):
        if isinstance(event, yaml.CollectionStartEvent):
            level += 1
            deepest = max(deepest, level)
        elif isinstance(event, yaml.CollectionEndEvent):
            level -= 1
    return deepest


def nested(rng: random.Random, levels: int) -> object:
    """A value ``levels`` collections deep, with siblings of random shapes on the way."""
    if levels == 0:
        return rng.choice(["x", 1, None, "a: b", "- c"])
    inner = nested(rng, levels - 1)
    if rng.random() < 0.5:
        return [inner, *(["s"] * rng.randrange(2))]
    return {rng.choice(["k", "image", "- key"]): inner, **({"z": 1} if rng.random() < 0.3 else {})}


def compact_sequences(levels: int, indent: int) -> str:
    """`- - - x` chains, a mapping's sequence at its key's column, `? ` keys: the layouts that nest
    without indenting."""
    lines, column = [], 0
    for level in range(levels):
        kind = level % 3
        if kind == 0:
            lines.append(" " * column + f"k{level}:")  # its value: a sequence at the same column
        elif kind == 1:
            lines.append(" " * column + "- - ")  # two sequences on one line
            column += 4
        else:
            lines.append(" " * column + "? ")
            column += indent
    return "\n".join(lines) + "\n" + " " * column + "leaf\n"


def generated() -> list[str]:
    rng = random.Random(20)
    texts = []
    for levels in [*range(1, 80, 3), MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1]:
        value = nested(rng, levels)
        for style in (False, None, True):  # block, mixed, flow
            for indent in (2, 4, 7):
                texts.append(yaml.safe_dump(value, default_flow_style=style, indent=indent, width=rng.choice([20, 80])))
        texts.append(compact_sequences(levels, indent=rng.choice([1, 2, 3])))
        texts.append("- " * levels + "x\n")  # every level on one line
        texts.append("a: " + "{b: " * levels + "1" + "}" * levels + "\n")
        texts.append("? " + "- ? " * (levels // 2) + "k\n: v\n")
        texts.append("x: " + "[a: " * (levels // 2) + "1" + "]" * (levels // 2) + "\n")  # a mapping in each [
        texts.append("".join("\ufeff" + "  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "x\n")
        texts.append("\r\n".join(yaml.safe_dump(value, default_flow_style=False).splitlines()))
        texts.append("\ufeff" + yaml.safe_dump(value, default_flow_style=False, indent=2))  # walked
    return texts


def valid(text: str) -> bool:
    try:
        depth(text)
    except yaml.YAMLError:
        return False
    return True


@pytest.mark.parametrize("loader", LOADERS, ids=["libyaml", "pure-python"])
def test_what_the_characters_prove_bounded_the_walk_passes(loader) -> None:
    texts = [t for t in generated() if valid(t)]
    proved = [t for t in texts if plainly_bounded(t)]
    assert len(proved) > len(texts) // 3  # the proof is not vacuous
    assert any(depth(t) > MAX_DEPTH for t in texts)  # and the walk has texts to refuse
    for text in proved:
        assert depth(text) <= MAX_DEPTH, text
        walk_bounds(text, "t.yaml", loader)  # raises if the proof was wrong


FAKE_CLOSERS = [  # text holding `]` or `}` that closes nothing, where it can stand inside a flow collection
    " # ]]]}}\n", ",#]]]}}\n", ", #]]\n", ", ']]]}}'", ", \"]]}}\"", ", !t]]] a", ", !<tag:x,1:]]]> a", ", a#]]",
    ", ']]\n  ]]'", " #\t]]\n",
]
BLOCK_FAKES = [f"k: a{']' * 40}}}}}\n", "k: |\n  ]]]}}\n", "# ]]]\n", "k: a #]]]\n", "k: ']]]'\n",
               "%TAG !e! tag:x,1:]]\n---\n"]


def adversarial() -> list[str]:
    """Deep flow nesting with brackets that close nothing inside it, and wide shallow flow texts."""
    texts = []
    for levels in (20, 31, 32, 33, 40, 66):
        for fake in FAKE_CLOSERS:
            after = "  " if fake.startswith(",") and fake.endswith("\n") else "\n , "  # then the next entry
            for opener in ("[", "[a: ", "{a: ", "[{b: "):
                closers = "}" * opener.count("{") + "]" * opener.count("[")
                texts.append("x: " + (opener + "a" + fake + after) * levels + "z" + closers * levels + "\n")
        for fake in BLOCK_FAKES:
            texts.append(fake + "x: " + "[" * levels + "]" * levels + "\n")
            texts.append(fake + "x: " + "[a: " * levels + "1" + "]" * levels + "\n")
            texts.append("x: " + "[a: " * (levels // 2) + "1" + "]" * (levels // 2) + "\n" + fake)
    return texts + WIDE


WIDE = [  # services.yaml with many flow entries, comments (quotes and brackets in them) too: proved
    "s:\n" + "".join(f"  - {{path: a/{i}.yaml, containers: [c{i}], n: [{{a: [1]}}]}}\n" for i in range(1000)),
    "# it's [the] list\ns:\n" + "".join(f"  - {{path: a/{i}.yaml, containers: [c]}}  # [\"{i}\"\n" for i in range(500)),
]


@pytest.mark.parametrize("loader", LOADERS, ids=["libyaml", "pure-python"])
def test_brackets_that_close_nothing_never_hide_open_ones(loader) -> None:
    texts = [t for t in adversarial() if valid(t)]
    assert any(depth(t) > MAX_DEPTH for t in texts)
    proved = [t for t in texts if plainly_bounded(t)]
    assert all(t in proved for t in WIDE)  # wide flow texts are proved now
    for text in proved:
        assert depth(text) <= MAX_DEPTH, text
        walk_bounds(text, "t.yaml", loader)
    for text in texts:
        assert flow_levels(text) >= flow_depth(text), text


def flow_depth(text: str) -> int:
    """Flow collection levels open at once, as libyaml parses ``text``."""
    deepest = level = 0
    for event in yaml.parse(text, Loader=LOADERS[0]):
        if isinstance(event, yaml.CollectionStartEvent) and (event.flow_style or level):
            level += 1
            deepest = max(deepest, level)
        elif isinstance(event, yaml.CollectionEndEvent) and level:
            level -= 1
    return deepest


def test_the_sample_and_test_manifests_are_proved_without_a_walk() -> None:
    manifests = [p for p in (ROOT / "k8s-specifications").glob("*.yaml")]
    assert manifests and all(plainly_bounded(p.read_text()) for p in manifests)


@pytest.mark.parametrize("text", [
    "a: &x 1\nb: *x\n",  # an anchor: only the walk counts what aliases add
    "x: " + "[" * 65 + "]" * 65 + "\n",
    "x:\n" + "".join("  " * i + "- \n" for i in range(1, 40)),
    "a:\r  b:\r    c: 1\r",  # old Mac line breaks: lines the scan does not split
    "a:\u2028  b: 1\n",
    "x: " + "[a: " * 33 + "1" + "]" * 33 + "\n",  # 33 brackets, 67 levels: one-pair mappings need no braces
    "".join("\ufeff" + "  " * i + f"k{i}:\n" for i in range(70)),  # libyaml skips a BOM on any line
], ids=["anchor", "deep-flow", "deep-block", "cr-breaks", "line-separator", "pair-mappings", "bom-lines"])
def test_texts_the_characters_cannot_prove_are_walked(text: str) -> None:
    assert not plainly_bounded(text)


def test_a_deep_text_is_still_refused_through_check_bounds() -> None:
    with pytest.raises(ConfigError, match=rf"^d.yaml:\d+: nested deeper than {MAX_DEPTH} levels$"):
        check_bounds("x:\n" + "".join("  " * i + "- \n" for i in range(1, 80)), "d.yaml", LOADERS[0])

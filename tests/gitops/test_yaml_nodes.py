"""buildctl.gitops.yaml_nodes: composing documents (both loaders, their marks and errors), merge-key
lookups, alias sharing, repository normalisation.

(The walkers of pod specs and kustomization entries: tests/gitops/sites/.)
"""

from __future__ import annotations

import pytest
import yaml
from yaml.nodes import MappingNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops import yaml_nodes
from buildctl.gitops.yaml_nodes import (
    compose_documents,
    get,
    get_path,
    lookup,
    repository_of,
    scalar,
)
from buildctl.gitops.shared_values import Sharing

DIGEST = "sha256:" + "ab" * 32
@pytest.mark.parametrize(("text", "kinds"), [
    ("", []), ("# only a comment\n", []), ("---\n---\n", []), ("kind: Pod\n---\n~\n--- null\n...\n", ["Pod"]),
    ("--- !!map {kind: Pod}\n--- {kind: Service}\n", ["Pod", "Service"]),
])
def test_empty_and_null_documents_are_dropped(loader, text, kinds):
    assert [scalar(get(d, "kind")) for d in compose_documents(text, path="x.yaml")] == kinds


def test_a_control_character_after_non_ascii_names_its_line():
    with pytest.raises(ConfigError, match=r"^x.yaml:3: not valid YAML: unacceptable character #x001b$"):
        compose_documents("# ü\nkind: Pod\nspec: \x1b\n", path="x.yaml")


@pytest.mark.parametrize("line", ["kind: Pod\t# the pod", "kind: Pod \t"])
def test_tabs_as_whitespace_do_not_depend_on_the_file_being_ascii(line):
    ascii_doc = compose_documents(f"{line}\n# plain\n", path="x.yaml")
    assert scalar(get(ascii_doc[0], "kind")) == "Pod"
    assert scalar(get(compose_documents(f"{line}\n# naïve\n", path="x.yaml")[0], "kind")) == "Pod"


def _marks(docs) -> list[tuple]:
    """Every node's tag and marks, breadth first (an alias's node once)."""
    out, todo, seen = [], list(docs), set()
    while todo:
        node = todo.pop(0)
        if id(node) not in seen:
            seen.add(id(node))
            out.append((node.tag, node.start_mark.index, node.end_mark.index, node.start_mark.line,
                        node.start_mark.column))
            todo += [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else \
                node.value if isinstance(node, SequenceNode) else []
    return out


@pytest.mark.parametrize("text", [
    "\ufeffkind: Pod\nmetadata: {name: é}\nspec: {containers: [{name: ü, image: 'a/b:1'}]}\n",
    "\ufeff# Übersicht 🗳\r\nkind: Pod\r\nx: [a, \"é\u2028\"]  # «»\r\n",
    "# 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP\nkind: Pod\nx: |\n  é😀\n  y\nz: >-\n  a\n  bé\n---\nkind: Service\n",
    "kind: Pod\nnel: a\x85b: c\nlsep: 'x\u2028y'\nend: é",
], ids=["bom", "bom-crlf", "astral-multidoc", "line-breaks"])
def test_libyaml_reads_non_ascii_text_with_the_offsets_of_the_python_parser(monkeypatch, text):
    # One parser for all text: libyaml's marks count characters (and a leading BOM is added back),
    # so they are the pure-Python parser's string offsets, node for node.
    assert yaml_nodes._FAST_UNICODE and yaml_nodes.fast_loader(text) is not None
    fast = _marks(compose_documents(text, path="x.yaml"))
    monkeypatch.setattr(yaml_nodes, "_FAST_LOADER", None)
    assert fast == _marks(compose_documents(text, path="x.yaml"))


def test_a_lone_surrogate_is_worded_by_the_python_parser():
    # libyaml gets UTF-8, which a lone surrogate cannot be: the fallback names the character and line.
    with pytest.raises(ConfigError, match=r"^x.yaml:2: not valid YAML: unacceptable character #xd800$"):
        compose_documents("kind: Pod\nx: \ud800\n", path="x.yaml")


# --------------------------------------------------------------------------- merge keys and aliases


def test_lookup_follows_merge_keys_as_yaml_reads_them():
    text = ("base: &b {image: base:1, name: b, pull: Always}\nother: &o {image: other:1, tag: t}\n"
            "c1: {<<: *b, image: own:1}\nc2: {<<: [*o, *b]}\nc3: {<<: {<<: *b}}\nc4: {'<<': *b}\n")
    doc = compose_documents(text, path="x.yaml")[0]
    assert scalar(get(get(doc, "c1"), "image")) == "own:1" and lookup(get(doc, "c1"), "image").merge is None
    assert scalar(get(get(doc, "c1"), "pull")) == "Always"  # from the merge
    slot = lookup(get(doc, "c2"), "image")
    assert (slot.value.value, slot.merge.start_mark.line) == ("other:1", 3)  # the first mapping merged wins
    assert scalar(get(get(doc, "c2"), "name")) == "b" and scalar(get(get(doc, "c3"), "name")) == "b"
    assert get(get(doc, "c4"), "image") is None  # a quoted '<<' is a plain key, not a merge


def test_a_self_merging_mapping_is_not_a_recursion_error():
    doc = compose_documents("a: &a {<<: *a}\n", path="x.yaml")[0]
    assert get(get(doc, "a"), "image") is None


def _sharing(text: str) -> tuple[Sharing, object]:
    docs = compose_documents(text, path="x.yaml")
    return Sharing(text, docs), docs[0]


def test_sharing_counts_every_path_from_the_root():
    sharing, doc = _sharing("a: &v x\nb: *v\nl: &l [&i {k: 1}, *i]\nm: *l\nn: [*l, *l]\nplain: y\n")
    paths = sharing.paths
    assert paths[id(get(doc, "a"))] == 2 and sharing.slots[id(get(doc, "a"))] == 2
    item = get(doc, "l").value[0]
    assert paths[id(get(doc, "l"))] == 4  # l, m and twice in n
    assert paths[id(item)] == 8 and paths[id(get(item, "k"))] == 8  # twice in each list
    assert paths[id(get(doc, "plain"))] == 1
    assert _sharing("a: x\nb: y\n")[0].paths is None  # no anchor: nothing shared, nothing counted


def test_sharing_refuses_a_node_reached_from_places_outside_the_edit():
    sharing, doc = _sharing("a: &v x\nb: *v\n")
    node, (key_a, _), (key_b, _) = get(doc, "a"), *doc.value
    with pytest.raises(ConfigError, match=r"^x.yaml:2: `b` is an alias of line 1, shared with other values; write "):
        sharing.check(node, what="`b`", path="x.yaml", key=key_b)
    with pytest.raises(ConfigError, match=r"^x.yaml:1: `a` has an anchor that an alias repeats elsewhere"):
        sharing.check(node, what="`a`", path="x.yaml", key=key_a)
    sharing.edited(node)
    sharing.edited(node)  # both places are sites of this edit: it may change
    sharing.check(node, what="`a`", path="x.yaml", key=key_a)


def test_sharing_treats_a_cycle_as_shared():
    sharing, doc = _sharing("a: &a [x, *a]\n")
    with pytest.raises(ConfigError, match="alias repeats elsewhere"):
        sharing.check(get(doc, "a").value[0], what="x", path="x.yaml")


# --------------------------------------------------------------------------- helpers and references


def test_get_helpers_never_raise_on_the_wrong_shape():
    doc = compose_documents("a: {b: [1]}\nc: x\n", path="x.yaml")[0]
    assert get(doc, "missing") is None and get(get(doc, "c"), "b") is None and get(None, "a") is None
    assert get_path(doc, "a", "b", "c") is None and get_path(doc, "missing", "b") is None
    assert scalar(get(doc, "a")) is None and scalar(get(doc, "c")) == "x" and scalar(None) is None


@pytest.mark.parametrize(("ref", "repository"), [
    ("redis", "docker.io/library/redis"),
    ("redis:7-alpine", "docker.io/library/redis"),
    ("library/redis", "docker.io/library/redis"),
    ("docker.io/library/redis:6", "docker.io/library/redis"),
    ("index.docker.io/library/redis", "docker.io/library/redis"),
    (f"redis@{DIGEST}", "docker.io/library/redis"),
    ("bitnami/redis:7", "docker.io/bitnami/redis"),
    (f"127.0.0.1:5000/voting-app/vote:41@{DIGEST}", "127.0.0.1:5000/voting-app/vote"),
    ("localhost/vote", "localhost/vote"),
    ("localhost:5000/vote", "localhost:5000/vote"),
    ("[::1]:5000/a/b:c", "[::1]:5000/a/b"),
    ("mirror.example.com/library/redis", "mirror.example.com/library/redis"),
    ("registry-1.docker.io/library/redis", "registry-1.docker.io/library/redis"),
    ("MyACR.azurecr.io:443/team/api:1.0", "myacr.azurecr.io:443/team/api"),  # a host is a DNS name: any case
    ("Docker.IO/redis", "docker.io/library/redis"),
])
def test_repository_of_normalises_like_docker(ref, repository):
    assert repository_of(ref) == repository


@pytest.mark.parametrize("ref", ["", "Redis", "a b", "redis:", "redis:-x", "redis@sha256:12", "https://r.io/a", "a//b"])
def test_repository_of_is_none_for_what_is_not_a_reference(ref):
    assert repository_of(ref) is None


@pytest.mark.parametrize("ref", ["docker.io/redis:7", f"docker.io/redis@{DIGEST}"])
def test_docker_io_with_a_one_part_name_is_the_official_image(ref):
    assert repository_of(ref) == repository_of("redis") == "docker.io/library/redis"


@pytest.mark.parametrize("ref", ["index.docker.io/redis", "index.docker.io/redis:7"])
def test_the_legacy_hub_host_with_a_one_part_name_is_the_official_image(ref):
    assert repository_of(ref) == repository_of("redis") == "docker.io/library/redis"


def test_the_memoised_libyaml_loader_resolves_every_tag_as_the_python_parser():
    # Its tag resolver is memoised by (node kind, value, implicit): the same text quoted and plain,
    # met again and again, must keep each its own tag, as SafeLoader gives them.
    text = ("a: 123\nb: '123'\nc: yes\nd: \"yes\"\ne: ~\nf: ''\ng: 1.10\nh: 2024-01-01\ni: 0x1F\nj: .inf\n"
            "k: !!str 5\nl: [123, '123', yes]\nm: {n: null}\n") * 3
    assert yaml_nodes._FAST_LOADER is not None and yaml_nodes._FAST_LOADER.__name__ == "_MemoLoader"

    def tags(docs):
        return [(n.tag, n.start_mark.index, n.end_mark.index) for n in yaml_nodes.every_node(docs)]

    fast = tags(compose_documents(text, path="x.yaml"))
    assert fast == tags(list(yaml.compose_all(text, Loader=yaml.SafeLoader)))
    assert {t for t, _, _ in fast} >= {"tag:yaml.org,2002:int", "tag:yaml.org,2002:str", "tag:yaml.org,2002:bool",
                                        "tag:yaml.org,2002:null", "tag:yaml.org,2002:float",
                                        "tag:yaml.org,2002:timestamp"}

"""buildctl.gitops.yaml_nodes: which fields of which kinds hold container images, kustomization
`images:` entries, repository normalisation and the node marks edits rely on.

(tests/gitops/test_edits.py runs the manifest corpus end to end; these pin the walker itself.)
"""

from __future__ import annotations

import pytest
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops import yaml_nodes
from buildctl.gitops.sites.container import container_images
from buildctl.gitops.sites.kustomize_entry import is_kustomization, kustomize_images
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
POD_SPEC = """\
{indent}containers:
{indent}- name: app
{indent}  image: app:1
{indent}  env: [{{name: image, value: "env:1"}}]
{indent}- name: sidecar
{indent}  image: "side:1"
{indent}initContainers: [{{name: migrate, image: 'init:1'}}]
{indent}ephemeralContainers:
{indent}- {{name: debug, image: debug:1}}
"""
# kind -> the keys down to its pod spec
WORKLOADS = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
DECOY = "  containers: [{name: decoy, image: decoy:1}]\n"


def manifest(kind: str, keys: tuple[str, ...], name: str = "web", *, decoy: bool = True) -> str:
    text = f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  annotations: {{image: meta:1}}\n"
    for depth, key in enumerate(keys):
        text += "  " * depth + f"{key}:\n"
        if decoy and depth == 0 and key == "spec" and len(keys) > 1:
            text += DECOY.replace("  ", "  " * (depth + 1), 1)  # a `containers` at the wrong level
    return text + POD_SPEC.format(indent="  " * len(keys))


def images(text: str, path: str = "k8s/x.yaml") -> list[tuple[str, str, str]]:
    return [(c.where, c.container, c.image.value)
            for doc in compose_documents(text, path=path) for c in container_images(doc, path=path)]


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_each_workload_kind_yields_exactly_its_pod_spec_containers(loader, kind):
    assert images(manifest(kind, WORKLOADS[kind])) == [
        (f"{kind}/web container app", "app", "app:1"),
        (f"{kind}/web container sidecar", "sidecar", "side:1"),
        (f"{kind}/web initContainer migrate", "migrate", "init:1"),
        (f"{kind}/web ephemeralContainer debug", "debug", "debug:1"),
    ]


@pytest.mark.parametrize(("kind", "keys"), [
    ("Pod", ("spec", "template", "spec")),            # a Deployment's path in a Pod
    ("Deployment", ("spec",)),                         # a Pod's path in a Deployment
    ("CronJob", ("spec", "template", "spec")),         # a Job's path in a CronJob
    ("Job", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("Service", ("spec",)),
    ("ConfigMap", ("data",)),
    ("Kustomization", ("spec",)),
    ("deployment", ("spec",)),                         # not a core kind, and no pod template
    ("Rollout", ("spec", "template")),                 # a template without a pod spec
])
def test_containers_at_another_kinds_path_are_not_images(kind, keys):
    assert images(manifest(kind, keys, decoy=False)) == []


def test_image_nodes_are_the_scalars_with_their_exact_offsets(loader):
    text = manifest("Deployment", WORKLOADS["Deployment"])
    for doc in compose_documents(text, path="x.yaml"):
        for site in container_images(doc, path="x.yaml"):
            raw = text[site.image.start_mark.index:site.image.end_mark.index]
            assert raw.strip("'\"") == site.image.value


def test_offsets_stay_exact_after_non_ascii_and_a_bom():
    text = "\ufeff# Übersicht 🗳\nkind: Pod\nmetadata: {name: é}\nspec:\n  containers:\n  - name: ü\n    image: 'a/b:1'\n"
    (site,) = [c for d in compose_documents(text, path="x.yaml") for c in container_images(d, path="x.yaml")]
    assert (site.where, text[site.image.start_mark.index:site.image.end_mark.index]) == ("Pod/é container ü", "'a/b:1'")


def test_lists_recurse_and_skip_what_is_not_a_workload():
    text = ("kind: List\nitems:\n- kind: Service\n  spec: {containers: [{name: no, image: no:1}]}\n"
            "- kind: DeploymentList\n  items:\n  - " + manifest("Deployment", WORKLOADS["Deployment"], "inner")
            .replace("\n", "\n    ").rstrip() + "\n")
    assert [w for w, _, _ in images(text)] == [
        "Deployment/inner container app", "Deployment/inner container sidecar",
        "Deployment/inner initContainer migrate", "Deployment/inner ephemeralContainer debug",
    ]
    assert images("kind: List\nitems: {a: b}\n") == images("kind: List\nitems: []\n") == []
    with pytest.raises(ConfigError, match=r"^k8s/x.yaml:3: not a Kubernetes manifest \(a document without `kind`\)"):
        images("kind: List\nitems:\n- just a string\n")


def test_odd_containers_are_named_or_skipped_never_guessed():
    text = ("kind: Pod\nspec:\n  containers:\n  - image: noname:1\n  - {name: 42, image: num:1}\n"
            "  - {name: int, image: 42}\n  - {name: null-image, image: null}\n  - {name: list, image: [a:1]}\n"
            "  - {name: map, image: {ref: a:1}}\n  - not-a-mapping\n  initContainers: {name: x, image: x:1}\n")
    docs = compose_documents(text, path="p.yaml")
    sites = list(container_images(docs[0], path="p.yaml"))
    assert [(s.where, s.image.value) for s in sites] == [
        ("Pod/? container ?", "noname:1"), ("Pod/? container 42", "num:1"),
        ("Pod/? container int", "42"), ("Pod/? container null-image", "null"),
    ]
    # the tag says what the value is: edits skip the int and the null
    assert [s.image.tag.rsplit(":", 1)[1] for s in sites] == ["str", "str", "int", "null"]


def test_a_duplicated_key_reads_as_its_last_value():
    text = "kind: Pod\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c, image: first:1, image: last:1}\n"
    assert images(text) == [("Pod/a container c", "c", "last:1")]


def test_an_aliased_container_list_yields_the_same_image_node_twice():
    text = ("kind: Pod\nmetadata: {name: a}\nspec:\n  containers: &all\n  - {name: c, image: x:1}\n"
            "  initContainers: *all\n")
    first, second = container_images(compose_documents(text, path="p.yaml")[0], path="p.yaml")
    assert (first.where, second.where) == ("Pod/a container c", "Pod/a initContainer c")
    assert first.image is second.image  # one node: edits dedupe it by offset


@pytest.mark.parametrize(("text", "kinds"), [
    ("", []), ("# only a comment\n", []), ("---\n---\n", []), ("kind: Pod\n---\n~\n--- null\n...\n", ["Pod"]),
    ("--- !!map {kind: Pod}\n--- {kind: Service}\n", ["Pod", "Service"]),
])
def test_empty_and_null_documents_are_dropped(loader, text, kinds):
    assert [scalar(get(d, "kind")) for d in compose_documents(text, path="x.yaml")] == kinds


@pytest.mark.parametrize("text", ["--- 42\n", "- a\n- b\n", "just a string\n", "apiVersion: v1\n"])
def test_a_document_that_is_not_a_manifest_is_refused(text):
    (doc,) = compose_documents(text, path="k8s/x.yaml")
    with pytest.raises(ConfigError) as err:
        list(container_images(doc, path="k8s/x.yaml"))
    assert str(err.value) == "k8s/x.yaml:1: not a Kubernetes manifest (a document without `kind`)"
    assert "helm: {}" in err.value.hint


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


def test_a_container_image_from_a_merge_key_is_found_with_that_key():
    text = ("x-base: &c {image: app:1}\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - <<: *c\n    name: app\n  - name: own\n    <<: *c\n    image: own:1\n")
    app, own = container_images(compose_documents(text, path="p.yaml")[0], path="p.yaml")
    assert (app.where, app.image.value, app.merge.start_mark.line + 1, app.key.start_mark.line + 1) == \
        ("Pod/p container app", "app:1", 6, 1)
    assert (own.image.value, own.merge, own.key.start_mark.line + 1) == ("own:1", None, 10)


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


# --------------------------------------------------------------------------- kustomizations


def test_kustomize_entries_and_the_reference_kustomize_makes():
    text = (f"images:\n- name: a\n- name: b\n  newName: r.io/b\n  newTag: '2'\n  digest: {DIGEST}\n"
            f"- {{name: c, digest: {DIGEST}}}\n- plain-string\n- name: d\n  newTag: [1]\n  newName: {{x: y}}\n")
    entries = list(kustomize_images(compose_documents(text, path="kustomization.yaml")[0], path="kustomization.yaml"))
    assert [(e.name, e.reference()) for e in entries] == [
        ("a", "a"), ("b", f"r.io/b:2@{DIGEST}"), ("c", f"c@{DIGEST}"), ("d", "d"),
    ]
    assert entries[3].field("newTag") is None and get(entries[3].entry, "newTag") is not None  # a list: no field
    assert isinstance(entries[1].field("digest"), ScalarNode)


@pytest.mark.parametrize("text", ["images: {name: a}\n", "images:\n", "resources: [a.yaml]\n"])
def test_kustomizations_without_an_images_list_have_no_entries(text):
    assert list(kustomize_images(compose_documents(text, path="k")[0], path="k")) == []


def test_a_kustomization_that_is_not_a_mapping_is_refused():
    (doc,) = compose_documents("- images\n", path="base/kustomization.yaml")
    with pytest.raises(ConfigError, match=r"^base/kustomization.yaml:1: not a kustomization \(not a mapping\)$"):
        list(kustomize_images(doc, path="base/kustomization.yaml"))


@pytest.mark.parametrize(("path", "text", "expected"), [
    ("kustomization.yaml", "resources: []\n", True),
    ("overlays/prod/kustomization.yml", "resources: []\n", True),
    ("overlays/prod/Kustomization", "resources: []\n", True),
    ("k8s/app.yaml", "kind: Kustomization\n", True),
    ("k8s/app.yaml", "kind: Deployment\n", False),
    ("k8s/my-kustomization.yaml", "resources: []\n", False),
    ("k8s/kustomization.yaml.bak", "resources: []\n", False),
    ("k8s/KUSTOMIZATION.YAML", "resources: []\n", False),
])
def test_is_kustomization_by_file_name_or_kind(path, text, expected):
    assert is_kustomization(compose_documents(text, path=path)[0], path=path) is expected

"""buildctl.gitops.sites.kustomize_entry: the splices that point one kustomization `images:` entry at a new
reference — newName only when the repository differs, newTag/digest replaced, inserted or removed,
non-string fields refused. Expectations are exact texts (kustomize reads the result).

(tests/gitops/test_edits.py covers the kustomization corpus and digest removal through edit_file.)
"""

from __future__ import annotations

import pytest
from yaml.nodes import ScalarNode

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.sites.kustomize_entry import is_kustomization, kustomize_images, kustomize_splices
from buildctl.gitops.yaml_nodes import compose_documents, get
from buildctl.gitops.yaml_splice import apply_splices

K = "overlays/prod/kustomization.yaml"
V = "127.0.0.1:5000/voting-app/vote"
D1 = "sha256:" + "11" * 32
D2 = "sha256:" + "22" * 32
DIGEST = "sha256:" + "ab" * 32


def splices(text: str, new: str, entry: int = 0):
    newline = "\r\n" if "\r\n" in text else "\n"
    site = list(kustomize_images(compose_documents(text, path=K)[0], path=K))[entry]
    return kustomize_splices(text, site, new, newline, path=K)


def edit(text: str, new: str, entry: int = 0) -> str:
    return apply_splices(text, sorted(splices(text, new, entry), key=lambda s: (s.start, s.end)))


def entry(*lines: str, tail: str = "resources:\n- deployment.yaml\n") -> str:
    return "images:\n- " + "\n  ".join(lines) + "\n" + tail


# --------------------------------------------------------------------------- newName


@pytest.mark.parametrize(("before", "new"), [
    (entry(f"name: {V}", "newTag: '41'"), f"{V}:42"),                           # the name is the repository
    (entry("name: redis", "newTag: '6'"), "docker.io/library/redis:42"),         # short name, long reference
    (entry("name: redis", "newName: docker.io/library/redis", "newTag: '6'"), "redis:42"),  # and the reverse
    (entry("name: vote", "newName: index.docker.io/library/vote", "newTag: '6'"), "vote:42"),
    (entry("name: vote", "newName: index.docker.io/vote", "newTag: '6'"), "docker.io/library/vote:42"),
    (entry("name: index.docker.io/vote", "newTag: '6'"), "vote:42"),
])
def test_newname_is_left_alone_when_it_names_the_same_repository(loader, before, new):
    assert edit(before, new) == before.replace("'41'", "'42'").replace("'6'", "'42'")


def test_a_different_newname_is_replaced_with_the_callers_spelling(loader):
    before = entry("name: vote", "newName: old.example.com/vote   # moved", "newTag: '41'")
    assert edit(before, f"{V}:42") == before.replace("old.example.com/vote", V).replace("'41'", "'42'")


@pytest.mark.parametrize(("new", "inserted"), [
    (f"{V}:42", f"  newName: {V}\n  newTag: \"42\"\n"),
    (f"{V}:42@{D1}", f"  newName: {V}\n  newTag: \"42\"\n  digest: {D1}\n"),
    (f"{V}@{D1}", f"  newName: {V}\n  digest: {D1}\n"),  # the registry port is not mistaken for a tag
    (f"{V}:5000", f"  newName: {V}\n  newTag: \"5000\"\n"),  # a tag equal to the port
])
def test_missing_fields_are_inserted_in_order_after_the_entry(loader, new, inserted):
    before = entry("name: vote  # the app")
    assert edit(before, new) == before.replace("# the app\n", "# the app\n" + inserted)
    assert len(splices(before, new)) == 1  # one insertion, never a key per splice


# --------------------------------------------------------------------------- newTag and digest

MATRIX = [
    ("tag+digest -> tag", ("newTag: '41'", f"digest: {D1}"), f"{V}:42", ("newTag: '42'",)),
    ("tag+digest -> digest", ("newTag: '41'", f"digest: {D1}"), f"{V}@{D2}", (f"digest: {D2}",)),
    ("tag+digest -> both", ("newTag: '41'", f"digest: {D1}"), f"{V}:42@{D2}", ("newTag: '42'", f"digest: {D2}")),
    ("tag -> both", ("newTag: \"41\"",), f"{V}:42@{D2}", ("newTag: \"42\"", f"digest: {D2}")),
    ("digest -> tag", (f"digest: {D1}",), f"{V}:42", ("newTag: \"42\"",)),
    ("digest first -> tag", (f"digest: {D1}", "newTag: v41"), f"{V}:v42", ("newTag: v42",)),
    ("none -> both", (), f"{V}:42@{D2}", ("newTag: \"42\"", f"digest: {D2}")),
]


@pytest.mark.parametrize(("fields", "new", "after"), [c[1:] for c in MATRIX], ids=[c[0] for c in MATRIX])
def test_tag_and_digest_follow_the_new_reference(loader, fields, new, after):
    before = entry(f"name: {V}", *fields)
    assert edit(before, new) == entry(f"name: {V}", *after)
    assert splices(edit(before, new), new) == []  # applying it again changes nothing


@pytest.mark.parametrize(("field", "expected"), [
    ("newTag: '41'  # pinned by CI", "newTag: '42'  # pinned by CI"),
    ('newTag: "41"', 'newTag: "42"'),
    ("newTag: latest", 'newTag: "42"'),  # plain 42 would be a number
    ("newTag:", 'newTag: "42"'),
    ("newTag:   # set by the release", 'newTag: "42"   # set by the release'),
    ("newTag: ''", "newTag: '42'"),
    ("newTag: &tag '41'", "newTag: &tag '42'"),
])
def test_the_tag_keeps_its_quoting_comment_and_anchor(loader, field, expected):
    before = entry(f"name: {V}", field)
    assert edit(before, f"{V}:42") == before.replace(field, expected)


def test_the_same_reference_needs_no_splice():
    text = entry("name: vote", f"newName: {V}", "newTag: '42'", f"digest: {D1}")
    assert splices(text, f"{V}:42@{D1}") == []


def test_crlf_and_a_missing_final_newline_survive(loader):
    before = f"images:\r\n- name: vote\r\n  newName: {V}\r\n  newTag: '41'\r\n  digest: {D1}"
    assert edit(before, f"{V}:42") == f"images:\r\n- name: vote\r\n  newName: {V}\r\n  newTag: '42'"
    before = f"images:\r\n- name: vote\r\n  newName: {V}"
    assert edit(before, f"{V}:42@{D1}") == before + f"\r\n  newTag: \"42\"\r\n  digest: {D1}"


def test_only_the_chosen_entry_changes(loader):
    text = (f"images:\n  - name: vote\n    newName: {V}\n    newTag: '41'\n"
            f"  - name: result\n    newName: {V}-result\n    newTag: '41'\n")
    assert edit(text, f"{V}-result:42", entry=1) == text[: text.rindex("'41'")] + "'42'\n"


def test_flow_entries_are_edited_in_place(loader):
    text = f"images:\n- {{name: vote, newName: {V}, newTag: '41', digest: {D1}}}  # flow\n"
    assert edit(text, f"{V}:42") == f"images:\n- {{name: vote, newName: {V}, newTag: '42'}}  # flow\n"
    text = "images: [{name: vote}]\n"
    assert edit(text, f"{V}:42@{D1}") == f"images: [{{name: vote, newName: {V}, newTag: \"42\", digest: {D1}}}]\n"


@pytest.mark.parametrize(("before", "after"), [
    (f"images:\n- {{name: {V}, digest: {D1}}}\n", f"images:\n- {{name: {V}, newTag: \"42\"}}\n"),
    (f"images:\n- {{\n    name: {V},  # c\n    digest: {D1}  # d\n  }}\n",
     f"images:\n- {{\n    name: {V}, newTag: \"42\"  # c\n  }}\n"),
])
def test_a_flow_entry_s_last_field_removed_and_another_added(loader, before, after):
    # The new field goes after the last field that stays: after the removed one it fell in its removal.
    assert edit(before, f"{V}:42") == after
    assert edit_file(before, path="kustomization.yaml", repository=V, new_reference=f"{V}:42")[0] == after


def test_non_ascii_around_the_entry(loader):
    before = f"# Übersicht ✓\nimages:\n- name: vote  # «Abstimmung»\n  newName: {V}\n  newTag: '41'\n"
    assert edit(before, f"{V}:42@{D1}") == before.replace("'41'\n", f"'42'\n  digest: {D1}\n")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(("field", "line", "what"), [
    ("newTag: [41]", 3, "`newTag` of kustomization image vote is a list"),
    ("newTag:\n  - '41'", 4, "`newTag` of kustomization image vote is a list"),
    ("digest: {sha256: x}", 3, "`digest` of kustomization image vote is a mapping"),
    ("newName: [a, b]", 3, "`newName` of kustomization image vote is a list"),
])
@pytest.mark.parametrize("new", [f"{V}:42", f"{V}:42@{D1}", f"{V}@{D1}"])
def test_a_field_that_is_not_a_string_is_refused_never_doubled(field, line, what, new):
    text = f"images:\n- name: vote\n  {field}\n"
    with pytest.raises(ConfigError) as err:
        splices(text, new)
    assert str(err.value) == f"{K}:{line}: {what}, expected a string"


@pytest.mark.parametrize("field", ["newTag: |\n    41", "newTag: >-\n    41", "newName: |\n    other.io/x"])
def test_a_block_scalar_field_is_refused_with_its_line(field):
    with pytest.raises(ConfigError, match=rf"^{K}:3: cannot replace a block scalar"):
        splices(f"images:\n- name: vote\n  {field}\n", f"{V}:42")


@pytest.mark.parametrize("field", [None, "newTag: latest"], ids=["inserted", "replaced"])
@pytest.mark.parametrize("tag", ["1234e56", "1e3", "0o17", "08", "y"])
def test_tags_kustomize_reads_as_numbers_are_quoted(field, tag):
    before = entry(f"name: {V}", *([field] if field else []))
    assert edit(before, f"{V}:{tag}") == entry(f"name: {V}", f'newTag: "{tag}"')


# --------------------------------------------------------------------------- aliases and merge keys


def shared_splices(text: str, new: str, entry: int = 0):
    """kustomize_splices for one entry, as edit_file calls it: knowing what aliases share."""
    docs = compose_documents(text, path=K)
    site = list(kustomize_images(docs[0], path=K))[entry]
    sharing = Sharing(text, docs)
    sharing.edited(site.entry, *[f for f in map(site.field, ("newName", "newTag", "digest")) if f is not None])
    return kustomize_splices(text, site, new, "\n", path=K, sharing=sharing)


@pytest.mark.parametrize(("text", "line", "problem"), [
    (f"x: &t '41'\nimages:\n- name: {V}\n  newTag: *t\n", 4, "`newTag` of kustomization image {V} is an alias of line 1"),
    (f"images:\n- name: {V}\n  newTag: &t '41'\n- name: {V}-result\n  newTag: *t\n", 3,
     "`newTag` of kustomization image {V} has an anchor that an alias repeats elsewhere"),
    (f"images:\n- name: {V}\n  digest: &d {D1}\nkeep: *d\n", 3,
     "`digest` of kustomization image {V} has an anchor that an alias repeats elsewhere"),  # a removal
    (f"images:\n- &e {{name: {V}}}\nother: [*e]\n", 2,
     "kustomization image {V} has an anchor that an alias repeats elsewhere"),  # an insertion into it
])
def test_a_field_an_alias_shares_with_other_values_is_refused(loader, text, line, problem):
    with pytest.raises(ConfigError) as err:
        shared_splices(text, f"{V}:42")
    assert str(err.value) == f"{K}:{line}: {problem.format(V=V)}, shared with other values; write the value out"


def test_an_alias_within_the_edit_and_an_unchanged_alias_are_fine(loader):
    text = f"images:\n- name: {V}\n  newName: &n {V}\n  newTag: '41'\n- name: other\n  newName: *n\n  newTag: '41'\n"
    # newName is shared, but stays: only the first entry's own newTag changes
    assert apply_splices(text, shared_splices(text, f"{V}:42")) == text.replace("'41'", "'42'", 1)


@pytest.mark.parametrize(("merged", "own", "new"), [
    ("newTag: '41'", f"newName: {V}", f"{V}:42"),         # replaced
    (f"digest: {D1}", "newTag: '41'", f"{V}:41"),         # removed
    (f"newName: {V}", "newTag: '41'", "other.io/vote:41"),  # replaced
])
def test_a_field_from_a_merge_key_is_refused_never_edited_at_its_source(loader, merged, own, new):
    text = f"base: &b\n  {merged}\nimages:\n- name: vote\n  <<: *b\n  {own}\n"
    with pytest.raises(ConfigError) as err:
        splices(text, new)
    assert str(err.value) == (f"{K}:5: `{merged.split(':')[0]}` of kustomization image vote comes through the "
                              "`<<:` merge key, from the mapping it merges; write the key out beside the `<<:`")


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
    ("k8s/app.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n", True),
    ("k8s/app.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n", False),  # Flux's
    ("kustomization.yaml", "apiVersion: kustomize.toolkit.fluxcd.io/v1beta2\nkind: Kustomization\n", False),
    ("k8s/app.yaml", "apiVersion: example.com/v1\nkind: Kustomization\n", False),
    ("k8s/app.yaml", "kind: Deployment\n", False),
    ("k8s/my-kustomization.yaml", "resources: []\n", False),
    ("k8s/kustomization.yaml.bak", "resources: []\n", False),
    ("k8s/KUSTOMIZATION.YAML", "resources: []\n", False),
])
def test_is_kustomization_by_file_name_or_kind(path, text, expected):
    assert is_kustomization(compose_documents(text, path=path)[0], path=path) is expected


# microservices-demo's kustomize/components/container-images-tag-suffix: kustomize appends tagSuffix to
# the tag, so a newTag written beside it would deploy TAG<suffix> (or fail the build), never the release.
TAG_SUFFIX = """\
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
images:
- name: us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/adservice
  tagSuffix: CONTAINER_IMAGES_TAG_SUFFIX
"""


def test_an_entry_with_a_field_buildctl_does_not_write_is_refused():
    ad = "us-central1-docker.pkg.dev/online-boutique-ci/microservices-demo/adservice"
    with pytest.raises(ConfigError) as err:
        edit(TAG_SUFFIX, f"{ad}:v0.10.7@{DIGEST}")
    assert str(err.value) == (f"{K}:5: `tagSuffix` of kustomization image {ad} appends to the tag: kustomize would "
                              f"not deploy the release {ad}:v0.10.7@{DIGEST} from this entry")
    assert err.value.hint == "remove `tagSuffix` from the entry (buildctl writes newName, newTag, digest)"
    site = next(kustomize_images(compose_documents(TAG_SUFFIX.replace("  tagSuffix", "  newTag: v1\n  tagSuffix"),
                                                   path=K)[0], path=K))
    assert site.reference() == f"{ad}:v1CONTAINER_IMAGES_TAG_SUFFIX"  # what kustomize deploys: --check sees drift
    with pytest.raises(ConfigError, match=r"^overlays/prod/kustomization.yaml:5: `newTagg` of .* is not one buildctl "):
        edit(TAG_SUFFIX.replace("tagSuffix: CONTAINER_IMAGES_TAG_SUFFIX", "newTagg: v1"), f"{ad}:v2")

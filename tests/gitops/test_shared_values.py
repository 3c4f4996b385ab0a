"""YAML anchors, aliases and `<<:` merge keys in GitOps files: an edit never changes a value that is
not one of its sites. A composed tree keeps an alias as its anchor's node object, so a splice there
reaches every place that aliases it — other containers, other repositories' kustomization entries,
annotations. Such an edit is refused with file:line; so is one of a value a merge key brings in.
(Exact texts, both parsers; the Sharing unit itself: test_yaml_nodes.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import compute_change, drift, edit_file
from tests.gitops.values_edit import edit_values, find_site
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage

R = "127.0.0.1:5000/team/app"
O = "127.0.0.1:5000/team/other"
DIGEST = "sha256:" + "ab" * 32
K = "k/kustomization.yaml"
pytestmark = pytest.mark.usefixtures("loader")  # every test on both YAML loaders
SHARED = "shared with other values; write the value out"
MERGED = "comes through the `<<:` merge key, from the mapping it merges; write the key out beside the `<<:`"


def pod(containers: str, head: str = "") -> str:
    return f"{head}apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n{containers}"


ALIASED = pod(f"  - name: app\n    image: &img {R}:41\n  - name: side\n    image: *img\n")


def edit(text: str, path: str = "d.yaml", containers: tuple[str, ...] = (), new: str = f"{R}:42"):
    return edit_file(text, path=path, repository=R, new_reference=new, containers=containers)


# --------------------------------------------------------------------------- aliases


@pytest.mark.parametrize(("containers", "message"), [
    (("side",), f"d.yaml:9: the image of container side is an alias of line 7, {SHARED}"),
    (("app",), f"d.yaml:7: the image of container app has an anchor that an alias repeats elsewhere, {SHARED}"),
])
def test_selecting_one_of_two_containers_an_alias_joins_is_refused(containers, message):
    with pytest.raises(ConfigError) as err:
        edit(ALIASED, containers=containers)
    assert str(err.value) == message


def test_an_alias_whose_every_place_is_edited_is_edited_once():
    after, edits, _ = edit(ALIASED)
    assert after == ALIASED.replace(":41", ":42")
    assert edits == (f"Pod/p container app: {R}:41 -> {R}:42", f"Pod/p container side: {R}:41 -> {R}:42")
    assert edit(after)[:2] == (after, ())  # in sync: nothing changes, nothing is refused


@pytest.mark.parametrize(("text", "message"), [
    (pod("  - name: app\n    image: *i\n", head=f"x-annotation: &i {R}:41\n"),
     f"d.yaml:8: the image of container app is an alias of line 1, {SHARED}"),
    (pod(f"  - &c {{name: app, image: {R}:41}}\n  initContainers: [*c]\n  x: *c\n"),
     f"d.yaml:6: the image of container app is inside a node that an alias repeats elsewhere, {SHARED}"),
    ((f"kind: List\nitems:\n- kind: Pod\n  metadata: {{name: p}}\n  spec:\n    containers:\n    - name: app\n"
      f"      image: &i {R}:41\n- kind: ConfigMap\n  data: {{image: *i}}\n"),
     f"d.yaml:8: the image of container app has an anchor that an alias repeats elsewhere, {SHARED}"),
], ids=["annotation-anchor", "container-in-a-configmap-value", "configmap-alias-in-a-list"])
def test_an_image_shared_with_a_value_that_is_no_image_is_refused(text, message):
    with pytest.raises(ConfigError) as err:
        edit(text)
    assert str(err.value) == message


def test_an_aliased_container_list_is_edited_when_every_copy_is_a_site():
    text = pod(f"  - {{name: c, image: {R}:41}}\n  initContainers: *all\n").replace("containers:\n", "containers: &all\n")
    after, edits, _ = edit(text)
    assert after == text.replace(":41", ":42") and len(edits) == 2


def test_a_kustomization_tag_shared_with_another_images_entry_is_refused(tmp_path: Path):
    text = f"resources: [pod.yaml]\nimages:\n- name: {R}\n  newTag: &t '41'\n- name: {O}\n  newTag: *t\n"
    with pytest.raises(ConfigError) as err:
        edit(text, path=K)
    assert str(err.value) == (f"{K}:4: `newTag` of kustomization image {R} has an anchor that an alias "
                              f"repeats elsewhere, {SHARED}")
    (tmp_path / "k").mkdir()
    (tmp_path / K).write_text(text)
    with pytest.raises(ConfigError, match="an alias repeats elsewhere"):  # as in a release
        compute_change(tmp_path, [ReleasedImage("app", R, "42", DIGEST)], {"app": (GitOpsFile(K),)}, pin_digest=False)


def test_helm_values_an_alias_shares_are_refused(tmp_path: Path):
    text = f"image:\n  repository: {R}\n  tag: &b \"41\"\nsidecar:\n  repository: {O}\n  tag: *b\n"
    (tmp_path / "values.yaml").write_text(text)
    targets = {"app": (GitOpsFile("values.yaml", helm=HelmKeys()),)}
    with pytest.raises(ConfigError) as err:
        compute_change(tmp_path, [ReleasedImage("app", R, "42", DIGEST)], targets, pin_digest=False)
    assert str(err.value) == f"values.yaml:3: `image.tag` has an anchor that an alias repeats elsewhere, {SHARED}"
    (tmp_path / "values.yaml").write_text(text.replace("&b \"41\"", "&b \"42\""))  # in sync: fine
    change, _ = compute_change(tmp_path, [ReleasedImage("app", R, "42", DIGEST)], targets, pin_digest=False)
    assert not change.changed


# --------------------------------------------------------------------------- merge keys


MERGED_POD = pod(f"  - <<: *c\n    name: app\n  - name: side\n    image: {R}:41\n", head=f"x-base: &c\n  image: {R}:41\n")


def test_a_container_image_from_a_merge_key_is_refused_not_skipped():
    with pytest.raises(ConfigError) as err:
        edit(MERGED_POD)
    assert str(err.value) == f"d.yaml:8: the image of container app {MERGED}"


def test_a_merged_container_that_is_not_selected_stays_and_drift_sees_it(tmp_path: Path):
    after, edits, _ = edit(MERGED_POD, containers=("side",))
    assert after == MERGED_POD.replace(f"image: {R}:41\n", f"image: {R}:42\n").replace(
        f"x-base: &c\n  image: {R}:42", f"x-base: &c\n  image: {R}:41") and len(edits) == 1
    (tmp_path / "d.yaml").write_text(after)
    found = drift(tmp_path, [ReleasedImage("app", R, "42", DIGEST)], {"app": (GitOpsFile("d.yaml"),)})
    assert [d.found for d in found] == [f"{R}:41"]  # container app, read through its merge key


def test_a_container_with_its_own_image_beside_a_merge_key_is_edited():
    text = pod(f"  - <<: *c\n    name: app\n    image: {R}:41\n", head="x-base: &c {image: nginx:1, imagePullPolicy: Always}\n")
    assert edit(text)[0] == text.replace(f"{R}:41", f"{R}:42")


def test_helm_keys_from_a_merge_key_are_read_and_never_edited_at_their_source():
    text = f"defaults: &d\n  repository: {R}\n  tag: \"41\"\nimage:\n  <<: *d\n  pullPolicy: Always\n"
    keys = HelmKeys()
    assert find_site(text, path="values.yaml", keys=keys, repository=R).reference() == f"{R}:41"  # not "no key repository"
    with pytest.raises(ConfigError) as err:
        edit_values(text, path="values.yaml", keys=keys, repository=R, tag="42", digest=None, pin_digest=False)
    assert str(err.value) == f"values.yaml:5: `image.tag` {MERGED}"
    assert edit_values(text, path="values.yaml", keys=keys, repository=R, tag="41", digest=None,
                       pin_digest=False) == (text, ())

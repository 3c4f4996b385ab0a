"""Helm values write-back and the other edits issue #13 added: byte-exact, errors with file:line,
newer references kept (pure: text in, text out; compute_change on files in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import compute_change, drift, edit_file
from tests.gitops.values_edit import edit_values
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage, TagOrder

REPO = "127.0.0.1:5000/voting-app/api"
DIGEST = "sha256:" + "ab" * 32
VALUES = """\
# api chart values: the image is written back by buildctl
replicaCount: 2
image:
  repository: 127.0.0.1:5000/voting-app/api   # where the image lives
  pullPolicy: IfNotPresent
  tag: "1.4.0"   # the release
  digest: ''
service: {type: ClusterIP, port: 80}
"""


def test_tag_is_replaced_byte_exact_keeping_comments_and_quotes() -> None:
    after, edits = edit_values(VALUES, path="charts/api/values.yaml", keys=HelmKeys(), repository=REPO,
                               tag="1.5.0", digest=DIGEST, pin_digest=False)
    assert after == VALUES.replace('tag: "1.4.0"', 'tag: "1.5.0"')
    assert edits == (f"helm values image.repository/image.tag: {REPO}:1.4.0 -> {REPO}:1.5.0",)
    # Again: nothing to do.
    assert edit_values(after, path="v.yaml", keys=HelmKeys(), repository=REPO, tag="1.5.0", digest=DIGEST,
                       pin_digest=False) == (after, ())


def test_pinned_without_a_digest_key_writes_tag_at_digest() -> None:
    after, _ = edit_values(VALUES, path="v.yaml", keys=HelmKeys(), repository=REPO, tag="1.5.0", digest=DIGEST,
                           pin_digest=True)
    assert after == VALUES.replace('tag: "1.4.0"', f'tag: "1.5.0@{DIGEST}"')


def test_pinned_with_a_digest_key_and_unpinned_clears_it() -> None:
    keys = HelmKeys(digest="image.digest")
    pinned, _ = edit_values(VALUES, path="v.yaml", keys=keys, repository=REPO, tag="1.5.0", digest=DIGEST,
                            pin_digest=True)
    assert pinned == VALUES.replace('tag: "1.4.0"', 'tag: "1.5.0"').replace("digest: ''", f"digest: '{DIGEST}'")
    unpinned, _ = edit_values(pinned, path="v.yaml", keys=keys, repository=REPO, tag="1.6.0", digest=DIGEST,
                              pin_digest=False)
    assert unpinned == VALUES.replace('tag: "1.4.0"', 'tag: "1.6.0"')


def test_plain_numeric_tag_is_quoted_and_an_empty_value_filled_validly() -> None:
    text = "image:\n  repository:\n  tag: 41\nother:\n  tag:\n"
    after, _ = edit_values(text, path="v.yaml", keys=HelmKeys(repository="image.repository"), repository=REPO,
                           tag="42", digest=None, pin_digest=False)
    assert after == f'image:\n  repository: {REPO}\n  tag: "42"\nother:\n  tag:\n'
    empty, _ = edit_values(text, path="v.yaml", keys=HelmKeys(tag="other.tag"), repository=REPO, tag="7",
                           digest=None, pin_digest=False)
    assert empty.endswith('other:\n  tag: "7"\n')  # `tag:"7"` would be one plain scalar


def test_custom_key_paths_and_crlf() -> None:
    text = f"api:\r\n  image:\r\n    name: {REPO}\r\n    version: v1\r\n"
    after, _ = edit_values(text, path="v.yaml", keys=HelmKeys("api.image.name", "api.image.version"),
                           repository=REPO, tag="v2", digest=None, pin_digest=False)
    assert after == f"api:\r\n  image:\r\n    name: {REPO}\r\n    version: v2\r\n"


@pytest.mark.parametrize(
    ("text", "keys", "message"),
    [
        (VALUES, HelmKeys(tag="image.version"),
         "charts/api/values.yaml:4: no key `version` under `image` (helm key image.version); add it to the values file"),
        (VALUES, HelmKeys(repository="images.api.repository"),
         "charts/api/values.yaml:2: no key `images` at the top level (helm key images.api.repository); add it to the values file"),
        (VALUES, HelmKeys(tag="replicaCount.tag"),
         "charts/api/values.yaml:2: `replicaCount` is not a mapping, so it has no `tag` (for replicaCount.tag)"),
        (VALUES, HelmKeys(tag="image"), "charts/api/values.yaml:4: `image` is a mapping, expected a string"),
        ("image:\n  repository: a\n  tag: x\n  tag: y\n", HelmKeys(),
         "charts/api/values.yaml:4: key `image.tag` appears 2 times"),
        ("a: 1\n---\nb: 2\n", HelmKeys(), "charts/api/values.yaml:3: a Helm values file is one YAML mapping"),
    ],
)
def test_missing_or_ambiguous_keys_are_errors_never_insertions(text: str, keys: HelmKeys, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        edit_values(text, path="charts/api/values.yaml", keys=keys, repository=REPO, tag="2", digest=None,
                    pin_digest=False)
    assert err.value.message == message


def test_a_values_file_without_helm_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text(VALUES)
    release = ReleasedImage("api", REPO, "1.5.0", DIGEST)
    with pytest.raises(ConfigError) as err:
        compute_change(tmp_path, [release], {"api": (GitOpsFile("values.yaml"),)}, pin_digest=False)
    assert err.value.message == "values.yaml:2: not a Kubernetes manifest (a document without `kind`)"
    assert "helm: {}" in (err.value.hint or "")


def test_kustomize_new_tag_mapping_is_an_error_not_a_second_key() -> None:
    text = "resources: [d.yaml]\nimages:\n  - name: x/api\n    newName: 127.0.0.1:5000/voting-app/api\n    newTag:\n      value: '1'\n"
    with pytest.raises(ConfigError) as err:
        edit_file(text, path="k/kustomization.yaml", repository=REPO, new_reference=f"{REPO}:2")
    assert err.value.message == ("k/kustomization.yaml:6: `newTag` of kustomization image x/api is a mapping, "
                                 "expected a string")


def test_newer_references_are_kept_in_every_kind_of_file(tmp_path: Path) -> None:
    files = {
        "charts/api/values.yaml": VALUES.replace("1.4.0", "1.6.0"),
        "k8s/api.yaml": f"kind: Pod\nmetadata: {{name: api}}\nspec:\n  containers:\n    - name: api\n      image: {REPO}:1.6.0\n",
        "k8s/kustomization.yaml": f"resources: [api.yaml]\nimages:\n  - name: {REPO}\n    newTag: 1.6.0\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    targets = {"api": (GitOpsFile("charts/api/values.yaml", helm=HelmKeys()), GitOpsFile("k8s/api.yaml"),
                       GitOpsFile("k8s/kustomization.yaml"))}
    older = ReleasedImage("api", REPO, "1.5.0", DIGEST)
    change, changed = compute_change(tmp_path, [older], targets, pin_digest=True, tag_order=TagOrder.AUTO)
    assert not change.changed and changed == ()
    assert [f.kept for f in change.files] == [
        (f"helm values image.repository/image.tag: keeps {REPO}:1.6.0 (newer than 1.5.0)",),
        (f"Pod/api container api: keeps {REPO}:1.6.0 (newer than 1.5.0)",),
        (f"kustomization image {REPO}: keeps {REPO}:1.6.0 (newer than 1.5.0)",),
    ]
    # With tag_order none the last writer wins, as before.
    change, changed = compute_change(tmp_path, [older], targets, pin_digest=True, tag_order=TagOrder.NONE)
    assert changed == ("api",) and all(f.before != f.after for f in change.files)
    assert change.files[0].after == files["charts/api/values.yaml"].replace('"1.6.0"', f'"1.5.0@{DIGEST}"')
    # A newer release is written; drift of a Helm file is read at its keys.
    newer = ReleasedImage("api", REPO, "1.7.0", DIGEST)
    change, _ = compute_change(tmp_path, [newer], targets, pin_digest=False, tag_order=TagOrder.AUTO)
    assert all(f.before != f.after and not f.kept for f in change.files)
    found = drift(tmp_path, [newer], {"api": targets["api"][:1]})
    assert [d.found for d in found] == [f"{REPO}:1.6.0"]


# --------------------------------------------------------------------------- the repository key


@pytest.mark.parametrize("order", [TagOrder.AUTO, TagOrder.NONE])
def test_values_of_another_repository_are_refused_not_overwritten(tmp_path: Path, order: TagOrder) -> None:
    text = 'image:\n  repository: docker.io/library/nginx\n  tag: "1.25"\n'
    (tmp_path / "values.yaml").write_text(text)
    targets = {"api": (GitOpsFile("values.yaml", helm=HelmKeys()),)}
    release = ReleasedImage("api", REPO, "1.5.0", DIGEST)
    message = (f"values.yaml:2: `image.repository` is docker.io/library/nginx, not the release's repository {REPO}: "
               "these values are another image's")
    for attempt in (lambda: compute_change(tmp_path, [release], targets, pin_digest=False, tag_order=order),
                    lambda: drift(tmp_path, [release], targets)):
        with pytest.raises(ConfigError) as err:
            attempt()
        assert err.value.message == message and "helm:" in (err.value.hint or "")
    assert (tmp_path / "values.yaml").read_text() == text


@pytest.mark.parametrize(("written", "repository"), [
    ("team/api", "docker.io/team/api"), ("docker.io/nginx", "nginx"), ("index.docker.io/library/nginx", "nginx"),
    (REPO, REPO),
])
def test_the_repository_keeps_the_files_spelling(written: str, repository: str) -> None:
    text = f"image:\n  repository: {written}\n  tag: '1'\n"
    after, edits = edit_values(text, path="v.yaml", keys=HelmKeys(), repository=repository, tag="2", digest=None,
                               pin_digest=False)
    assert after == text.replace("'1'", "'2'") and edits == (f"helm values image.repository/image.tag: {written}:1 -> {written}:2",)
    assert edit_values(after, path="v.yaml", keys=HelmKeys(), repository=repository, tag="2", digest=None,
                       pin_digest=False) == (after, ())


@pytest.mark.parametrize(("value", "filled"), [("", f"{REPO}"), (' ""', f'"{REPO}"'), (" null", REPO), (" ~", REPO)])
def test_an_empty_repository_is_filled(value: str, filled: str) -> None:
    text = f"image:\n  repository:{value}\n  tag: '1'\n"
    after, _ = edit_values(text, path="v.yaml", keys=HelmKeys(), repository=REPO, tag="2", digest=None,
                           pin_digest=False)
    assert after == f"image:\n  repository: {filled}\n  tag: '2'\n"

"""buildctl.manifests: exact image edits, the corpus under tests/data/manifests, and errors.

Each ``NAME.in.yaml`` has a hand-written ``NAME.out.yaml``: the input with only the expected
image values changed. Comparisons are on the exact text (read with newline='' so CRLF and a BOM
survive), so any other byte that moves fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops import yaml_nodes as kube_images
from buildctl.gitops.edits import (
    compute_change,
    drift,
    edit_file,
    find_images,
    read_manifest,
    reference_for,
    unified_diff,
)
from buildctl.gitops.results import Drift, FileChange, GitOpsChange
from buildctl.model import GitOpsFile, ReleasedImage

DATA = Path(__file__).parents[1] / "data" / "manifests"
V = "127.0.0.1:5000/voting-app/vote"
NEW = f"{V}:42"
DIGEST = "sha256:" + "ab" * 32
PINNED = f"{NEW}@{DIGEST}"
K = "kustomization.yaml"
AGENT = "registry.example.com:8443/team/agent"


def edit_manifest(text: str, **where) -> tuple[str, tuple[str, ...]]:
    """(new text, edits) of edit_file, leaving out what tag_order kept (nothing here)."""
    return edit_file(text, **where)[:2]

# name, logical path (decides kustomization handling), repository, new reference, containers, edits
CASES = [
    ("deployment-sidecar", "k8s/vote.yaml", V, NEW, (), 1),
    ("init-containers", "k8s/vote.yaml", V, NEW, (), 2),
    ("ephemeral-containers", "k8s/pod.yaml", V, NEW, ("debugger",), 1),
    ("two-documents", "k8s/vote.yaml", V, NEW, (), 2),
    ("quoted-single", "k8s/vote.yaml", V, NEW, (), 1),
    ("quoted-double", "k8s/vote.yaml", V, NEW, ("vote",), 1),
    ("digest-tag-pinned", "k8s/vote.yaml", V, PINNED, (), 1),
    ("digest-only", "k8s/vote.yaml", V, NEW, (), 1),
    ("registry-ports", "k8s/agent.yaml", AGENT, f"{AGENT}:1.1", (), 1),
    ("kustomization", K, V, NEW, (), 3),
    ("kustomization-insert", K, V, PINNED, (), 2),
    ("crlf", "k8s/vote.yaml", V, NEW, (), 1),
    ("cronjob", "k8s/report.yaml", V, NEW, ("report",), 1),
    ("statefulset", "k8s/vote.yaml", V, NEW, (), 1),
    ("dockerhub-names", "k8s/cache.yaml", "redis", "redis:7.2", (), 3),
    ("pod", "k8s/pod.yaml", V, NEW, (), 1),
    ("job-flow", "k8s/job.yaml", V, NEW, ("migrate",), 1),
    ("list", "k8s/list.yaml", V, NEW, (), 1),
    ("bom-no-final-newline", "k8s/vote.yaml", V, NEW, (), 1),
]


def read(name: str) -> str:
    with open(DATA / name, encoding="utf-8", newline="") as fh:
        return fh.read()


def release(service: str = "vote", tag: str = "42", repository: str = V) -> ReleasedImage:
    return ReleasedImage(service, repository, tag, DIGEST)


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    with open(root / path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def test_corpus_has_every_case():
    assert {p.name.split(".")[0] for p in DATA.glob("*.in.yaml")} == {c[0] for c in CASES}


@pytest.mark.parametrize(("name", "path", "repository", "new", "containers", "n_edits"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_corpus(name, path, repository, new, containers, n_edits):
    before, expected = read(f"{name}.in.yaml"), read(f"{name}.out.yaml")
    after, edits = edit_manifest(before, path=path, repository=repository, new_reference=new, containers=containers)
    assert after == expected
    assert len(edits) == n_edits
    # Applying the same release again is a no-op: same text, nothing reported.
    assert edit_manifest(after, path=path, repository=repository, new_reference=new, containers=containers) == (after, ())


@pytest.mark.parametrize(("name", "path", "repository", "new", "containers", "n_edits"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_corpus_same_with_the_pure_python_parser(monkeypatch, name, path, repository, new, containers, n_edits):
    # libyaml (the fast path) and PyYAML's own parser must give byte-identical edits.
    monkeypatch.setattr(kube_images, "_FAST_LOADER", None)
    before, expected = read(f"{name}.in.yaml"), read(f"{name}.out.yaml")
    assert edit_manifest(before, path=path, repository=repository, new_reference=new, containers=containers)[0] == expected


def test_non_ascii_text_is_edited_exactly():
    before = f"# Bereitstellung für die Abstimmung ✓\nkind: Pod\nspec:\n  containers:\n    - name: vote  # «vote» 🗳\n      image: {V}:41\n"
    after, _ = edit_manifest(before, path="p.yaml", repository=V, new_reference=NEW)
    assert after == before.replace(f"{V}:41", NEW)


def test_edit_descriptions_name_the_workload_and_both_references():
    _, edits = edit_manifest(read("init-containers.in.yaml"), path="k8s/vote.yaml", repository=V, new_reference=NEW)
    assert edits == (
        f"Deployment/vote initContainer migrate: {V}:41 -> {NEW}",
        f"Deployment/vote container vote: {V}:41 -> {NEW}",
    )
    _, edits = edit_manifest(read("kustomization.in.yaml"), path=K, repository=V, new_reference=NEW)
    assert edits[1] == f"kustomization image {V}: {V}:41@sha256:{'0' * 64} -> {NEW}"


def test_crlf_and_bom_survive_byte_for_byte():
    after, _ = edit_manifest(read("crlf.in.yaml"), path="x.yaml", repository=V, new_reference=NEW)
    assert after.count("\r\n") == after.count("\n") == 12
    after, _ = edit_manifest(read("bom-no-final-newline.in.yaml"), path="x.yaml", repository=V, new_reference=NEW)
    assert after.startswith("\ufeffapiVersion") and after.endswith(f"image: {NEW}")


def test_a_tag_that_yaml_would_read_as_a_number_is_quoted():
    text = "images:\n- name: vote\n  newName: " + V + "\n  newTag: latest\n"
    after, _ = edit_manifest(text, path=K, repository=V, new_reference=f"{V}:1.10")
    assert after == "images:\n- name: vote\n  newName: " + V + '\n  newTag: "1.10"\n'


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (f"images:\r\n- name: {V}\r\n  newTag: '1'\r\n  digest: {DIGEST}", f"images:\r\n- name: {V}\r\n  newTag: '42'"),
        (f"images:\n- digest: {DIGEST}  # pinned\n  name: {V}\n", f"images:\n- name: {V}\n  newTag: \"42\"\n"),
        (f"images: [{{digest: {DIGEST}, name: {V}}}]\n", f"images: [{{name: {V}, newTag: \"42\"}}]\n"),
    ],
    ids=["last-line-crlf", "first-key-of-item", "flow-first-key"],
)
def test_kustomize_digest_is_removed_when_not_pinning(before, after):
    assert edit_manifest(before, path=K, repository=V, new_reference=NEW)[0] == after


@pytest.mark.parametrize("new", ["redis:7.2", "docker.io/library/redis:7.2"])
def test_docker_hub_spellings_are_kept(monkeypatch, new):
    before = read("dockerhub-names.in.yaml")
    expected = (before.replace("redis:7-alpine", "redis:7.2").replace("docker.io/library/redis:6", "docker.io/library/redis:7.2")
                .replace("index.docker.io/library/redis\n", "index.docker.io/library/redis:7.2\n"))
    for parser in ("libyaml", "pure-python"):
        if parser == "pure-python":
            monkeypatch.setattr(kube_images, "_FAST_LOADER", None)
        after, edits = edit_manifest(before, path="k8s/cache.yaml", repository="redis", new_reference=new)
        assert after == expected and len(edits) == 3
        assert edits[1] == "DaemonSet/cache container long: docker.io/library/redis:6 -> docker.io/library/redis:7.2"
        assert edit_manifest(after, path="k8s/cache.yaml", repository="redis", new_reference=new) == (after, ())


@pytest.mark.parametrize(("written", "after"), [
    ("team/app:41", "team/app:42"), ("docker.io/team/app:41", "docker.io/team/app:42"),
    ("index.docker.io/team/app:41", "index.docker.io/team/app:42"), (f"team/app:41@{DIGEST}", "team/app:42"),
    ("team/app", "team/app:42"), ("team/app:42", "team/app:42"),
    ("Docker.IO/team/app:41", "Docker.IO/team/app:42"),  # a registry host in any letter case
])
def test_a_reference_keeps_the_files_spelling_of_the_repository(tmp_path, written, after):
    # The release names docker.io/team/app; the file's `team/app` is the same repository.
    text = f"kind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: app\n    image: {written}\n"
    write(tmp_path, "a.yaml", text)
    hub = ReleasedImage("app", "docker.io/team/app", "42", DIGEST)
    change, changed = compute_change(tmp_path, [hub], {"app": (GitOpsFile("a.yaml"),)}, pin_digest=False)
    assert change.files[0].after == text.replace(written, after)
    assert changed == (() if written == after else ("app",))  # equal references: no change, no commit
    assert drift(tmp_path, [hub], {"app": (GitOpsFile("a.yaml"),)}) == (
        [] if written == after else [Drift("app", "a.yaml", written)])
    pinned, _ = compute_change(tmp_path, [hub], {"app": (GitOpsFile("a.yaml"),)}, pin_digest=True)
    assert pinned.files[0].after == text.replace(written, f"{after}@{DIGEST}")


def test_an_official_image_keeps_its_short_name():
    text = "kind: Pod\nspec:\n  containers:\n  - {name: cache, image: redis:7}\n"
    after, edits = edit_manifest(text, path="p.yaml", repository="docker.io/library/redis",
                                 new_reference="docker.io/library/redis:8")
    assert after == text.replace("redis:7", "redis:8") and edits == ("Pod/? container cache: redis:7 -> redis:8",)


@pytest.mark.parametrize(("entry", "found"), [
    (f"- name: {V}\n  newName: {V}-other\n  newTag: '41'\n", False),  # deploys vote-other
    (f"- name: vote\n  newName: {V}\n  newTag: '41'\n", True),        # deploys vote
    (f"- name: {V}\n  newTag: '41'\n", True),
    (f"- name: {V}-other\n  newName: index.docker.io/team/x\n", False),
])
def test_a_kustomization_entry_matches_on_the_image_it_produces(entry, found):
    text = "resources: [d.yaml]\nimages:\n" + entry
    if not found:
        with pytest.raises(ConfigError, match=rf"^{K}(:3: no container image of {V} that buildctl edits: the "
                           rf"kustomization has it at images\[0\]\.name, but the entry's newName makes it deploy "
                           rf"{V}-other instead|: no container image of {V} found: the kustomization has no "
                           rf"`images:` entry for it)$"):
            edit_manifest(text, path=K, repository=V, new_reference=NEW)
        return
    assert edit_manifest(text, path=K, repository=V, new_reference=NEW)[0] == text.replace("'41'", "'42'")


def test_an_entry_renamed_to_another_image_stays_beside_the_one_edited():
    text = (f"images:\n- name: {V}\n  newName: {V}-other\n  newTag: '41'\n"
            f"- name: vote\n  newName: {V}\n  newTag: '41'\n")
    after, edits = edit_manifest(text, path=K, repository=V, new_reference=NEW)
    assert after == text[: text.rindex("'41'")] + "'42'\n" and edits == (f"kustomization image vote: {V}:41 -> {NEW}",)


def test_shared_anchor_is_edited_once():
    text = (f"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: !!str &img {V}:41\n"
            "  - name: b\n    image: *img\n")  # fmt: skip
    after, edits = edit_manifest(text, path="p.yaml", repository=V, new_reference=NEW)
    assert after == text.replace(f"{V}:41", NEW)
    assert len(edits) == 2


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Pod\nspec:\n  containers:\n  - name: a\n    image: [unclosed\n",
         "k8s/bad.yaml:6: not valid YAML: while parsing a flow sequence at line 5: expected ',' or ']', but got '<stream end>'"),
        ("kind: Pod\n\tspec: {}\n", "k8s/bad.yaml:2: not valid YAML: found character '\\t' that cannot start any token"),
        ("kind: Pod\nmetadata: {name: a}\nspec: \x07\n", "k8s/bad.yaml:3: not valid YAML: unacceptable character #x0007"),
        ("just: a mapping\n", "k8s/bad.yaml:1: not a Kubernetes manifest (a document without `kind`)"),
        ("kind: Service\n---\n- a\n- list\n", "k8s/bad.yaml:3: not a Kubernetes manifest (a document without `kind`)"),
        (f"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: |\n      {V}:41\n",
         "k8s/bad.yaml:5: cannot replace a block scalar (| or >); write the value on one line"),
    ],
    ids=["unclosed-flow", "tab", "control-char", "no-kind", "sequence-document", "block-scalar"],
)  # fmt: skip
def test_invalid_input_names_file_and_line(text, message):
    with pytest.raises(ConfigError) as err:
        edit_manifest(text, path="k8s/bad.yaml", repository=V, new_reference=NEW)
    assert str(err.value) == message


def test_no_image_of_the_repository_is_an_error():
    text = read("deployment-sidecar.in.yaml")
    with pytest.raises(ConfigError) as err:
        edit_manifest(text, path="k8s/vote.yaml", repository=f"{V}-x", new_reference=f"{V}-x:1")
    assert str(err.value) == f"k8s/vote.yaml: no container image of {V}-x found"


@pytest.mark.parametrize("containers", [("vote", "vot"), ("vot",), ("proxy",)], ids=["typo", "only-typo", "other-repo"])
def test_a_named_container_that_does_not_match_is_an_error(containers):
    text = read("deployment-sidecar.in.yaml")
    with pytest.raises(ConfigError) as err:
        edit_manifest(text, path="k8s/vote.yaml", repository=V, new_reference=NEW, containers=containers)
    missing = ", ".join(c for c in containers if c != "vote")
    assert str(err.value) == f"k8s/vote.yaml: no container named {missing} with an image of {V}"
    assert err.value.hint == "the image is at Deployment/vote container vote (line 12)"


def test_missing_and_escaping_manifest_paths(tmp_path):
    targets = {"vote": (GitOpsFile("k8s/missing.yaml"),)}
    with pytest.raises(ConfigError) as err:
        compute_change(tmp_path, [release()], targets, pin_digest=False)[0]
    assert str(err.value) == "k8s/missing.yaml: manifest file does not exist in the GitOps repository"
    (tmp_path / "repo").mkdir()
    write(tmp_path, "outside.yaml", read("pod.in.yaml"))
    with pytest.raises(ConfigError) as err:
        compute_change(tmp_path / "repo", [release()], {"vote": (GitOpsFile("../outside.yaml"),)}, pin_digest=False)[0]
    assert str(err.value) == "../outside.yaml: manifest path is outside the GitOps repository"


# --------------------------------------------------------------------------- planning


def test_reference_for():
    assert reference_for(release(), pin_digest=False) == NEW
    assert reference_for(release(), pin_digest=True) == PINNED


def test_plan_applies_services_sequentially_to_a_shared_file(tmp_path):
    shared = read("deployment-sidecar.in.yaml")
    write(tmp_path, "k8s/vote.yaml", shared)
    write(tmp_path, "k8s/pod.yaml", read("pod.in.yaml"))
    proxy = release("proxy", "7", "127.0.0.1:5000/voting-app/vote-proxy")
    targets = {
        "vote": (GitOpsFile("k8s/vote.yaml", ("vote",)), GitOpsFile("k8s/pod.yaml")),
        "proxy": (GitOpsFile("k8s/vote.yaml", ("proxy",)),),
        "idle": (GitOpsFile("k8s/idle.yaml"),),  # not released: never read
    }
    change, services = compute_change(tmp_path, [release(), proxy], targets, pin_digest=True)
    assert services == ("vote", "proxy")
    assert [f.path for f in change.files] == ["k8s/vote.yaml", "k8s/pod.yaml"]
    vote_file = change.files[0]
    assert vote_file.before == shared
    assert vote_file.after == shared.replace(f"image: {V}:41   #", f"image: {PINNED}   #").replace(
        "vote-proxy:41", f"vote-proxy:7@{DIGEST}"
    )
    assert len(vote_file.edits) == 2 and vote_file.edits[1].startswith("Deployment/vote container proxy: ")
    # Nothing left to do once the files hold the release: the change is empty.
    for f in change.files:
        write(tmp_path, f.path, f.after)
    again, services = compute_change(tmp_path, [release(), proxy], targets, pin_digest=True)
    assert not again.changed and services == () and all(f.edits == () for f in again.files)


def test_unified_diff_marks_a_missing_final_newline():
    change = GitOpsChange((FileChange("a.yaml", "x: 1\nimage: old", "x: 1\nimage: new", ("e",)),))
    assert unified_diff(change) == (
        "--- a/a.yaml\n+++ b/a.yaml\n@@ -1,2 +1,2 @@\n x: 1\n-image: old\n"
        "\\ No newline at end of file\n+image: new\n\\ No newline at end of file\n"
    )
    assert unified_diff(GitOpsChange((FileChange("a.yaml", "x\n", "x\n", ()),))) == ""


def test_drift_reports_images_not_on_the_release(tmp_path):
    write(tmp_path, "k8s/vote.yaml", read("init-containers.out.yaml"))  # both at :42
    write(tmp_path, "k8s/pinned.yaml", read("digest-tag-pinned.in.yaml"))  # :41@old digest
    write(tmp_path, K, read("kustomization-insert.out.yaml"))  # :42@DIGEST
    targets = {"vote": (GitOpsFile("k8s/vote.yaml"), GitOpsFile("k8s/pinned.yaml"), GitOpsFile(K))}
    assert drift(tmp_path, [release()], targets) == [
        Drift("vote", "k8s/pinned.yaml", f"{V}:41@sha256:{'0' * 64}"),
    ]
    assert drift(tmp_path, [release(tag="43")], {"vote": (GitOpsFile("k8s/vote.yaml", ("vote",)),)}) == [
        Drift("vote", "k8s/vote.yaml", NEW),
    ]


def test_find_images_ignores_comments_env_values_and_configmaps():
    text = read("deployment-sidecar.in.yaml") + "---\n" + read("list.in.yaml")
    sites = find_images(text, path="x.yaml", repository=V)
    assert [s.where for s in sites] == ["Deployment/vote container vote", "Deployment/vote container vote"]


@pytest.mark.parametrize("parser", ["libyaml", "pure-python"])
@pytest.mark.parametrize("tail", ["\n", "  # é\n"], ids=["ascii", "non-ascii"])
def test_a_file_nested_past_the_bound_is_one_clear_error(monkeypatch, tmp_path, tail, parser):
    # A GitOps file is outside input: deep nesting is refused with file:line, never a RecursionError.
    if parser == "pure-python":
        monkeypatch.setattr(kube_images, "_FAST_LOADER", None)
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "pod.yaml").write_text(f"kind: Pod\nspec: {'[' * 3000}{']' * 3000}{tail}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^k8s/pod.yaml:2: nested deeper than 64 levels$"):
        read_manifest(tmp_path, "k8s/pod.yaml")

"""The check before pushing (render_check.py) with the real kustomize, and publish() against real
git remotes: a broken kustomization aborts with nothing pushed; an older release racing a newer
one never overwrites it, also on the fetch-and-retry path."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from buildctl.errors import OperationError
from buildctl.gitops.kustomize import build, build_command
from buildctl.gitops.publish import publish
from buildctl.gitops import render_check
from buildctl.gitops.render_check import check
from buildctl.gitops.yaml_nodes import compose_documents
from buildctl.gitops.results import FileChange, GitOpsChange
from buildctl.model import GitOpsConfig, GitOpsFile, HelmKeys, ReleasedImage, TagOrder
from tests.helpers.gitops import REG, git, log, make_remote, show
from tests.helpers.tools import need

API = f"{REG}/api"
DIGEST = "sha256:" + "ab" * 32


def pod(tag: str) -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{name: api}}\nspec:\n  containers:\n    - name: api\n      image: {API}:{tag}\n"


KUSTOMIZATION = f"resources: [api.yaml]\nimages:\n  - name: {API}\n    newTag: 1.4.0\n"
VALUES = f"image:\n  repository: {API}\n  tag: 1.4.0  # chart default\n"
FILES = {"k8s/api.yaml": pod("1.4.0"), "k8s/kustomization.yaml": KUSTOMIZATION, "charts/api/values.yaml": VALUES}
TARGETS = {"api": (GitOpsFile("k8s/api.yaml"), GitOpsFile("k8s/kustomization.yaml"),
                   GitOpsFile("charts/api/values.yaml", helm=HelmKeys()))}


def release(tag: str) -> ReleasedImage:
    return ReleasedImage("api", API, tag, DIGEST)


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_parse_check_refuses_changed_kinds_and_new_duplicate_keys(tmp_path: Path) -> None:
    dup = KUSTOMIZATION + "    newTag: 1.5.0\n"
    with pytest.raises(OperationError) as err:
        check(tmp_path, GitOpsChange((FileChange("k/kustomization.yaml", KUSTOMIZATION, dup, ()),)))
    assert err.value.message == ("k/kustomization.yaml:5: the edit would leave key `images.0.newTag` twice in one "
                                 "mapping (a buildctl bug)")
    assert "nothing was pushed" in (err.value.hint or "")
    with pytest.raises(OperationError) as err:
        check(tmp_path, GitOpsChange((FileChange("a.yaml", pod("1"), pod("1").replace("kind: Pod", "kind: Job"), ()),)))
    assert err.value.message == "a.yaml: the edit changed the documents from ['Pod'] to ['Job'] (a buildctl bug)"
    # A duplicate the file already had is the user's, not the edit's: not refused here.
    ok = check(tmp_path, GitOpsChange((FileChange("b.yaml", dup, dup.replace("1.5.0", "1.6.0"), ()),)))
    assert ok == ("1 edited file(s) parse into the same 1 document(s) and kinds, no key twice",)


def test_the_outline_the_edit_recorded_is_the_one_checked(tmp_path: Path) -> None:
    # edits.py records the outline of every text it composed (render_check.remember): the check
    # then reads it instead of composing again, and must still refuse what it refused above.
    kustomization = KUSTOMIZATION.replace("resources:", "kind: Kustomization\nresources:")
    dup = kustomization + "    newTag: 1.5.0\n"
    job = pod("2").replace("kind: Pod", "kind: Job")
    for text in (kustomization, dup, job, pod("2")):
        render_check.remember(text, compose_documents(text, path="x.yaml"))
    with pytest.raises(OperationError, match=r"^k/kustomization.yaml:6: the edit would leave key `images.0.newTag`"):
        check(tmp_path, GitOpsChange((FileChange("k/kustomization.yaml", kustomization, dup, ()),)))
    with pytest.raises(OperationError, match=r"from \['Pod'\] to \['Job'\]"):
        check(tmp_path, GitOpsChange((FileChange("a.yaml", pod("2"), job, ()),)))


def test_kustomize_build_runs_on_touched_directories(tmp_path: Path) -> None:
    need("kustomize")
    write(tmp_path, {**FILES, "k8s/kustomization.yaml": KUSTOMIZATION.replace("1.4.0", "1.5.0")})
    change = GitOpsChange((FileChange("k8s/kustomization.yaml", KUSTOMIZATION,
                                      KUSTOMIZATION.replace("1.4.0", "1.5.0"), ()),))
    assert check(tmp_path, change) == ("1 edited file(s) parse into the same 1 document(s) and kinds, no key twice",
                                       "k8s: kustomize build ok")
    (tmp_path / "k8s/kustomization.yaml").write_text(KUSTOMIZATION.replace("api.yaml", "missing.yaml"))
    with pytest.raises(OperationError) as err:
        check(tmp_path, change)
    assert err.value.message.startswith("`kustomize build k8s` fails after the edit: Error: accumulating resources")
    assert "missing.yaml" in err.value.message and str(tmp_path) not in err.value.message


def test_kustomization_broken_by_hand_aborts_with_nothing_pushed(tmp_path: Path) -> None:
    need("kustomize")
    broken = {**FILES, "k8s/kustomization.yaml": KUSTOMIZATION.replace("[api.yaml]", "[api.yaml, gone.yaml]")}
    remote = make_remote(tmp_path, broken)
    before = git("rev-parse", "main", cwd=remote).strip()
    cfg = GitOpsConfig(repo=str(remote), tag_order=TagOrder.AUTO)
    with pytest.raises(OperationError) as err:
        publish(cfg, releases=[release("1.5.0")], targets=TARGETS, dry_run=False, token=None)
    assert "`kustomize build k8s` fails after the edit" in err.value.message and "gone.yaml" in err.value.message
    assert git("rev-parse", "main", cwd=remote).strip() == before
    # The same in a CI checkout (--in-place): the files are put back as they were.
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(remote), str(checkout))
    with pytest.raises(OperationError):
        publish(GitOpsConfig(repo=str(checkout)), releases=[release("1.5.0")], targets=TARGETS, dry_run=False,
                in_place=True, token=None)
    assert git("status", "--porcelain", cwd=checkout) == "" and git("rev-parse", "main", cwd=remote).strip() == before


def test_release_reports_what_it_checked_and_kept(tmp_path: Path) -> None:
    need("kustomize")
    remote = make_remote(tmp_path, {**FILES, "k8s/api.yaml": pod("1.6.0")})
    result = publish(GitOpsConfig(repo=str(remote)), releases=[release("1.5.0")], targets=TARGETS, dry_run=False,
                     token=None)
    assert result.pushed
    assert result.kept == (f"k8s/api.yaml: Pod/api container api: keeps {API}:1.6.0 (newer than 1.5.0)",)
    # charts/api has no kustomization: parsed only; k8s has one: rendered.
    assert result.rendered == ("2 edited file(s) parse into the same 2 document(s) and kinds, no key twice",
                               "k8s: kustomize build ok")
    assert show(remote, "main", "k8s/api.yaml").decode() == pod("1.6.0")
    assert show(remote, "main", "charts/api/values.yaml").decode() == VALUES.replace("1.4.0", "1.5.0")


def test_an_older_release_losing_a_push_race_never_overwrites_the_newer(tmp_path: Path) -> None:
    """The retry path: the older release computed its edit on the old tip, its push is rejected,
    and on the new tip (where the newer release already landed) the references are kept."""
    remote = make_remote(tmp_path, FILES)
    checkout = tmp_path / "checkout"
    git("clone", "--quiet", str(remote), str(checkout))
    newer = publish(GitOpsConfig(repo=str(remote)), releases=[release("1.6.0")], targets=TARGETS, dry_run=False,
                    token=None)
    assert newer.pushed
    older = publish(GitOpsConfig(repo=str(checkout)), releases=[release("1.5.0")], targets=TARGETS, dry_run=False,
                    in_place=True, token=None)
    assert older.attempts == 2 and older.commit is None and not older.pushed
    assert len(older.kept) == 3 and all("newer than 1.5.0" in k for k in older.kept)
    assert git("rev-parse", "main", cwd=remote).strip() == newer.commit
    for path, text in FILES.items():
        assert show(remote, "main", path).decode() == text.replace("1.4.0", "1.6.0")


def test_concurrent_releases_end_on_the_newest_whatever_the_order(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, FILES)
    tags = ["1.5.0", "1.5.1", "1.6.0", "1.5.2", "1.4.1", "1.5.3"]
    start = threading.Barrier(len(tags))

    def one(tag: str):
        start.wait()
        return publish(GitOpsConfig(repo=str(remote)), releases=[release(tag)], targets=TARGETS, dry_run=False,
                       token=None)

    with ThreadPoolExecutor(max_workers=len(tags)) as pool:
        results = list(pool.map(one, tags))
    for path, text in FILES.items():
        assert show(remote, "main", path).decode() == text.replace("1.4.0", "1.6.0"), path
    # Every release that landed moved the references forward: the history never goes back.
    landed = [m.splitlines()[0] for m in reversed(log(remote)) if m.startswith("release")]
    versions = [tuple(map(int, m.split()[1].rstrip(":").split("."))) for m in landed]
    assert versions == sorted(versions) and versions[-1] == (1, 6, 0)
    assert sum(r.pushed for r in results) == len(landed)


HELM_KUSTOMIZATION = (f"resources: [api.yaml]\nimages:\n  - name: {API}\n    newTag: 1.4.0\n"
                      "helmCharts:\n- name: redis\n  repo: oci://registry-1.docker.io/bitnamicharts\n"
                      "  version: 18.19.4\n  releaseName: cache\n")


def only_kustomize_on_path(tmp_path: Path, monkeypatch) -> None:
    """PATH with kustomize and nothing else: helm is surely missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kustomize").symlink_to(need("kustomize"))
    monkeypatch.setenv("PATH", str(bin_dir))


def test_helm_charts_without_helm_skip_that_directory_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    only_kustomize_on_path(tmp_path, monkeypatch)
    after = HELM_KUSTOMIZATION.replace("1.4.0", "1.5.0")
    write(tmp_path, {"k8s/api.yaml": pod("1.4.0"), "k8s/kustomization.yaml": after,
                     "plain/api.yaml": pod("1.5.0"), "plain/kustomization.yaml": "resources: [api.yaml]\n"})
    change = GitOpsChange((FileChange("k8s/kustomization.yaml", HELM_KUSTOMIZATION, after, ()),
                           FileChange("plain/api.yaml", pod("1.4.0"), pod("1.5.0"), ())))
    assert check(tmp_path, change) == (
        "2 edited file(s) parse into the same 2 document(s) and kinds, no key twice",
        "warning: k8s: kustomize build skipped: its helmCharts need helm, which is not on PATH",
        "plain: kustomize build ok",
    )


def test_render_check_false_runs_no_kustomize_and_says_so(tmp_path: Path) -> None:
    broken = KUSTOMIZATION.replace("api.yaml", "missing.yaml")  # would fail to render
    write(tmp_path, {"k8s/kustomization.yaml": broken})
    change = GitOpsChange((FileChange("k8s/kustomization.yaml", broken, broken.replace("1.4.0", "1.5.0"), ()),))
    assert check(tmp_path, change, render=False)[1] == "kustomize build not run (gitops.render_check: false)"


def test_helm_charts_are_built_with_enable_helm(tmp_path: Path) -> None:
    assert build_command("kustomize", Path("k8s"), enable_helm=True) == ["kustomize", "build", "--enable-helm", "k8s"]
    assert build_command("kustomize", Path("k8s"), enable_helm=False) == ["kustomize", "build", "k8s"]
    need("kustomize")  # the real kustomize takes the flag
    write(tmp_path, {"k8s/api.yaml": pod("1"), "k8s/kustomization.yaml": "resources: [api.yaml]\n"})
    assert build(tmp_path / "k8s", root=tmp_path, enable_helm=True).ok


def test_the_skip_warning_reaches_the_record(tmp_path: Path, monkeypatch) -> None:
    git_bin = need("git")
    remote = make_remote(tmp_path, {"k8s/api.yaml": pod("1.4.0"), "k8s/kustomization.yaml": HELM_KUSTOMIZATION})
    only_kustomize_on_path(tmp_path, monkeypatch)
    (tmp_path / "bin" / "git").symlink_to(git_bin)
    targets = {"api": (GitOpsFile("k8s/kustomization.yaml"),)}
    result = publish(GitOpsConfig(repo=str(remote)), releases=[release("1.5.0")], targets=targets, dry_run=False,
                     token=None)
    assert result.pushed and result.rendered[1].startswith("warning: k8s: kustomize build skipped")

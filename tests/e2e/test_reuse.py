"""Input-addressed releases end to end (issue #20): an unchanged service is reused, not rebuilt —
its new release tag points at the index released before, the gate still runs, GitOps still
commits — and whatever changed its inputs (a file, a commit to its folder, a base image moved)
rebuilds it, and only it."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import BASE_IMAGE, REGISTRY, loaded_modules, run_cli
from tests.helpers.gitops import git
from tests.helpers.project import GOOD, index_digest, make_project, record_of, seed_gitops

pytestmark = pytest.mark.engine


def _project(tmp_path: Path, *, base: str = BASE_IMAGE) -> tuple[Path, str, Path]:
    """Three services (a, b, c) in a git repository, unique image names, c on ``base``, a GitOps remote."""
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, {"a": GOOD, "b": GOOD, "c": GOOD})
    prefix = f"reuse-{uuid.uuid4().hex[:8]}"
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    for name in "abc":
        (deploy / f"{name}.yaml").write_text(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers:\n"
            f"    - name: {name}\n      image: {REGISTRY}/{prefix}/{name}:old\n")
    remote = seed_gitops(tmp_path, deploy)
    text = (root / "services.yaml").read_text().replace("buildctl-e2e/", f"{prefix}/")
    for name in "abc":
        text = text.replace(f"image: {prefix}/{name}\n", f"image: {prefix}/{name}\n    manifests: [deploy/{name}.yaml]\n")
    text = text.replace(f"image: {prefix}/c\n    manifests: [deploy/c.yaml]\n    build_args: {{BASE_IMAGE: {BASE_IMAGE}}}",
                        f"image: {prefix}/c\n    manifests: [deploy/c.yaml]\n    build_args: {{BASE_IMAGE: {base}}}")
    (root / "services.yaml").write_text(f"registry: {REGISTRY}\ngitops: {{repo: {remote}, pin_digest: true}}\n" + text)
    (root / "a" / ".dockerignore").write_text("notes.txt\n")
    (root / "a" / "notes.txt").write_text("not in the image\n")
    git("init", "-q", "-b", "main", str(root))
    _commit(root, "initial")
    return root, prefix, remote


def _commit(root: Path, message: str) -> None:
    git("add", "-A", cwd=root)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, "--allow-empty", cwd=root)


def _release(root: Path, tmp_path: Path, *extra: str, command: str = "build", modules: Path | None = None) -> dict:
    tag = f"t-{uuid.uuid4().hex[:8]}"
    out = tmp_path / f"{tag}.json"
    result = run_cli(command, "--tag", tag, "--record", str(out), *extra, cwd=root, modules=modules)
    assert result.code == 0, result.output
    return {**record_of(out), "stdout": result.stdout}


def _outcomes(record: dict) -> dict[str, str]:
    return {s["name"]: s["outcome"].split(" ")[0] for s in record["services"]}


def test_unchanged_services_are_reused_and_only_what_changed_rebuilds(tmp_path: Path) -> None:
    root, prefix, remote = _project(tmp_path)
    first = _release(root, tmp_path, command="run")
    assert _outcomes(first) == {"a": "built", "b": "built", "c": "built"}
    built = {s["name"]: s["index_digest"] for s in first["services"]}

    # Nothing changed: all reused, the new tag names the very same index, the gate ran, GitOps committed.
    second = _release(root, tmp_path, command="run", modules=tmp_path / "modules")
    assert _outcomes(second) == {"a": "reused", "b": "reused", "c": "reused"}, second["services"]
    # Nothing to build: the docker wrapper was never loaded (~0.4 s of start-up), one `docker info` ran.
    loaded = loaded_modules(tmp_path / "modules")
    assert "buildctl.pipeline.reuse" in loaded and "python_on_whales" not in loaded
    assert second["tool"]["docker_server"] not in ("", "?")
    for svc in second["services"]:
        assert svc["index_digest"] == built[svc["name"]]
        assert index_digest(f"{prefix}/{svc['name']}", second["tag"]) == built[svc["name"]]
        assert svc["verified"] and svc["tagged"] and svc["checks"]
        assert svc["outcome"] == f"reused (inputs {svc['inputs']}, from buildctl-inputs-v1-{svc['inputs'][7:]})"
    assert second["gate"] == "passed" and second["gitops"]["commit"]
    pinned = git("--git-dir", str(remote), "show", "main:deploy/a.yaml")
    assert f"{prefix}/a:{second['tag']}" in pinned

    # A commit to b/ rebuilds b only. A commit to a file .dockerignore leaves out moves neither a's
    # input digest nor its SOURCE_DATE_EPOCH (pipeline/source_dates.py): a stays reused.
    (root / "b" / "app.py").write_text("print('b, edited')\n")
    _commit(root, "b: edit")
    (root / "a" / "notes.txt").write_text("edited\n")
    _commit(root, "a: notes")
    third = _release(root, tmp_path)
    assert _outcomes(third) == {"a": "reused", "b": "built", "c": "reused"}, third["services"]
    b = next(s for s in third["services"] if s["name"] == "b")
    assert b["why_built"] == "no index released with these inputs" and b["index_digest"] != built["b"]

    # A file's mode and a symlink: each changes the key of its service.
    (root / "c" / "app.py").chmod(0o755)
    (root / "a" / "link").symlink_to("app.py")
    fourth = _release(root, tmp_path)
    assert _outcomes(fourth) == {"a": "built", "b": "reused", "c": "built"}, fourth["services"]

    # --rebuild builds everything, unchanged or not.
    assert _outcomes(_release(root, tmp_path, "--rebuild")) == {"a": "built", "b": "built", "c": "built"}


def test_a_moved_base_rebuilds_its_service_and_a_deleted_index_is_rebuilt_never_dangling(tmp_path: Path) -> None:
    base = f"{REGISTRY}/reuse-base-{uuid.uuid4().hex[:8]}/base:moving"
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", base, BASE_IMAGE], check=True,
                   capture_output=True)
    root, prefix, _ = _project(tmp_path, base=base)
    first = _release(root, tmp_path)
    assert _outcomes(first) == {"a": "built", "b": "built", "c": "built"}
    built_a = next(s for s in first["services"] if s["name"] == "a")

    # The base tag now names another multi-platform image (a's, which has python3 too): c rebuilds
    # and the record names the base that moved, old -> new.
    a_ref = f"{REGISTRY}/{prefix}/a@{built_a['index_digest']}"
    subprocess.run(["docker", "buildx", "imagetools", "create", "--tag", base, a_ref], check=True, capture_output=True)
    moved = _release(root, tmp_path, "--nightly", command="run")
    assert _outcomes(moved) == {"a": "reused", "b": "reused", "c": "built"}, moved["services"]
    c = next(s for s in moved["services"] if s["name"] == "c")
    assert len(c["bases_moved"]) == 2 and all(f"{base} (linux/" in line and " -> " in line for line in c["bases_moved"])
    assert f"  base {c['bases_moved'][0]}" in moved["stdout"] and moved["gitops"]["commit"]

    # The next night nothing moved: everything reused, and no commit.
    quiet = _release(root, tmp_path, "--nightly", command="run")
    assert _outcomes(quiet) == {"a": "reused", "b": "reused", "c": "reused"}, quiet["services"]
    assert quiet["gitops"]["commit"] is None and "no commit" in quiet["gitops"]["message"]

    # b's index deleted behind buildctl's back (its pointer goes with it on this registry): b is
    # built again and its tag resolves.
    b_digest = next(s for s in moved["services"] if s["name"] == "b")["index_digest"]
    response = httpx.delete(f"http://{REGISTRY}/v2/{prefix}/b/manifests/{b_digest}")
    assert response.status_code == 202, response.text
    again = _release(root, tmp_path)
    assert _outcomes(again)["b"] == "built", again["services"]
    b = next(s for s in again["services"] if s["name"] == "b")
    assert index_digest(f"{prefix}/b", again["tag"]) == b["index_digest"] != b_digest
    assert json.loads(json.dumps(b))["verified"]

"""Release correctness on the real stack and real git remotes (issue #13): immutable tags, no
downgrades, Helm values next to manifests and a kustomization, the render check, signing."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import PROJECT, REGISTRY, run_cli
from tests.helpers.gitops import git, make_remote, show
from tests.helpers.project import GOOD, index_digest, make_project, record_of
from tests.helpers.tools import cosign_key_pairs, need

pytestmark = pytest.mark.engine


def pod(repository: str, tag: str) -> str:
    return (f"# {repository}: set by buildctl\napiVersion: v1\nkind: Pod\nmetadata: {{name: api}}\nspec:\n"
            f"  containers:\n    - name: api\n      image: {repository}:{tag}\n")


def project(tmp_path: Path, name: str, files: dict[str, str], manifests: str, *, extra: str = "",
            pin_digest: bool = True) -> tuple[Path, Path]:
    """A one-service project (image buildctl-e2e/NAME) and a bare GitOps remote holding ``files``."""
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, {name: GOOD})
    remote = make_remote(tmp_path, files)
    text = (root / "services.yaml").read_text()
    text = text.replace("services:\n", f"gitops: {{repo: {remote}, pin_digest: {str(pin_digest).lower()}}}\n"
                                       f"{extra}services:\n", 1)
    text = text.replace(f"image: buildctl-e2e/{name}\n", f"image: buildctl-e2e/{name}\n    manifests: {manifests}\n")
    (root / "services.yaml").write_text(text)
    return root, remote


def tip(remote: Path) -> str:
    return git("rev-parse", "main", cwd=remote).strip()


def test_the_same_tag_twice_identical_then_changed_then_retagged(tmp_path: Path) -> None:
    repo = f"{REGISTRY}/buildctl-e2e/rc-same"
    root, remote = project(tmp_path, "rc-same", {"deploy/api.yaml": pod(repo, "old")}, "[deploy/api.yaml]")
    tag = f"rc-{uuid.uuid4().hex[:8]}"
    first = run_cli("run", "--rebuild", "--tag", tag, "--record", "r1.json", "-q", cwd=root)
    assert first.code == 0, first.output
    d1 = record_of(root / "r1.json")["services"][0]["index_digest"]
    assert index_digest("buildctl-e2e/rc-same", tag) == d1
    commit = tip(remote)
    assert f"image: {repo}:{tag}@{d1}" in show(remote, "main", "deploy/api.yaml").decode()

    # The same sources again: the per-platform images are identical, so the tag stays, no commit.
    again = run_cli("run", "--rebuild", "--tag", tag, "--record", "r2.json", cwd=root)
    assert again.code == 0, again.output
    svc = record_of(root / "r2.json")["services"][0]
    assert (svc["release"], svc["index_digest"], svc["previous_index_digest"]) == ("already released, identical", d1, d1)
    assert svc["built_index_digest"] and svc["platforms"] == record_of(root / "r1.json")["services"][0]["platforms"]
    assert index_digest("buildctl-e2e/rc-same", tag) == d1 and tip(remote) == commit
    assert "(already released, identical)" in again.stdout and "already up to date" in again.stdout

    # Changed sources under the same tag: refused before tagging, one clear line, exit 1.
    (root / "rc-same" / "app.py").write_text("print('changed')\n")
    changed = run_cli("run", "--rebuild", "--tag", tag, "--record", "r3.json", cwd=root)
    assert changed.code == 1, changed.output
    errors = [line for line in changed.stderr.splitlines() if line.startswith("buildctl: error:")]
    assert errors == [(f"buildctl: error: {repo}:{tag} (now {d1[:19]}…) already exists with other images; release "
                       "tags are immutable, so nothing was tagged")]
    assert "--retag" in changed.stderr
    r3 = record_of(root / "r3.json")
    assert r3["refused"] and r3["services"][0]["release"] == "refused: the tag holds other images"
    assert not r3["services"][0]["tagged"] and r3["gitops"] is None
    assert index_digest("buildctl-e2e/rc-same", tag) == d1 and tip(remote) == commit

    # --retag moves it deliberately, and the record says so.
    retag = run_cli("run", "--rebuild", "--tag", tag, "--record", "r4.json", "--retag", "-q", cwd=root)
    assert retag.code == 0, retag.output
    svc = record_of(root / "r4.json")["services"][0]
    assert (svc["release"], svc["previous_index_digest"]) == ("re-tagged (--retag)", d1)
    d2 = svc["index_digest"]
    assert d2 != d1 and index_digest("buildctl-e2e/rc-same", tag) == d2
    assert tip(remote) != commit and f"image: {repo}:{tag}@{d2}" in show(remote, "main", "deploy/api.yaml").decode()


VALUES = """\
# api chart: buildctl writes the image back
image:
  repository: {repo}   # registry/path
  pullPolicy: IfNotPresent
  tag: "0.1.0"
ingress: {{enabled: false}}
"""
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - api.yaml
images:
  - name: {repo}
    newTag: "0.1.0"  # pinned by buildctl
"""


def test_chart_values_next_to_plain_manifests_and_a_kustomization(tmp_path: Path) -> None:
    need("kustomize")
    repo = f"{REGISTRY}/buildctl-e2e/rc-chart"
    files = {"charts/api/values.yaml": VALUES.format(repo=repo), "k8s/api.yaml": pod(repo, "0.1.0"),
             "k8s/kustomization.yaml": KUSTOMIZATION.format(repo=repo)}
    manifests = "[{path: charts/api/values.yaml, helm: {}}, k8s/api.yaml, k8s/kustomization.yaml]"
    root, remote = project(tmp_path, "rc-chart", files, manifests)
    tag = f"rc-{uuid.uuid4().hex[:8]}"
    plan = run_cli("plan", "--diff", "--tag", tag, cwd=root)
    assert plan.code == 0, plan.output
    assert f'-  tag: "0.1.0"\n+  tag: "{tag}"' in plan.stdout  # the values file in the preview diff
    result = run_cli("run", "--rebuild", "--tag", tag, "--record", "r.json", "-q", cwd=root)
    assert result.code == 0, result.output
    record = record_of(root / "r.json")
    digest = record["services"][0]["index_digest"]
    assert show(remote, "main", "charts/api/values.yaml").decode() == files["charts/api/values.yaml"].replace(
        '"0.1.0"', f'"{tag}@{digest}"')
    assert show(remote, "main", "k8s/api.yaml").decode() == files["k8s/api.yaml"].replace(
        f"{repo}:0.1.0", f"{repo}:{tag}@{digest}")
    assert show(remote, "main", "k8s/kustomization.yaml").decode() == files["k8s/kustomization.yaml"].replace(
        '"0.1.0"  # pinned by buildctl', f'"{tag}"  # pinned by buildctl\n    digest: {digest}')
    assert "k8s: kustomize build ok" in record["gitops"]["rendered"]


def test_a_kustomization_broken_by_hand_stops_the_release_before_anything_is_pushed(tmp_path: Path) -> None:
    need("kustomize")
    repo = f"{REGISTRY}/buildctl-e2e/rc-broken"
    broken = KUSTOMIZATION.format(repo=repo).replace("  - api.yaml\n", "  - api.yaml\n  - service.yaml\n")
    files = {"k8s/api.yaml": pod(repo, "0.1.0"), "k8s/kustomization.yaml": broken}
    root, remote = project(tmp_path, "rc-broken", files, "[k8s/api.yaml]")
    before = tip(remote)
    tag = f"rc-{uuid.uuid4().hex[:8]}"
    result = run_cli("run", "--rebuild", "--tag", tag, cwd=root)
    assert result.code == 1, result.output
    assert "buildctl: error: `kustomize build k8s` fails after the edit" in result.stderr
    assert "service.yaml" in result.stderr and "nothing was pushed" in result.stderr
    assert tip(remote) == before and index_digest("buildctl-e2e/rc-broken", tag) is None


def test_an_older_release_racing_a_newer_one_never_overwrites_it(tmp_path: Path) -> None:
    repo = f"{REGISTRY}/buildctl-e2e/rc-race"
    major = random.randrange(10**5, 10**6)  # semver tags, new for every run of the test
    older, newer = f"{major}.5.0", f"{major}.6.0"
    root, remote = project(tmp_path, "rc-race", {"deploy/api.yaml": pod(repo, f"{major}.0.0")}, "[deploy/api.yaml]")
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "buildctl", "run", "--tag", t, "--record", f"{t}.json", "-q"],
                              cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for t in (older, newer)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    landed = show(remote, "main", "deploy/api.yaml").decode()
    assert f"{repo}:{newer}@" in landed
    # And the older one again, now that the newer is in: kept, reported, exit 0, no commit.
    commit = tip(remote)
    again = run_cli("run", "--rebuild", "--tag", older, "--record", "again.json", cwd=root)
    assert again.code == 0, again.output
    kept = record_of(root / "again.json")["gitops"]["kept"]
    pinned = landed.split("image: ")[1].strip()
    assert kept == [f"deploy/api.yaml: Pod/api container api: keeps {pinned} (newer than {older})"]
    assert "kept  deploy/api.yaml" in again.stdout and tip(remote) == commit


def test_a_signed_release_verifies_with_its_public_key_and_not_with_another(tmp_path: Path) -> None:
    need("cosign")
    keys, other = cosign_key_pairs(tmp_path, "keys", "other")
    root = tmp_path / "p"
    root.mkdir()
    make_project(root, {"rc-signed": GOOD})
    variable = f"RC_SIGN_PW_{uuid.uuid4().hex[:8].upper()}"  # sign.password_env: surely unset here
    text = (root / "services.yaml").read_text()
    (root / "services.yaml").write_text(f"sign: {{key: {keys / 'cosign.key'}, password_env: {variable}}}\n" + text)
    tag = f"rc-{uuid.uuid4().hex[:8]}"
    ref = f"{REGISTRY}/buildctl-e2e/rc-signed:{tag}"

    no_password = run_cli("build", "--rebuild", "--tag", tag, cwd=root)  # refused before building anything
    assert no_password.code == 2, no_password.output
    assert f"sign: needs the key's password in ${variable}" in no_password.stderr
    assert index_digest("buildctl-e2e/rc-signed", tag) is None

    built = run_cli("build", "--rebuild", "--tag", tag, "--record", "r.json", "-q", cwd=root, env={variable: "pw-keys"})
    assert built.code == 0, built.output
    record = record_of(root / "r.json")
    digest = record["services"][0]["index_digest"]
    [signature] = record["signatures"]
    assert signature["signed"] == f"{REGISTRY}/buildctl-e2e/rc-signed@{digest}"
    assert signature["signature"].startswith(f"{REGISTRY}/buildctl-e2e/rc-signed@sha256:")
    assert "pw-keys" not in json.dumps(record) and "pw-keys" not in built.output

    good = run_cli("verify", "--key", str(keys / "cosign.pub"), ref, cwd=root)
    assert good.code == 0, good.output
    assert f"signature  signed by {keys / 'cosign.pub'}" in good.stdout
    bad = run_cli("verify", "--key", str(other / "cosign.pub"), ref, cwd=root)
    assert bad.code == 1, bad.output
    assert "signature  no matching signatures" in bad.stdout
    unsigned = run_cli("verify", "--key", str(keys / "cosign.pub"), f"{REGISTRY}/buildctl/base:bookworm-1", cwd=PROJECT)
    assert unsigned.code == 1 and "no signatures found" in unsigned.stdout

"""The GitOps layouts of issue #19 in one real release: an Argo Rollout found by shape, an Argo CD
Application's helm parameters, a Bitnami-style values file with a split registry, and a
kustomization with helmCharts whose render check is skipped with a warning when helm is missing
(or built with --enable-helm when it is there), on the real stack and a real git remote."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from tests.e2e.test_release_correctness import project
from tests.helpers.cli import REGISTRY, run_cli
from tests.helpers.gitops import show
from tests.helpers.project import record_of
from tests.helpers.tools import need

pytestmark = pytest.mark.engine

ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: api
spec:
  strategy:
    canary:
      steps: [{{setWeight: 20}}, {{pause: {{}}}}]
  template:
    spec:
      containers:
      - name: api
        image: {repo}:0.1.0   # canary
"""
APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: api, namespace: argocd}}
spec:
  source:
    repoURL: https://example.com/charts.git
    path: charts/api
    helm:
      parameters:
      - name: image.repository
        value: {repo}
      - name: image.tag
        value: "0.1.0"
"""
VALUES = """\
image:
  registry: {registry}
  repository: {path}
  tag: 0.1.0
  digest: ""
"""
# A local chart: kustomize inflates it without network when helm is installed.
CHART = {"k8s/charts/cache/Chart.yaml": "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
         "k8s/charts/cache/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cache}\n"}
KUSTOMIZATION = "resources: [rollout.yaml]\nhelmCharts:\n- {name: cache, version: 0.1.0, releaseName: cache}\n"


def test_rollout_application_parameters_and_split_registry_values_in_one_release(tmp_path: Path) -> None:
    need("kustomize")
    repo = f"{REGISTRY}/buildctl-e2e/gl-api"
    files = {"k8s/rollout.yaml": ROLLOUT.format(repo=repo), "k8s/kustomization.yaml": KUSTOMIZATION,
             "apps/api.yaml": APP.format(repo=repo), **CHART,
             "charts/api/values.yaml": VALUES.format(registry=REGISTRY, path="buildctl-e2e/gl-api")}
    manifests = ("[k8s/rollout.yaml, {path: apps/api.yaml, helm: {}}, "
                 "{path: charts/api/values.yaml, helm: {digest: image.digest}}]")
    root, remote = project(tmp_path, "gl-api", files, manifests)
    tag = f"8.{uuid.uuid4().int % 90 + 10}"  # like 8.10: must stay a string
    result = run_cli("run", "--tag", tag, "--record", "r.json", cwd=root)
    assert result.code == 0, result.output
    record = record_of(root / "r.json")
    digest = record["services"][0]["index_digest"]
    assert show(remote, "main", "k8s/rollout.yaml").decode() == files["k8s/rollout.yaml"].replace(
        f"{repo}:0.1.0", f"{repo}:{tag}@{digest}")
    assert show(remote, "main", "apps/api.yaml").decode() == files["apps/api.yaml"].replace(
        'value: "0.1.0"', f'value: "{tag}@{digest}"')
    assert show(remote, "main", "charts/api/values.yaml").decode() == files["charts/api/values.yaml"].replace(
        "tag: 0.1.0", f'tag: "{tag}"').replace('digest: ""', f'digest: "{digest}"')
    rendered = record["gitops"]["rendered"]
    if shutil.which("helm") is None:
        warning = "warning: k8s: kustomize build skipped: its helmCharts need helm, which is not on PATH"
        assert warning in rendered and warning in result.output
    else:
        assert "k8s: kustomize build --enable-helm ok" in rendered

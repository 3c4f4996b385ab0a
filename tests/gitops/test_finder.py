"""finder.not_found and the YAML error for a chart's template listed as a manifest: Helm templates
are YAML only once rendered, and the refusal says to list the chart's values file instead. Shaped like
argo-rollouts' examples/helm-blue-green/templates/rollout.yaml and argocd-example-apps'
helm-guestbook/templates/deployment.yaml."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file

R = "gcr.io/heptio-images/ks-guestbook-demo"

ROLLOUT_TEMPLATE = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: {{ template "helm-guestbook.fullname" . }}
spec:
  replicas: {{ .Values.replicaCount }}
  strategy:
    blueGreen:
      activeService: {{ template "helm-guestbook.fullname" . }}
      previewService: {{ template "helm-guestbook.fullname" . }}-preview
  template:
    spec:
      containers:
        - name: {{ .Chart.Name }}
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          resources:
{{ toYaml .Values.resources | indent 12 }}
"""
# The same template with every action quoted parses: the image is still a template action.
QUOTED_TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "{{ .Release.Name }}-guestbook"
spec:
  template:
    spec:
      containers:
        - name: guestbook
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: "{{ .Values.image.pullPolicy }}"
"""
HINT = ("this looks like a Helm template ({{ ... }}), which is YAML only once Helm renders it: list the chart's "
        "values file with `helm:` keys instead (README: Helm values files)")


def test_a_template_that_is_not_yaml_says_to_list_the_values_file(loader):
    with pytest.raises(ConfigError) as err:
        edit_file(ROLLOUT_TEMPLATE, path="templates/rollout.yaml", repository=R, new_reference=f"{R}:0.2")
    assert str(err.value).startswith("templates/rollout.yaml:10: not valid YAML: ")
    assert err.value.hint == HINT


def test_a_template_that_parses_names_the_template_action(loader):
    with pytest.raises(ConfigError) as err:
        edit_file(QUOTED_TEMPLATE, path="templates/deployment.yaml", repository=R, new_reference=f"{R}:0.2")
    assert str(err.value) == (f"templates/deployment.yaml:10: no container image of {R} found: the image here is a "
                              "Helm template action ({{ .Values.image.repository }}:{{ .Values.image.tag }})")
    assert err.value.hint == HINT


def test_plain_yaml_errors_and_misses_have_no_template_hint():
    with pytest.raises(ConfigError) as err:
        edit_file("kind: Pod\nspec: [\n", path="p.yaml", repository=R, new_reference=f"{R}:0.2")
    assert err.value.hint is None
    with pytest.raises(ConfigError) as err:
        edit_file(QUOTED_TEMPLATE.replace("{{", "{"), path="p.yaml", repository=R, new_reference=f"{R}:0.2")
    assert str(err.value) == f"p.yaml: no container image of {R} found" and err.value.hint is None


# kubernetes/examples web/guestbook/redis-master-deployment.yaml: `redis` is a label and a container name here.
GUESTBOOK_REDIS = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis-master
  labels:
    app: redis
spec:
  selector:
    matchLabels:
      app: redis
      role: master
      tier: backend
  replicas: 1
  template:
    metadata:
      labels:
        app: redis
        role: master
        tier: backend
    spec:
      containers:
      - name: master
        image: registry.k8s.io/redis:e2e  # or just image: redis
"""


def test_a_word_that_also_names_an_official_image_is_not_taken_for_it():
    with pytest.raises(ConfigError) as err:  # one word `redis` is docker.io/library/redis, but a label is no image
        edit_file(GUESTBOOK_REDIS, path="redis-master-deployment.yaml", repository="redis", new_reference="redis:8")
    assert str(err.value) == "redis-master-deployment.yaml: no container image of redis found"
    pod = GUESTBOOK_REDIS.replace("apps/v1\nkind: Deployment", "v1\nkind: Pod").replace("image: registry.k8s.io/redis:e2e",
                                                                           "image: redis")
    with pytest.raises(ConfigError) as err:  # at an `image:` key one word still counts
        edit_file(pod, path="p.yaml", repository="redis", new_reference="redis:8")
    assert str(err.value) == ("p.yaml:23: no container image of redis that buildctl edits: Pod/redis-master has it at "
                              "spec.template.spec.containers[0].image, which is not the `image` of one of its "
                              "containers, initContainers, ephemeralContainers")


# argocd-example-apps' kustomize-guestbook/kustomization.yaml: resources only, no `images:`.
GUESTBOOK_KUSTOMIZATION = """\
namePrefix: kustomize-

resources:
- guestbook-ui-deployment.yaml
- guestbook-ui-svc.yaml
"""


def test_a_kustomization_without_an_images_entry_says_to_add_one():
    gb = "gcr.io/google-samples/gb-frontend"
    with pytest.raises(ConfigError) as err:
        edit_file(GUESTBOOK_KUSTOMIZATION, path="kustomize-guestbook/kustomization.yaml", repository=gb,
                  new_reference=f"{gb}:v6")
    assert str(err.value) == (f"kustomize-guestbook/kustomization.yaml: no container image of {gb} found: the "
                              "kustomization has no `images:` entry for it")
    assert err.value.hint == (f"add one (`- name: {gb}`, as `kustomize edit set image` writes it), or list the "
                              "resource file that holds the image")

"""Pod templates found by shape (Argo Rollout, Knative Service, OpenShift DeploymentConfig, any CRD),
and the error that says where an image was seen when buildctl will not edit there. Files shaped
like the upstream examples (argo-rollouts examples/rollout-canary.yaml, Knative serving's
hello-world service, OpenShift's DeploymentConfig docs)."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file

V = "127.0.0.1:5000/voting-app/vote"

ROLLOUT = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
spec:
  replicas: 5
  strategy:
    canary:
      steps:
      - setWeight: 20
      - pause: {}
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app: rollouts-demo
  template:
    metadata:
      labels:
        app: rollouts-demo
    spec:
      initContainers:
      - name: migrate
        image: "127.0.0.1:5000/voting-app/vote:41"   # schema first
      containers:
      - name: rollouts-demo
        image: 127.0.0.1:5000/voting-app/vote:41
        ports:
        - name: http
          containerPort: 8080
          protocol: TCP
        resources:
          requests:
            memory: 32Mi
            cpu: 5m
"""

KNATIVE = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/min-scale: "1"
    spec:
      containers:
        - image: '127.0.0.1:5000/voting-app/vote:41'
          ports:
            - containerPort: 8080
          env:
            - name: TARGET
              value: "World"
"""

DEPLOYMENT_CONFIG = """\
kind: DeploymentConfig\r
apiVersion: apps.openshift.io/v1\r
metadata:\r
  name: frontend\r
spec:\r
  template:\r
    metadata:\r
      labels:\r
        name: frontend\r
    spec:\r
      containers:\r
        - name: helloworld\r
          image: 127.0.0.1:5000/voting-app/vote:41\r
          ports:\r
            - containerPort: 8080\r
              protocol: TCP\r
  replicas: 5\r
  triggers:\r
    - type: ConfigChange\r
  strategy:\r
    type: Rolling\r
"""

SCHEDULED = """\
apiVersion: batch.example.com/v1
kind: ScheduledReport
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: report, image: "127.0.0.1:5000/voting-app/vote:41"}]
          restartPolicy: OnFailure
"""


@pytest.mark.parametrize(("text", "edits"), [(ROLLOUT, 2), (KNATIVE, 1), (DEPLOYMENT_CONFIG, 1), (SCHEDULED, 1)])
def test_a_pod_template_of_any_kind_is_edited_like_a_deployment(loader, text, edits):
    after, done, _ = edit_file(text, path="k8s/app.yaml", repository=V, new_reference=f"{V}:8.10")
    assert after == text.replace(f"{V}:41", f"{V}:8.10") and len(done) == edits


def test_the_edit_names_the_workload_and_container():
    _, done, _ = edit_file(ROLLOUT, path="k8s/r.yaml", repository=V, new_reference=f"{V}:42", containers=("rollouts-demo",))
    assert done == (f"Rollout/rollouts-demo container rollouts-demo: {V}:41 -> {V}:42",)
    _, done, _ = edit_file(KNATIVE, path="k8s/k.yaml", repository=V, new_reference=f"{V}:42")
    assert done == (f"Service/hello container ?: {V}:41 -> {V}:42",)


WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: hello
spec:
  entrypoint: main
  templates:
  - name: main
    container:
      image: 127.0.0.1:5000/voting-app/vote:41
"""


@pytest.mark.parametrize(("text", "line", "why"), [
    (WORKFLOW, 10, "Workflow/hello has it at spec.templates[0].container.image, outside a pod template (buildctl "
                   "edits the containers of spec.template.spec, spec.jobTemplate.spec.template.spec or template.spec)"),
    (f"kind: Deployment\nmetadata: {{name: web}}\nspec:\n  containers:\n  - {{name: a, image: '{V}:41'}}\n", 5,
     "Deployment/web has it at spec.containers[0].image, but a Deployment runs the containers under "
     "spec.template.spec only"),
    (f"kind: Rollout\nmetadata: {{name: r}}\nspec:\n  template:\n    spec:\n      containers: []\n"
     f"      sidecars: [{{name: s, image: '{V}:41'}}]\n", 7,
     "Rollout/r has it at spec.template.spec.sidecars[0].image, which is not the `image` of one of its "
     "containers, initContainers, ephemeralContainers"),
])
def test_an_image_seen_where_buildctl_does_not_edit_says_where_and_why(text, line, why):
    with pytest.raises(ConfigError) as err:
        edit_file(text, path="k8s/app.yaml", repository=V, new_reference=f"{V}:42")
    assert str(err.value) == f"k8s/app.yaml:{line}: no container image of {V} that buildctl edits: {why}"


def test_an_image_nowhere_is_still_not_found():
    with pytest.raises(ConfigError, match=rf"^k8s/app.yaml: no container image of {V} found$"):
        edit_file(WORKFLOW.replace("vote:41", "other:41"), path="k8s/app.yaml", repository=V, new_reference=f"{V}:42")

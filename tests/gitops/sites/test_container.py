"""Pod templates found by shape (Argo Rollout, Knative Service, OpenShift DeploymentConfig, any CRD),
and the error that says where an image was seen when buildctl will not edit there. Files shaped
like the upstream examples (argo-rollouts examples/rollout-canary.yaml, Knative serving's
hello-world service, OpenShift's DeploymentConfig docs)."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.gitops.sites.container import container_images
from buildctl.gitops.yaml_nodes import compose_documents

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


# --------------------------------------------------------------------------- walking pod specs

POD_SPEC = """\
{indent}containers:
{indent}- name: app
{indent}  image: app:1
{indent}  env: [{{name: image, value: "env:1"}}]
{indent}- name: sidecar
{indent}  image: "side:1"
{indent}initContainers: [{{name: migrate, image: 'init:1'}}]
{indent}ephemeralContainers:
{indent}- {{name: debug, image: debug:1}}
"""
# kind -> its apiVersion (a deprecated group still names the core kind); the keys down to its pod spec
API_VERSIONS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "extensions/v1beta1",
                "ReplicaSet": "apps/v1beta2", "Job": "batch/v1", "CronJob": "batch/v1beta1"}
WORKLOADS = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
DECOY = "  containers: [{name: decoy, image: decoy:1}]\n"


def manifest(kind: str, keys: tuple[str, ...], name: str = "web", *, decoy: bool = True) -> str:
    text = f"apiVersion: {API_VERSIONS.get(kind, 'v1')}\nkind: {kind}\nmetadata:\n  name: {name}\n  annotations: {{image: meta:1}}\n"
    for depth, key in enumerate(keys):
        text += "  " * depth + f"{key}:\n"
        if decoy and depth == 0 and key == "spec" and len(keys) > 1:
            text += DECOY.replace("  ", "  " * (depth + 1), 1)  # a `containers` at the wrong level
    return text + POD_SPEC.format(indent="  " * len(keys))


def images(text: str, path: str = "k8s/x.yaml") -> list[tuple[str, str, str]]:
    return [(c.where, c.container, c.image.value)
            for doc in compose_documents(text, path=path) for c in container_images(doc, path=path)]


@pytest.mark.parametrize("kind", sorted(WORKLOADS))
def test_each_workload_kind_yields_exactly_its_pod_spec_containers(loader, kind):
    assert images(manifest(kind, WORKLOADS[kind])) == [
        (f"{kind}/web container app", "app", "app:1"),
        (f"{kind}/web container sidecar", "sidecar", "side:1"),
        (f"{kind}/web initContainer migrate", "migrate", "init:1"),
        (f"{kind}/web ephemeralContainer debug", "debug", "debug:1"),
    ]


@pytest.mark.parametrize(("kind", "keys"), [
    ("Pod", ("spec", "template", "spec")),            # a Deployment's path in a Pod
    ("Deployment", ("spec",)),                         # a Pod's path in a Deployment
    ("CronJob", ("spec", "template", "spec")),         # a Job's path in a CronJob
    ("Job", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("Service", ("spec",)),
    ("ConfigMap", ("data",)),
    ("Kustomization", ("spec",)),
    ("deployment", ("spec",)),                         # not a core kind, and no pod template
    ("Rollout", ("spec", "template")),                 # a template without a pod spec
])
def test_containers_at_another_kinds_path_are_not_images(kind, keys):
    assert images(manifest(kind, keys, decoy=False)) == []


def test_image_nodes_are_the_scalars_with_their_exact_offsets(loader):
    text = manifest("Deployment", WORKLOADS["Deployment"])
    for doc in compose_documents(text, path="x.yaml"):
        for site in container_images(doc, path="x.yaml"):
            raw = text[site.image.start_mark.index:site.image.end_mark.index]
            assert raw.strip("'\"") == site.image.value


def test_offsets_stay_exact_after_non_ascii_and_a_bom():
    text = "\ufeff# Übersicht 🗳\nkind: Pod\nmetadata: {name: é}\nspec:\n  containers:\n  - name: ü\n    image: 'a/b:1'\n"
    (site,) = [c for d in compose_documents(text, path="x.yaml") for c in container_images(d, path="x.yaml")]
    assert (site.where, text[site.image.start_mark.index:site.image.end_mark.index]) == ("Pod/é container ü", "'a/b:1'")


def test_lists_recurse_and_skip_what_is_not_a_workload():
    text = ("kind: List\nitems:\n- kind: Service\n  spec: {containers: [{name: no, image: no:1}]}\n"
            "- kind: DeploymentList\n  items:\n  - " + manifest("Deployment", WORKLOADS["Deployment"], "inner")
            .replace("\n", "\n    ").rstrip() + "\n")
    assert [w for w, _, _ in images(text)] == [
        "Deployment/inner container app", "Deployment/inner container sidecar",
        "Deployment/inner initContainer migrate", "Deployment/inner ephemeralContainer debug",
    ]
    assert images("kind: List\nitems: {a: b}\n") == images("kind: List\nitems: []\n") == []
    with pytest.raises(ConfigError, match=r"^k8s/x.yaml:3: not a Kubernetes manifest \(a document without `kind`\)"):
        images("kind: List\nitems:\n- just a string\n")


def test_odd_containers_are_named_or_skipped_never_guessed():
    text = ("kind: Pod\nspec:\n  containers:\n  - image: noname:1\n  - {name: 42, image: num:1}\n"
            "  - {name: int, image: 42}\n  - {name: null-image, image: null}\n  - {name: list, image: [a:1]}\n"
            "  - {name: map, image: {ref: a:1}}\n  - not-a-mapping\n  initContainers: {name: x, image: x:1}\n")
    docs = compose_documents(text, path="p.yaml")
    sites = list(container_images(docs[0], path="p.yaml"))
    assert [(s.where, s.image.value) for s in sites] == [
        ("Pod/? container ?", "noname:1"), ("Pod/? container 42", "num:1"),
        ("Pod/? container int", "42"), ("Pod/? container null-image", "null"),
    ]
    # the tag says what the value is: edits skip the int and the null
    assert [s.image.tag.rsplit(":", 1)[1] for s in sites] == ["str", "str", "int", "null"]


def test_a_duplicated_key_reads_as_its_last_value():
    text = "kind: Pod\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: c, image: first:1, image: last:1}\n"
    assert images(text) == [("Pod/a container c", "c", "last:1")]


def test_an_aliased_container_list_yields_the_same_image_node_twice():
    text = ("kind: Pod\nmetadata: {name: a}\nspec:\n  containers: &all\n  - {name: c, image: x:1}\n"
            "  initContainers: *all\n")
    first, second = container_images(compose_documents(text, path="p.yaml")[0], path="p.yaml")
    assert (first.where, second.where) == ("Pod/a container c", "Pod/a initContainer c")
    assert first.image is second.image  # one node: edits dedupe it by offset


@pytest.mark.parametrize("text", ["--- 42\n", "- a\n- b\n", "just a string\n", "apiVersion: v1\n"])
def test_a_document_that_is_not_a_manifest_is_refused(text):
    (doc,) = compose_documents(text, path="k8s/x.yaml")
    with pytest.raises(ConfigError) as err:
        list(container_images(doc, path="k8s/x.yaml"))
    assert str(err.value) == "k8s/x.yaml:1: not a Kubernetes manifest (a document without `kind`)"
    assert "helm: {}" in err.value.hint


def test_a_container_image_from_a_merge_key_is_found_with_that_key():
    text = ("x-base: &c {image: app:1}\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
            "  - <<: *c\n    name: app\n  - name: own\n    <<: *c\n    image: own:1\n")
    app, own = container_images(compose_documents(text, path="p.yaml")[0], path="p.yaml")
    assert (app.where, app.image.value, app.merge.start_mark.line + 1, app.key.start_mark.line + 1) == \
        ("Pod/p container app", "app:1", 6, 1)
    assert (own.image.value, own.merge, own.key.start_mark.line + 1) == ("own:1", None, 10)

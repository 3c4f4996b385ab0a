"""Consistency of the sample GitOps manifests in k8s-specifications/.

These files are the fixture buildctl's manifest editing runs against, so the properties the
release depends on are pinned here: explicit namespaces, the app images and container names,
and the decoys in vote-deployment.yaml that a blanket `image:` rewrite would clobber.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

SPECS = Path(__file__).resolve().parents[2] / "k8s-specifications"
REGISTRY = "127.0.0.1:5000"
APPS = ("vote", "result", "worker")


def documents() -> dict[str, dict]:
    docs = {}
    for path in sorted(SPECS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            (doc,) = yaml.safe_load_all(path.read_text())
            docs[path.name] = doc
    return docs


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"]


def test_kustomization_lists_exactly_the_manifests():
    kustomization = yaml.safe_load((SPECS / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "voting-app"
    assert sorted(kustomization["resources"]) == sorted(documents())


def test_every_object_names_its_namespace():
    # Argo CD without a destination namespace fails with "Namespace for db /v1, Kind=Service
    # is missing" unless each object carries one.
    assert {name: doc["metadata"].get("namespace") for name, doc in documents().items()} == {
        name: "voting-app" for name in documents()
    }


@pytest.mark.parametrize("app", APPS)
def test_app_deployment_runs_its_registry_image(app):
    containers = pod_spec(documents()[f"{app}-deployment.yaml"])["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [
        (app, f"{REGISTRY}/voting-app/{app}:initial")
    ]


def test_vote_deployment_keeps_its_decoys_for_a_blanket_image_rewrite():
    text = (SPECS / "vote-deployment.yaml").read_text()
    init = pod_spec(yaml.safe_load(text))["initContainers"]
    assert [(c["name"], c["image"]) for c in init] == [
        ("wait-for-redis", f"{REGISTRY}/voting-app/toolbox:1.4")
    ]
    # The old release script's `sed "s|image:.*|...|g"` hits comment lines as well as values.
    assert any(re.match(r"\s*#.*image:", line) for line in text.splitlines())


def test_services_route_to_named_ports_of_matching_pods():
    docs = documents()
    for name, service in docs.items():
        if service["kind"] != "Service":
            continue
        deployment = docs[name.replace("-service", "-deployment")]
        template = deployment["spec"]["template"]
        assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items(), name
        port_names = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", ())}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names, name


def test_kustomize_renders_all_objects_into_the_namespace():
    # kustomize itself (scripts/stack.sh installs it; the render check uses it too), not `kubectl
    # kustomize`: kubectl is no Debian package here, and a test that skips without it proves nothing.
    assert shutil.which("kustomize"), "kustomize is missing: run scripts/stack.sh up"
    rendered = subprocess.run(
        ["kustomize", "build", str(SPECS)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    objects = list(yaml.safe_load_all(rendered))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
        [("Deployment", n) for n in ("db", "redis", "result", "vote", "worker")]
        + [("Service", n) for n in ("db", "redis", "result", "vote")]
    )
    assert {o["metadata"]["namespace"] for o in objects} == {"voting-app"}

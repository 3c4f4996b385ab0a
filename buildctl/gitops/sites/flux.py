"""Flux's ``HelmRelease`` as a place of Helm values: its inline ``spec.values`` mapping
(https://fluxcd.io/flux/components/helm/helmreleases/#values), read like a values file; and Flux's
``Kustomization`` resource, whose ``spec.images`` entries are kustomize ``images:`` entries
(https://fluxcd.io/flux/components/kustomize/kustomizations/#images; kustomize_entry.py edits them).

Flux repositories keep a HelmRelease beside its source (``HelmRepository``, ``OCIRepository``) and
namespace in one file (flux2-kustomize-helm-example's ``infrastructure/controllers``), so ``helm:``
keys address ``spec.values`` of the HelmRelease in any document; a key path from the document's root
(``spec.values.image.tag``) keeps working for a file with one document. ``spec.valuesFrom``
(ConfigMaps, Secrets) is not in the file and is not edited.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node

from buildctl.gitops.sites.values_tree import ValuesRoot
from buildctl.gitops.yaml_nodes import api_group, get, get_path, scalar


def is_helm_release(doc: Node) -> bool:
    return isinstance(doc, MappingNode) and scalar(get(doc, "kind")) == "HelmRelease" \
        and api_group(doc) == "helm.toolkit.fluxcd.io"


def is_kustomization(doc: Node) -> bool:
    """Flux's Kustomization resource (v1, v1beta2, v1beta1 alike), not kustomize's kustomization.yaml:
    the two share the kind, and only the apiVersion's group tells them apart."""
    return isinstance(doc, MappingNode) and scalar(get(doc, "kind")) == "Kustomization" \
        and api_group(doc) == "kustomize.toolkit.fluxcd.io"


def owner(doc: Node) -> str:
    return f"{scalar(get(doc, 'kind'))}/{scalar(get_path(doc, 'metadata', 'name')) or '?'}"


def values_roots(doc: Node) -> tuple[ValuesRoot, ...]:
    """``spec.values`` of a HelmRelease, if it is a mapping."""
    values = get_path(doc, "spec", "values")
    return (ValuesRoot(values, "spec.values"),) if isinstance(values, MappingNode) else ()

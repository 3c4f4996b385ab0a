"""Container ``image:`` fields of pod specs, found by the shape of a pod template.

Kubernetes' own workloads keep their pod spec where the API fixes it (a Deployment's at
``spec.template.spec``); containers anywhere else in them are never run, so they are not sites.
A kind is the core one only in its API group (``apps/v1`` Deployment; not Volcano's
``batch.volcano.sh`` Job). Every other kind — an Argo Rollout, a Knative Service, an OpenShift DeploymentConfig, any CRD —
is read by shape: a pod template at ``spec.template``, ``spec.jobTemplate.spec.template`` or
``template`` — or at a ``template`` key deeper, reached through mappings only (KEDA's ScaledJob:
``spec.jobTargetRef.template``) — whose spec has a ``containers`` list is edited like a Deployment's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops.yaml_nodes import api_group, get, get_path, line_of, lookup, repository_of, scalar
from buildctl.gitops.sites import Rewrite, tag_of
from buildctl.gitops.yaml_splice import Splice, replace_scalar
from buildctl.references import parse_reference, written_name

_TEMPLATED = ("spec", "template", "spec")
# The core API's workloads: their pod spec is here and nowhere else.
CORE_POD_SPECS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",), "PodTemplate": ("template", "spec"), "CronJob": ("spec", "jobTemplate", *_TEMPLATED),
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job"), _TEMPLATED),
}
# The API groups that serve each core kind, deprecated ones included (extensions/v1beta1 Deployment): a
# kind is the core one only in its group, as a custom resource may take the name (Volcano's
# batch.volcano.sh Job keeps its pod templates elsewhere). "" is the core group (`apiVersion: v1`).
_CORE_GROUPS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("Pod", "PodTemplate", "ReplicationController"), ("",)),
    **dict.fromkeys(("Deployment", "DaemonSet", "ReplicaSet"), ("apps", "extensions")),
    "StatefulSet": ("apps",), "Job": ("batch",), "CronJob": ("batch",),
}
# Where any other kind keeps a pod template, by shape.
TEMPLATE_SHAPES: tuple[tuple[str, ...], ...] = (_TEMPLATED, ("spec", "jobTemplate", *_TEMPLATED), ("template", "spec"))
CONTAINER_FIELDS = {"containers": "container", "initContainers": "initContainer",
                    "ephemeralContainers": "ephemeralContainer"}


@dataclass(frozen=True)
class ContainerImage:
    """The ``image:`` of one container."""

    where: str  # "Deployment/vote container vote", for messages
    container: str
    image: ScalarNode
    key: Node | None = None  # the `image` key: where an alias of the value is written
    merge: Node | None = None  # the `<<:` key the image came through, if it did

    @property
    def name(self) -> str:
        return self.container

    @property
    def position(self) -> int:
        return self.image.start_mark.index

    def reference(self) -> str | None:
        if self.image.tag != "tag:yaml.org,2002:str":
            return None  # `image: 42`, `image: null`: not a reference
        # strip(): a block scalar (`image: |`) holds its final newline; the reference is still the one
        # written, and replacing it then says why it cannot (yaml_splice), not "no image found".
        return self.image.value.strip()

    def produces(self) -> str | None:
        return repository_of(ref) if (ref := self.reference()) is not None else None

    def current_tag(self) -> str | None:
        return tag_of(self.reference())

    def nodes(self) -> tuple[Node, ...]:
        return (self.image,)

    def rewrite(self, edit: Rewrite, new_reference: str) -> tuple[str, list[Splice]]:
        old = self.reference() or ""
        written = respelled(old, new_reference)
        if written == old:
            return written, []
        edit.sharing.check(self.image, what=f"the image of {self.where.split(' ', 1)[1]}", path=edit.path,
                           key=self.key, merge=self.merge)
        return written, [replace_scalar(edit.text, self.image, written, path=edit.path)]


def respelled(old: str, new_reference: str) -> str:
    """``new_reference`` with the repository as ``old`` writes it when both name one repository:
    ``team/app:41`` -> ``team/app:42``, never ``docker.io/team/app:42``."""
    if repository_of(old) != repository_of(new_reference):
        return new_reference
    new = parse_reference(new_reference)
    return written_name(old) + (f":{new.tag}" if new.tag else "") + (f"@{new.digest}" if new.digest else "")


def core_pod_spec(doc: MappingNode, kind: str) -> tuple[str, ...] | None:
    """The one path of a core workload's pod spec; None for any other kind (read by shape). A document
    without ``apiVersion`` (a fragment, a patch) is taken at its ``kind``: the core kind is the usual one."""
    if kind in CORE_POD_SPECS and (scalar(get(doc, "apiVersion")) is None or api_group(doc) in _CORE_GROUPS[kind]):
        return CORE_POD_SPECS[kind]
    return None


def pod_specs(doc: MappingNode, kind: str) -> Iterator[tuple[tuple[str, ...], Node]]:
    """(path, pod spec) of each pod spec of a document: a core kind's one place, else by shape."""
    if (core := core_pod_spec(doc, kind)) is not None:
        yield core, get_path(doc, *core)
        return
    seen = set()
    for shape in TEMPLATE_SHAPES:
        spec = get_path(doc, *shape)
        if isinstance(get(spec, "containers"), SequenceNode):
            seen.add(id(spec))
            yield shape, spec
    for at, spec in _templates(doc, ()):  # KEDA's ScaledJob: spec.jobTargetRef.template, a TFJob's replica specs
        if id(spec) not in seen:
            yield at, spec


def _templates(node: Node, at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Node]]:
    """Pod templates deeper in a document: a ``template`` mapping whose ``spec.containers`` is a list, reached
    through mappings only. A list of templates (an Argo Experiment's, an AnalysisTemplate's jobs) holds
    alternatives or steps beside the workload, not the workload."""
    if len(at) > 8 or not isinstance(node, MappingNode):
        return
    for key_node, value in node.value:
        key = scalar(key_node)
        if key is None or (not at and key in ("metadata", "status")):
            continue
        if key == "template" and isinstance(get(spec := get(value, "spec"), "containers"), SequenceNode):
            yield (*at, "template", "spec"), spec
        else:
            yield from _templates(value, (*at, key))


def container_images(doc: Node, *, path: str) -> Iterator[ContainerImage]:
    """Every container image of a Kubernetes document (recursing into ``kind: List``)."""
    if not isinstance(doc, MappingNode) or scalar(get(doc, "kind")) is None:
        raise ConfigError(
            "not a Kubernetes manifest (a document without `kind`)", file=path, line=line_of(doc),
            hint="for a Helm values file, give the manifest entry `helm: {}` (README: Helm values)",
        )
    kind = scalar(get(doc, "kind")) or ""
    if kind.endswith("List") and get(doc, "items") is not None:  # List, DeploymentList, ...
        items = get(doc, "items")
        for item in items.value if isinstance(items, SequenceNode) else ():
            yield from container_images(item, path=path)
        return
    owner = f"{kind}/{scalar(get_path(doc, 'metadata', 'name')) or '?'}"
    for _, pod_spec in pod_specs(doc, kind):
        for field, label in CONTAINER_FIELDS.items():
            seq = get(pod_spec, field)
            for item in seq.value if isinstance(seq, SequenceNode) else ():
                slot = lookup(item, "image")
                if slot is not None and isinstance(slot.value, ScalarNode):
                    name = scalar(get(item, "name")) or "?"
                    yield ContainerImage(f"{owner} {label} {name}", name, slot.value, slot.key, slot.merge)


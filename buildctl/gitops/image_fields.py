"""Find the image references in Kubernetes manifests and kustomization files.

Works on PyYAML *node* trees (``yaml.compose_all``), not on loaded Python objects: every node
keeps ``start_mark``/``end_mark`` offsets into the original text, which is what lets
``buildctl.manifests`` splice a new value in without touching any other byte.

Images compare by repository, parsed per the Docker reference grammar (buildctl.references), so
``redis:7-alpine``, ``host:5000/a/b:tag@sha256:...`` and ``a/b@sha256:...`` are told apart
correctly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.references import parse_reference

# --------------------------------------------------------------------------- references


_LEGACY_HUB = "index.docker.io/"


def repository_of(ref: str) -> str | None:
    """The normalised repository (``registry/path``) of ``ref``; None if it is not a reference.

    ``redis:7-alpine`` -> ``docker.io/library/redis``; tag and digest are dropped.
    """
    try:
        name = parse_reference(ref).name
    except ValueError:
        return None
    # distribution/reference's normalize.go maps the legacy Docker Hub host to docker.io.
    return "docker.io/" + name.removeprefix(_LEGACY_HUB) if name.startswith(_LEGACY_HUB) else name


# --------------------------------------------------------------------------- YAML nodes


# libyaml composes ~10x faster (a GitOps repo may hold thousands of manifests). Its mark indexes
# equal Python's string offsets only for ASCII text (a BOM shifts them), so anything else goes to
# the pure-Python loader — as do errors, whose messages the tests pin down.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def compose_documents(text: str, *, path: str) -> list[Node]:
    """Every non-empty document of ``text``, as node trees; ConfigError with file:line if invalid.

    Not cached: keeping 1,000 files' node trees alive makes every garbage collection walk them
    (measured: composing 1,000 manifests 0.18 s -> 0.65 s)."""
    if _FAST_LOADER is not None and text.isascii():
        try:
            docs = list(yaml.compose_all(text, Loader=_FAST_LOADER))
            return [d for d in docs if not (isinstance(d, ScalarNode) and d.tag.endswith(":null"))]
        except yaml.YAMLError:
            pass
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context
        if exc.context and exc.problem and exc.context_mark is not None:
            # "while parsing a flow sequence" names where the unclosed thing started.
            started = exc.context_mark.line + 1
            problem = f"{exc.context}{f' at line {started}' if started != line else ''}: {exc.problem}"
        raise ConfigError(f"not valid YAML: {problem}", file=path, line=line) from None
    except yaml.reader.ReaderError as exc:  # a control character in the file
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"not valid YAML: unacceptable character #x{exc.character:04x}", file=path, line=line) from None
    return [d for d in docs if not (isinstance(d, ScalarNode) and d.tag.endswith(":null"))]


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


def get(node: Node | None, key: str) -> Node | None:
    """The value node of ``key`` in a mapping node (the last one if the key is duplicated)."""
    found = None
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found = value_node
    return found


def get_path(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        node = get(node, key)
    return node


def scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


# --------------------------------------------------------------------------- walkers

# Where each workload kind keeps its pod spec.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
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
_CONTAINER_FIELDS = {
    "containers": "container",
    "initContainers": "initContainer",
    "ephemeralContainers": "ephemeralContainer",
}
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})


@dataclass(frozen=True)
class ContainerImage:
    where: str  # "Deployment/vote container vote", for messages
    container: str
    image: ScalarNode


@dataclass(frozen=True)
class KustomizeImage:
    """One entry of a kustomization's ``images:`` list (fields: name/newName/newTag/digest)."""

    entry: MappingNode

    @property
    def name(self) -> str:
        return scalar(get(self.entry, "name")) or ""

    def field(self, key: str) -> ScalarNode | None:
        node = get(self.entry, key)
        return node if isinstance(node, ScalarNode) else None

    def reference(self) -> str:
        """The image reference kustomize produces from this entry."""
        ref = scalar(self.field("newName")) or self.name
        if tag := scalar(self.field("newTag")):
            ref += f":{tag}"
        if digest := scalar(self.field("digest")):
            ref += f"@{digest}"
        return ref


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
    spec_path = _POD_SPEC_PATHS.get(kind)
    if spec_path is None:
        return  # a Service, ConfigMap, ...: no containers
    pod_spec = get_path(doc, *spec_path)
    owner = f"{kind}/{scalar(get_path(doc, 'metadata', 'name')) or '?'}"
    for field, label in _CONTAINER_FIELDS.items():
        seq = get(pod_spec, field)
        for item in seq.value if isinstance(seq, SequenceNode) else ():
            image = get(item, "image")
            if isinstance(image, ScalarNode):
                name = scalar(get(item, "name")) or "?"
                yield ContainerImage(f"{owner} {label} {name}", name, image)


def kustomize_images(doc: Node, *, path: str) -> Iterator[KustomizeImage]:
    if not isinstance(doc, MappingNode):
        raise ConfigError("not a kustomization (not a mapping)", file=path, line=line_of(doc))
    images = get(doc, "images")
    for entry in images.value if isinstance(images, SequenceNode) else ():
        if isinstance(entry, MappingNode):
            yield KustomizeImage(entry)


def is_kustomization(doc: Node, *, path: str) -> bool:
    return path.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES or scalar(get(doc, "kind")) == "Kustomization"

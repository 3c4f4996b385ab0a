"""Argo CD's own places for an image: an ``Application``'s (or an ``ApplicationSet`` template's)
``source.kustomize.images`` and ``source.helm``, and the ``.argocd-source-<app>.yaml`` files that
Argo CD Image Updater writes beside an app (https://argocd-image-updater.readthedocs.io, git
write-back) with the same two fields at the top level.

``kustomize.images`` entries are strings as ``kustomize edit set image`` takes them
(``[name=]newName[:tag][@digest]``): the part after ``=`` is the image deployed. Helm keys address
``helm.parameters`` by name, else ``helm.valuesObject`` (values_tree.py); ``helm.values`` is a
string of YAML that cannot be edited in place, so a key only there is refused with that reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.gitops.sites import Rewrite, tag_of
from buildctl.gitops.sites.container import respelled
from buildctl.gitops.sites.values_tree import ValuesRoot
from buildctl.gitops.yaml_nodes import get, get_path, repository_of, scalar
from buildctl.gitops.yaml_splice import Splice, replace_scalar
from buildctl.references import written_name

_KINDS = {"Application": ("spec",), "ApplicationSet": ("spec", "template", "spec")}


def is_source_file(path: str) -> bool:
    """``.argocd-source.yaml`` / ``.argocd-source-<app>.yaml``: Image Updater's parameter overrides."""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".argocd-source") and name.endswith((".yaml", ".yml"))


def is_argocd(doc: Node, *, path: str) -> bool:
    return is_source_file(path) or (scalar(get(doc, "kind")) in _KINDS
                                    and (scalar(get(doc, "apiVersion")) or "").startswith("argoproj.io/"))


def sources(doc: Node, *, path: str) -> Iterator[tuple[str, Node]]:
    """(label, source) of each source: ``spec.source``, ``spec.sources[i]``; the file itself for
    an ``.argocd-source`` file."""
    if is_source_file(path):
        yield "", doc
        return
    spec_path = _KINDS.get(scalar(get(doc, "kind")) or "")
    if spec_path is None:
        return
    spec, at = get_path(doc, *spec_path), ".".join(spec_path)
    if isinstance(source := get(spec, "source"), MappingNode):
        yield f"{at}.source", source
    many = get(spec, "sources")
    for i, item in enumerate(many.value if isinstance(many, SequenceNode) else ()):
        if isinstance(item, MappingNode):
            yield f"{at}.sources[{i}]", item


def owner(doc: Node, *, path: str) -> str:
    if is_source_file(path):
        return path.rsplit("/", 1)[-1]
    return f"{scalar(get(doc, 'kind'))}/{scalar(get_path(doc, 'metadata', 'name')) or '?'}"


def helm_roots(doc: Node, *, path: str) -> list[tuple[str, tuple[ValuesRoot, ...], Node | None]]:
    """(label, roots, helm.values string node) of each source with ``helm:``: parameters first (they win)."""
    out = []
    for label, source in sources(doc, path=path):
        helm = get(source, "helm")
        if not isinstance(helm, MappingNode):
            continue
        at = f"{label}.helm".lstrip(".")
        roots = [ValuesRoot(params, f"{at}.parameters", parameters=True)
                 for params in [get(helm, "parameters")] if isinstance(params, SequenceNode)]
        roots += [ValuesRoot(obj, f"{at}.valuesObject") for obj in [get(helm, "valuesObject")]
                  if isinstance(obj, MappingNode)]
        values = get(helm, "values")
        out.append((at, tuple(roots), values if isinstance(values, ScalarNode) and values.value.strip() else None))
    return out


@dataclass(frozen=True)
class KustomizeImageString:
    """One ``kustomize.images`` string of an Application: ``[name=]newName[:tag][@digest]``."""

    where: str  # "Application/guestbook spec.source.kustomize.images[0]"
    node: ScalarNode

    @property
    def _parts(self) -> tuple[str, str]:
        name, eq, image = self.node.value.partition("=")
        return (f"{name}=", image) if eq else ("", name)

    @property
    def name(self) -> str:
        prefix, image = self._parts
        return prefix[:-1] or (written_name(image) if repository_of(image) else image)

    @property
    def position(self) -> int:
        return self.node.start_mark.index

    def reference(self) -> str:
        return self._parts[1]

    def produces(self) -> str | None:
        return repository_of(self.reference())

    def current_tag(self) -> str | None:
        return tag_of(self.reference())

    def nodes(self) -> tuple[Node, ...]:
        return (self.node,)

    def rewrite(self, edit: Rewrite, new_reference: str) -> tuple[str, list[Splice]]:
        prefix, old = self._parts
        written = respelled(old, new_reference)
        if written == old:
            return written, []
        edit.sharing.check(self.node, what=f"`{self.where.split(' ', 1)[1]}`", path=edit.path)
        return written, [replace_scalar(edit.text, self.node, prefix + written, path=edit.path)]


def kustomize_image_strings(doc: Node, *, path: str) -> Iterator[KustomizeImageString]:
    for label, source in sources(doc, path=path):
        images = get_path(source, "kustomize", "images")
        for i, item in enumerate(images.value if isinstance(images, SequenceNode) else ()):
            if isinstance(item, ScalarNode) and item.tag.endswith(":str"):
                yield KustomizeImageString(f"{owner(doc, path=path)} {label}.kustomize.images[{i}]".replace(" .", " "),
                                           item)


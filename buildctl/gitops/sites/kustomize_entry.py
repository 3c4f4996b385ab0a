"""Kustomization ``images:`` entries (name/newName/newTag/digest), and the splices that point one at
a new reference (pure). A Flux ``Kustomization`` resource's ``spec.images`` holds the same entries
(Flux writes them into the kustomization it builds), so they are these sites too.

newName is written only when the repository differs from the entry's name; newTag and digest are
replaced, inserted or removed; a field that is not a string is refused (file:line), never doubled,
as is a change of a field that an alias shares with other values or a `<<:` merge key brings in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops.yaml_nodes import (
    MERGE_TAG,
    api_group,
    get,
    get_path,
    line_of,
    lookup,
    repository_of,
    scalar,
)
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.sites import Rewrite, flux
from buildctl.gitops.yaml_splice import Splice, delete_key, insert_keys, replace_scalar
from buildctl.references import parse_reference, written_name

FIELDS = ("newName", "newTag", "digest")
KUSTOMIZATION_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})
FLUX_IMAGES = ("spec", "images")


@dataclass(frozen=True)
class KustomizeImage:
    """One entry of a kustomization's ``images:`` list (fields: name/newName/newTag/digest)."""

    entry: MappingNode
    owner: str = "kustomization"  # a Flux Kustomization's "Kustomization/<name>"

    @property
    def name(self) -> str:
        return scalar(get(self.entry, "name")) or ""

    @property
    def where(self) -> str:
        return f"{self.owner} image {self.name}"

    @property
    def position(self) -> int:
        return self.entry.start_mark.index

    def field(self, key: str) -> ScalarNode | None:
        node = get(self.entry, key)
        return node if isinstance(node, ScalarNode) else None

    def reference(self) -> str:
        """The image reference kustomize produces from this entry."""
        ref = scalar(self.field("newName")) or self.name
        # kustomize appends tagSuffix to the tag (to the resource's own when there is no newTag)
        if tag := (scalar(self.field("newTag")) or "") + (scalar(self.field("tagSuffix")) or ""):
            ref += f":{tag}"
        if digest := scalar(self.field("digest")):
            ref += f"@{digest}"
        return ref

    def produces(self) -> str | None:
        """The repository of the image the entry produces (newName, else name): `name: x, newName: y` deploys y."""
        new_name = self.field("newName")
        return repository_of(new_name.value if new_name is not None else self.name)

    def current_tag(self) -> str | None:
        return scalar(self.field("newTag"))

    def nodes(self) -> tuple[Node, ...]:
        return (self.entry, *[f for f in map(self.field, FIELDS) if f is not None])

    def rewrite(self, edit: Rewrite, new_reference: str) -> tuple[str, list[Splice]]:
        return new_reference, kustomize_splices(edit.text, self, new_reference, edit.newline, path=edit.path,
                                                sharing=edit.sharing)


def kustomize_images(doc: Node, *, path: str) -> Iterator[KustomizeImage]:
    if not isinstance(doc, MappingNode):
        raise ConfigError("not a kustomization (not a mapping)", file=path, line=line_of(doc))
    at = images_path(doc, path=path) or ("images",)
    owner = flux.owner(doc) if at == FLUX_IMAGES else "kustomization"
    images = get_path(doc, *at)
    for entry in images.value if isinstance(images, SequenceNode) else ():
        if isinstance(entry, MappingNode):
            yield KustomizeImage(entry, owner)


def images_path(doc: Node, *, path: str) -> tuple[str, ...] | None:
    """Where ``doc`` lists kustomize image entries: ``images`` of a kustomization, ``spec.images`` of a
    Flux Kustomization; None for any other document."""
    if flux.is_kustomization(doc):
        return FLUX_IMAGES
    return ("images",) if is_kustomization(doc, path=path) else None


def is_kustomization(doc: Node, *, path: str) -> bool:
    """kustomize's own file: by name, or by kind without an apiVersion or in kustomize.config.k8s.io.
    Flux's Kustomization (a resource applied to a cluster, its images in spec.images) is not one,
    whatever its file is called."""
    if flux.is_kustomization(doc):
        return False
    return path.rsplit("/", 1)[-1] in KUSTOMIZATION_FILES or (
        scalar(get(doc, "kind")) == "Kustomization" and api_group(doc) in ("", "kustomize.config.k8s.io"))


def kustomize_splices(
    text: str, site: KustomizeImage, new_reference: str, newline: str, *, path: str, sharing: Sharing | None = None
) -> list[Splice]:
    new = parse_reference(new_reference)
    sharing = sharing or Sharing("", [])  # no aliases known: only merged fields are refused
    what = site.where
    out: list[Splice] = []
    inserts: list[tuple[str, str]] = []
    removed: list[str] = []

    def change(key: str) -> None:
        slot = lookup(site.entry, key)
        assert slot is not None
        sharing.check(slot.value, what=f"`{key}` of {what}", path=path, key=slot.key, merge=slot.merge)

    for key in FIELDS:
        if (raw := get(site.entry, key)) is not None and not isinstance(raw, ScalarNode):
            # field() sees no scalar and an insert would add a second `newTag:`: kustomize rejects
            # the duplicate key, and Argo CD would show the app as failing.
            raise ConfigError(f"`{key}` of {what} is a "
                              f"{'mapping' if isinstance(raw, MappingNode) else 'list'}, expected a string",
                              file=path, line=line_of(raw))
    for key_node, _ in site.entry.value:  # a field buildctl does not write would change what kustomize deploys
        if isinstance(key_node, ScalarNode) and key_node.tag != MERGE_TAG and key_node.value not in ("name", *FIELDS):
            why = "appends to the tag" if key_node.value == "tagSuffix" else "is not one buildctl writes"
            raise ConfigError(f"`{key_node.value}` of {what} {why}: kustomize would not deploy the release "
                              f"{new_reference} from this entry", file=path, line=line_of(key_node),
                              hint=f"remove `{key_node.value}` from the entry (buildctl writes newName, newTag, digest)")
    new_name = site.field("newName")
    written = written_name(new_reference)  # as the caller spelled it (new.name is the normalised docker.io/library/x)
    if new_name is not None and repository_of(new_name.value) != repository_of(new_reference):
        change("newName")
        out.append(replace_scalar(text, new_name, written, path=path))
    elif new_name is None and repository_of(site.name) != repository_of(new_reference):
        inserts.append(("newName", written))
    for key, value in (("newTag", new.tag), ("digest", new.digest)):
        node = site.field(key)
        if value is None and node is not None:
            change(key)
            out.append(delete_key(text, site.entry, key, path=path))
            removed.append(key)
        elif value is not None and node is None:
            inserts.append((key, value))
        elif value is not None and node is not None and node.value != value:
            change(key)
            out.append(replace_scalar(text, node, value, path=path))
    if inserts:
        sharing.check(site.entry, what=what, path=path)
        out.append(insert_keys(text, site.entry, inserts, newline, removed=tuple(removed)))
    return out

"""The splices that point one kustomization `images:` entry at a new reference (pure).

newName is written only when the repository differs from the entry's name; newTag and digest are
replaced, inserted or removed; a field that is not a string is refused (file:line), never doubled,
as is a change of a field that an alias shares with other values or a `<<:` merge key brings in.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, ScalarNode

from buildctl.errors import ConfigError
from buildctl.gitops.image_fields import (
    KustomizeImage,
    get,
    line_of,
    lookup,
    repository_of,
)
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.yaml_splice import Splice, delete_key, insert_keys, replace_scalar
from buildctl.references import parse_reference, written_name

FIELDS = ("newName", "newTag", "digest")


def kustomize_splices(
    text: str, site: KustomizeImage, new_reference: str, newline: str, *, path: str, sharing: Sharing | None = None
) -> list[Splice]:
    new = parse_reference(new_reference)
    sharing = sharing or Sharing("", [])  # no aliases known: only merged fields are refused
    what = f"kustomization image {site.name}"
    out: list[Splice] = []
    inserts: list[tuple[str, str]] = []

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
        elif value is not None and node is None:
            inserts.append((key, value))
        elif value is not None and node is not None and node.value != value:
            change(key)
            out.append(replace_scalar(text, node, value, path=path))
    if inserts:
        sharing.check(site.entry, what=what, path=path)
        out.append(insert_keys(text, site.entry, inserts, newline))
    return out

"""The splices that point one kustomization `images:` entry at a new reference (pure).

newName is written only when the repository differs from the entry's name; newTag and digest are
replaced, inserted or removed; a field that is not a string is refused (file:line), never doubled.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, ScalarNode

from buildctl.errors import ConfigError
from buildctl.gitops.image_fields import KustomizeImage, get, line_of, repository_of
from buildctl.gitops.yaml_splice import Splice, delete_key, insert_keys, replace_scalar
from buildctl.references import parse_reference


def kustomize_splices(
    text: str, site: KustomizeImage, new_reference: str, newline: str, *, path: str
) -> list[Splice]:
    new = parse_reference(new_reference)
    out: list[Splice] = []
    inserts: list[tuple[str, str]] = []
    new_name = site.field("newName")
    # The repository as the caller spelled it (new.name is the normalised docker.io/library/x).
    written = new_reference.partition("@")[0].removesuffix(f":{new.tag}" if new.tag else "")
    if new_name is not None and repository_of(new_name.value) != new.name:
        out.append(replace_scalar(text, new_name, written, path=path))
    elif new_name is None and repository_of(site.name) != new.name:
        inserts.append(("newName", written))
    for key in ("newName", "newTag", "digest"):
        if (raw := get(site.entry, key)) is not None and not isinstance(raw, ScalarNode):
            # field() sees no scalar and an insert would add a second `newTag:`: kustomize rejects
            # the duplicate key, and Argo CD would show the app as failing.
            raise ConfigError(f"`{key}` of kustomization image {site.name} is a "
                              f"{'mapping' if isinstance(raw, MappingNode) else 'list'}, expected a string",
                              file=path, line=line_of(raw))
    for key, value in (("newTag", new.tag), ("digest", new.digest)):
        node = site.field(key)
        if value is None and node is not None:
            out.append(delete_key(text, site.entry, key, path=path))
        elif value is not None and node is None:
            inserts.append((key, value))
        elif value is not None and node is not None and node.value != value:
            out.append(replace_scalar(text, node, value, path=path))
    if inserts:
        out.append(insert_keys(text, site.entry, inserts, newline))
    return out

"""Image write-back into Helm values files (pure: text in, text out), as Argo CD Image Updater's
and Kargo's Helm write-back do: the repository, tag (and optional digest) at dotted key paths.

Same splicing as the manifest edits (yaml_splice): only the scalars at those keys change, so
comments, quoting and key order survive. A key that is missing is an error at the line of the
mapping that lacks it — inserting one would have to guess where (and at what indentation) the
chart expects it.
"""

from __future__ import annotations

from dataclasses import dataclass

from yaml.nodes import MappingNode, Node, ScalarNode

from buildctl.errors import ConfigError, OperationError
from buildctl.gitops.image_fields import compose_documents, line_of
from buildctl.gitops.yaml_splice import Splice, apply_splices, replace_scalar
from buildctl.model import HelmKeys
from buildctl.references import parse_reference


@dataclass(frozen=True)
class HelmSite:
    """The value nodes of one image in a values file."""

    keys: HelmKeys
    repository: ScalarNode
    tag: ScalarNode
    digest: ScalarNode | None

    def reference(self) -> str:
        ref = f"{self.repository.value}:{self.tag.value}" if self.tag.value else self.repository.value
        return f"{ref}@{self.digest.value}" if self.digest is not None and self.digest.value else ref

    @property
    def current_tag(self) -> str | None:
        return self.tag.value.partition("@")[0] or None


def find_site(text: str, *, path: str, keys: HelmKeys) -> HelmSite:
    docs = compose_documents(text, path=path)
    if len(docs) != 1 or not isinstance(docs[0], MappingNode):
        line = line_of(docs[1]) if len(docs) > 1 else (line_of(docs[0]) if docs else None)
        raise ConfigError("a Helm values file is one YAML mapping", file=path, line=line)
    doc = docs[0]
    digest = _scalar_at(doc, keys.digest, path=path) if keys.digest else None
    return HelmSite(keys, _scalar_at(doc, keys.repository, path=path), _scalar_at(doc, keys.tag, path=path), digest)


def values_for(site: HelmSite, *, repository: str, tag: str, digest: str | None, pin_digest: bool) -> dict[str, str]:
    """What each key must hold: {"repository": ..., "tag": ..., "digest": ...}."""
    pinned = digest if pin_digest and digest else None
    want = {"repository": repository}
    if site.digest is not None:
        want |= {"tag": tag, "digest": pinned or ""}
    else:
        want["tag"] = f"{tag}@{pinned}" if pinned else tag
    return want


def edit_values(text: str, *, path: str, keys: HelmKeys, repository: str, tag: str, digest: str | None,
                pin_digest: bool) -> tuple[str, tuple[str, ...]]:
    """Point the image at ``keys`` to ``repository:tag`` (and the digest, when pinned)."""
    site = find_site(text, path=path, keys=keys)
    want = values_for(site, repository=repository, tag=tag, digest=digest, pin_digest=pin_digest)
    splices: dict[int, Splice] = {}
    for field, value in want.items():
        node = getattr(site, field)
        if node.value != value:
            splices.setdefault(node.start_mark.index, replace_scalar(text, node, value, path=path))
    if not splices:
        return text, ()
    old = site.reference()
    new_text = apply_splices(text, sorted(splices.values(), key=lambda s: (s.start, s.end)))
    check = find_site(new_text, path=path, keys=keys)
    if any(getattr(check, f).value != v for f, v in want.items()):
        raise OperationError(f"{path}: the Helm edit left {check.reference()} (a buildctl bug)")
    new = check.reference()
    try:
        parse_reference(new)
    except ValueError as exc:
        raise ConfigError(f"the values would hold an invalid image reference: {exc}", file=path) from None
    return new_text, (f"helm values {keys.repository}/{keys.tag}: {old} -> {new}",)


def _scalar_at(doc: MappingNode, dotted: str, *, path: str) -> ScalarNode:
    node: Node = doc
    walked: list[str] = []
    for key in dotted.split("."):
        if not isinstance(node, MappingNode):
            raise ConfigError(f"`{'.'.join(walked)}` is not a mapping, so it has no `{key}` (for {dotted})",
                              file=path, line=line_of(node))
        matches = [v for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
        if len(matches) > 1:
            raise ConfigError(f"key `{'.'.join([*walked, key])}` appears {len(matches)} times", file=path,
                              line=line_of(matches[1]))
        if not matches:
            where = f"under `{'.'.join(walked)}`" if walked else "at the top level"
            raise ConfigError(f"no key `{key}` {where} (helm key {dotted}); add it to the values file",
                              file=path, line=line_of(node))
        walked.append(key)
        node = matches[0]
    if not isinstance(node, ScalarNode):
        raise ConfigError(f"`{dotted}` is a {'mapping' if isinstance(node, MappingNode) else 'list'}, "
                          "expected a string", file=path, line=line_of(node))
    return node

"""Image write-back into Helm values files (pure: text in, text out), as Argo CD Image Updater's
and Kargo's Helm write-back do: the repository, tag (and optional digest) at dotted key paths.

Same splicing as the manifest edits (yaml_splice): only the scalars at those keys change, so
comments, quoting and key order survive. A key that is missing is an error at the line of the
mapping that lacks it — inserting one would have to guess where (and at what indentation) the
chart expects it. The repository key must name the release's repository (in any spelling, which is
kept) or be empty: values of another image are refused, never overwritten. A value that an alias
shares, or that a `<<:` merge key brings in, is refused too: changing it would change its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, ScalarNode

from buildctl.errors import ConfigError, OperationError
from buildctl.gitops.image_fields import (
    Slot,
    compose_documents,
    line_of,
    lookup,
    no_documents,
    repository_of,
)
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.tag_order import is_newer
from buildctl.gitops.yaml_splice import Splice, apply_splices, replace_scalar
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage, TagOrder
from buildctl.references import parse_reference


@dataclass(frozen=True)
class HelmSite:
    """The value nodes of one image in a values file."""

    keys: HelmKeys
    repository: ScalarNode
    tag: ScalarNode
    digest: ScalarNode | None
    slots: dict[str, Slot] = field(default_factory=dict)  # "repository"/"tag"/"digest" -> where it stands
    docs: list[Node] = field(default_factory=list)

    def reference(self) -> str:
        ref = f"{self.repository.value}:{self.tag.value}" if self.tag.value else self.repository.value
        return f"{ref}@{self.digest.value}" if self.digest is not None and self.digest.value else ref

    @property
    def current_tag(self) -> str | None:
        return self.tag.value.partition("@")[0] or None


def find_site(text: str, *, path: str, keys: HelmKeys) -> HelmSite:
    docs = compose_documents(text, path=path)
    if not docs:
        raise no_documents(text, path=path, hint="a Helm values file is one YAML mapping")
    if len(docs) != 1 or not isinstance(docs[0], MappingNode):
        raise ConfigError("a Helm values file is one YAML mapping", file=path, line=line_of(docs[min(1, len(docs) - 1)]))
    slots = {f: _slot_at(docs[0], dotted, path=path) for f, dotted in
             (("repository", keys.repository), ("tag", keys.tag), ("digest", keys.digest)) if dotted}
    return HelmSite(keys, slots["repository"].value, slots["tag"].value,
                    slots["digest"].value if "digest" in slots else None, slots, docs)


def release_site(text: str, *, path: str, keys: HelmKeys, repository: str) -> HelmSite:
    """``find_site``, refusing values whose repository key names another repository than ``repository``."""
    site = find_site(text, path=path, keys=keys)
    held = site.repository
    if held.value and not held.tag.endswith(":null") and repository_of(held.value) != repository_of(repository):
        raise ConfigError(f"`{keys.repository}` is {held.value}, not the release's repository {repository}: "
                          "these values are another image's", file=path, line=line_of(held),
                          hint="point the manifest entry's `helm:` keys at this service's image")
    return site


def values_for(site: HelmSite, *, repository: str, tag: str, digest: str | None, pin_digest: bool) -> dict[str, str]:
    """What each key must hold: {"repository": ..., "tag": ..., "digest": ...} (the repository as the
    file spells it, if it names it)."""
    pinned = digest if pin_digest and digest else None
    held = site.repository
    same = held.value and repository_of(held.value) == repository_of(repository)
    want = {"repository": held.value if same else repository}
    if site.digest is not None:
        want |= {"tag": tag, "digest": pinned or ""}
    else:
        want["tag"] = f"{tag}@{pinned}" if pinned else tag
    return want


def edit_values(text: str, *, path: str, keys: HelmKeys, repository: str, tag: str, digest: str | None,
                pin_digest: bool) -> tuple[str, tuple[str, ...]]:
    """Point the image at ``keys`` to ``repository:tag`` (and the digest, when pinned)."""
    site = release_site(text, path=path, keys=keys, repository=repository)
    want = values_for(site, repository=repository, tag=tag, digest=digest, pin_digest=pin_digest)
    sharing = Sharing(text, site.docs)
    splices: dict[int, Splice] = {}
    for name, value in want.items():
        node = getattr(site, name)
        if node.value != value:
            slot = site.slots[name]
            dotted = getattr(keys, name)
            sharing.check(node, what=f"`{dotted}`", path=path, key=slot.key, merge=slot.merge)
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


def edit_for_release(text: str, target: GitOpsFile, release: ReleasedImage, *, pin_digest: bool,
                     tag_order: TagOrder) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(new text, edits, kept): the values at ``target.helm`` pointed at ``release``, unless they hold
    a newer tag by ``tag_order``."""
    assert target.helm is not None
    site = release_site(text, path=target.path, keys=target.helm, repository=release.repository)
    if is_newer(site.current_tag, release.tag, tag_order):
        return text, (), (f"helm values {target.helm.tag}: keeps {site.reference()} (newer than {release.tag})",)
    new_text, done = edit_values(text, path=target.path, keys=target.helm, repository=release.repository,
                                 tag=release.tag, digest=release.digest or None, pin_digest=pin_digest)
    return new_text, done, ()


def _slot_at(doc: MappingNode, dotted: str, *, path: str) -> Slot:
    node: Node = doc
    walked: list[str] = []
    slot: Slot | None = None
    for key in dotted.split("."):
        if not isinstance(node, MappingNode):
            raise ConfigError(f"`{'.'.join(walked)}` is not a mapping, so it has no `{key}` (for {dotted})",
                              file=path, line=line_of(node))
        matches = [(k, v) for k, v in node.value if isinstance(k, ScalarNode) and k.value == key]
        if len(matches) > 1:
            raise ConfigError(f"key `{'.'.join([*walked, key])}` appears {len(matches)} times", file=path,
                              line=line_of(matches[1][1]))
        slot = Slot(*matches[0]) if matches else lookup(node, key)  # else: from a `<<:` merge, if any
        if slot is None:
            where = f"under `{'.'.join(walked)}`" if walked else "at the top level"
            raise ConfigError(f"no key `{key}` {where} (helm key {dotted}); add it to the values file",
                              file=path, line=line_of(node))
        walked.append(key)
        node = slot.value
    if not isinstance(node, ScalarNode) or slot is None:
        raise ConfigError(f"`{dotted}` is a {'mapping' if isinstance(node, MappingNode) else 'list'}, "
                          "expected a string", file=path, line=line_of(node))
    return slot

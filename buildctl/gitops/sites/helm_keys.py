"""Helm values keys as an image site, as Argo CD Image Updater's and Kargo's Helm write-back do.

Three layouts (model.HelmKeys): split keys (``registry``/``repository``/``tag``/``digest``), one
``image`` value holding ``repo:tag[@digest]``, and a ``prefix`` the chart prints as
``PREFIX/<name>:TAG``. Only the scalars at those keys change, so comments, quoting and key order
survive. A missing key is an error at the line of the mapping that lacks it — inserting one would
have to guess where the chart expects it. Values that name another repository are refused, never
overwritten (a prefix must be the release repository's); an alias or a `<<:` merge key sharing a
value is refused too: changing it would change its source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from yaml.nodes import Node

from buildctl.errors import ConfigError
from buildctl.gitops.sites import Rewrite, tag_of
from buildctl.gitops.sites.container import respelled
from buildctl.gitops.sites.values_tree import ValuesRoot, find_slot, has
from buildctl.gitops.yaml_nodes import Slot, line_of, repository_of
from buildctl.gitops.yaml_splice import Splice, replace_scalar
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage
from buildctl.references import parse_reference, written_name


_FIELDS = ("registry", "repository", "tag", "digest", "image", "prefix")
# Charts that print `@sha256:{{ .Values.image.sha }}` (Grafana, kube-prometheus-stack) keep the digest's
# hex alone; others print the value whole (`@{{ .Values.image.digest }}`: Bitnami, kube-state-metrics).
# A digest key holding 64 hex digits now is of the first kind and keeps that spelling.
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class HelmSite:
    """The value slots of one image in Helm values (a values file, or an Argo CD Application's)."""

    keys: HelmKeys  # with `registry` filled in when it was found beside the repository key
    slots: dict[str, Slot]  # "registry"/"repository"/"tag"/"digest"/"image"/"prefix" -> where it stands
    label: str = "helm values"  # "Application/api helm" in an Application
    suffix: str = ""  # prefix layout: the release repository's `<name>` under the prefix

    def value(self, field: str) -> str:
        node = self.slots.get(field)
        return "" if node is None or node.value.tag.endswith(":null") else node.value.value  # `repository: null`

    @property
    def where(self) -> str:
        k = self.keys
        return f"{self.label} {k.image or '/'.join(x for x in (k.registry, k.prefix or k.repository, k.tag) if x)}"

    @property
    def name(self) -> str:
        return ""

    @property
    def position(self) -> int:
        return min(s.value.start_mark.index for s in self.slots.values())

    def _held(self, values: dict[str, str] | None = None) -> dict[str, str]:
        """What each key holds now, or would hold with ``values`` written."""
        return {f: (values or {}).get(f, self.value(f)) for f in _FIELDS}

    def _name(self, held: dict[str, str] | None = None) -> str:
        held = held or self._held()
        if self.keys.image:
            try:
                return written_name(held["image"])
            except ValueError:  # empty, or not a reference: produces() says so
                return held["image"]
        if self.keys.prefix:
            return f"{held['prefix']}/{self.suffix}"
        return f"{held['registry']}/{held['repository']}" if held["registry"] and held["repository"] \
            else held["repository"]

    def reference(self, held: dict[str, str] | None = None) -> str:
        held = held or self._held()
        if self.keys.image:
            return held["image"]
        ref = f"{self._name(held)}:{held['tag']}" if held["tag"] else self._name(held)
        digest = f"sha256:{held['digest']}" if _HEX_DIGEST.fullmatch(held["digest"]) else held["digest"]
        return f"{ref}@{digest}" if digest else ref

    def produces(self) -> str | None:
        return repository_of(self._name()) if self._name() else None

    def current_tag(self) -> str | None:
        if self.keys.image:
            return tag_of(self.value("image"))
        return self.value("tag").partition("@")[0] or None

    def nodes(self) -> tuple[Node, ...]:
        return tuple(s.value for s in self.slots.values())

    def wanted(self, new_reference: str) -> dict[str, str]:
        """What each key must hold for ``new_reference`` (its repository as the values spell it, if they do)."""
        new = parse_reference(new_reference)
        if self.keys.image:
            return {"image": respelled(self.value("image"), new_reference) if self.value("image") else new_reference}
        if self.keys.prefix:  # one tag for every image under the prefix: no digest can be pinned there
            return {"tag": new.tag or ""}
        want: dict[str, str] = {}
        if self.produces() != repository_of(new_reference):
            want |= {"registry": new.registry, "repository": new.repository} if "registry" in self.slots \
                else {"repository": written_name(new_reference)}
        if "digest" in self.slots:
            hex_only = _HEX_DIGEST.fullmatch(self.value("digest")) and new.digest
            return want | {"tag": new.tag or "", "digest": new.digest.removeprefix("sha256:") if hex_only
                           else new.digest or ""}
        return want | {"tag": f"{new.tag}@{new.digest}" if new.digest else new.tag or ""}

    def _refuse_a_name_with_a_tag(self, path: str) -> None:
        """A repository value holding ``repo:1.0`` or ``repo@sha256:…`` would print ``repo:1.0:1.1`` once the tag
        key is written: said at the repository key, which is what to change."""
        if self.keys.image or self.keys.prefix or not self.value("repository"):
            return
        try:
            held = parse_reference(self._name())
        except ValueError:  # not a reference at all: the check of the written reference says why
            return
        if held.tag or held.digest:
            key = self.keys.repository
            raise ConfigError(f"`{key}` is {self.value('repository')}: the repository value carries "
                              f"{f'a tag ({held.tag})' if held.tag else 'a digest'}", file=path,
                              line=line_of(self.slots["repository"].value),
                              hint=f"write `{key}: {written_name(self.value('repository'))}`: buildctl writes the "
                                   f"release's tag to `{self.keys.tag}`")

    def rewrite(self, edit: Rewrite, new_reference: str) -> tuple[str, list[Splice]]:
        self._refuse_a_name_with_a_tag(edit.path)
        want = self.wanted(new_reference)
        splices = []
        for field, value in want.items():
            slot = self.slots[field]
            if self.value(field) != value:
                edit.sharing.check(slot.value, what=f"`{getattr(self.keys, field)}`", path=edit.path, key=slot.key,
                                   merge=slot.merge)
                splices.append(replace_scalar(edit.text, slot.value, value, path=edit.path))
        written = self.reference(self._held(want))
        try:
            parse_reference(written)
        except ValueError as exc:
            raise ConfigError(f"the values would hold an invalid image reference: {exc}", file=edit.path,
                              line=line_of(self.slots[key_field(self.keys)].value)) from None
        return written, splices


def helm_site(roots: tuple[ValuesRoot, ...], keys: HelmKeys, *, path: str, repository: str,
              label: str = "helm values") -> HelmSite:
    """The site at ``keys`` in ``roots``, refusing values of another repository than ``repository``."""
    if keys.repository and keys.registry is None and not keys.prefix:
        beside = f"{keys.repository.rpartition('.')[0]}.registry".lstrip(".")
        if beside != keys.repository and has(roots, beside, path=path):
            keys = HelmKeys(keys.repository, keys.tag, keys.digest, beside)
    if keys.registry and (overrides := _global_registry(roots, path=path)) is not None:
        if overrides.value.value != parse_reference(repository).registry:
            raise ConfigError(f"`{_GLOBAL_REGISTRY}` is {overrides.value.value}: the chart prints it instead of "
                              f"`{keys.registry}` for every image, and the release is in another registry",
                              file=path, line=line_of(overrides.value),
                              hint=f"empty `{_GLOBAL_REGISTRY}`, or release to the registry it names")
        keys = HelmKeys(keys.repository, keys.tag, keys.digest, _GLOBAL_REGISTRY)  # read, never rewritten: equal
    fields = ("image",) if keys.image else ("prefix", "tag") if keys.prefix else \
        ("registry", "repository", "tag", "digest")
    slots = {f: find_slot(roots, getattr(keys, f), path=path) for f in fields if getattr(keys, f)}
    site = HelmSite(keys, slots, label)
    if keys.prefix:
        return HelmSite(keys, slots, label, _under_prefix(site, repository, path=path))
    if site._name() and site.produces() != repository_of(repository):  # another image, or a template
        key = keys.image or keys.repository
        raise ConfigError(f"`{key}` is {site._name()}, not the release's repository {repository}: "
                          "these values are another image's", file=path, line=line_of(slots[key_field(keys)].value),
                          hint="point the manifest entry's `helm:` keys at this service's image")
    return site


# Bitnami, Grafana and prometheus-community charts print `global.imageRegistry`, when set, instead of
# each image's `registry` (their common `images.image` helper).
_GLOBAL_REGISTRY = "global.imageRegistry"


def _global_registry(roots: tuple[ValuesRoot, ...], *, path: str) -> Slot | None:
    if not has(roots, _GLOBAL_REGISTRY, path=path):
        return None
    slot = find_slot(roots, _GLOBAL_REGISTRY, path=path)
    return slot if slot.value.value and not slot.value.tag.endswith(":null") else None


def key_field(keys: HelmKeys) -> str:
    return "image" if keys.image else "prefix" if keys.prefix else "repository"


def _under_prefix(site: HelmSite, repository: str, *, path: str) -> str:
    """The `<name>` that puts ``repository`` under the prefix, or a refusal: the chart would deploy another image."""
    prefix, want = site.value("prefix"), repository_of(repository)
    parts = (parse_reference(repository).repository if want else repository).split("/")
    for n in range(1, len(parts) + 1):
        if repository_of(f"{prefix}/{'/'.join(parts[-n:])}") == want:
            return "/".join(parts[-n:])
    raise ConfigError(f"`{site.keys.prefix}` is {prefix}, and the release's repository {repository} is not under it: "
                      "the chart would deploy another image", file=path, line=line_of(site.slots["prefix"].value),
                      hint=f"set `{site.keys.prefix}` to the registry path the release is pushed under")



def shared_tag_conflicts(releases: Sequence[ReleasedImage], targets: Mapping[str, tuple[GitOpsFile, ...]]) -> None:
    """Refuse releasing services that share one prefix layout's tag key with different tags, or only some of
    them: the chart prints that one tag for each service services.yaml points at it, so writing it moves every
    one of them, and a service not in the release would deploy a tag never built or verified for it."""
    tags = {r.service: r.tag for r in releases}
    sharing: dict[tuple[str, str], list[str]] = {}
    for service, files in targets.items():
        for f in files:
            if f.helm is not None and f.helm.prefix and f.helm.tag:
                sharing.setdefault((f.path, f.helm.tag), []).append(service)
    for (path, key), services in sharing.items():
        released = [s for s in services if s in tags]
        if not released:
            continue
        if left := [s for s in services if s not in tags]:
            raise ConfigError(f"`{key}` is the one tag of {', '.join(services)} (helm prefix layout), but the "
                              f"release has only {', '.join(released)}: the chart would deploy {', '.join(left)} "
                              f"at {tags[released[0]]}, a tag never released for {'them' if len(left) > 1 else 'it'}",
                              file=path, hint="release every service that shares it, with one tag")
        if len({tags[s] for s in released}) > 1:
            each = ", ".join(f"{s} {tags[s]}" for s in released)
            raise ConfigError(f"`{key}` is the one tag of {', '.join(released)} (helm prefix layout), but they are "
                              f"released with different tags ({each})", file=path,
                              hint="release the services that share it with one tag")

"""The image sites of a GitOps file's documents (sites/), and why an image seen is not one.

A kustomization lists its ``images:`` entries (a Flux Kustomization the same in ``spec.images``), an
Argo CD Application its ``kustomize.images``, any other manifest the containers of its pod specs;
with ``helm:`` keys the file (a values file or an Application's ``helm`` source) has the one site
those keys address. When a file holds the
release's image only in places that are none of these, the error says where it saw it and why it
will not edit there — never just "not found".
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.gitops.sites import ImageSite, argocd, flux
from buildctl.gitops.sites.container import CONTAINER_FIELDS, container_images, core_pod_spec, pod_specs
from buildctl.gitops.sites.helm_keys import HelmSite, helm_site, key_field
from buildctl.gitops.sites.kustomize_entry import images_path, is_kustomization, kustomize_images
from buildctl.gitops.sites.values_tree import ValuesRoot, has
from buildctl.gitops.yaml_nodes import get, get_path, line_of, repository_of, scalar, template_hint
from buildctl.model import HelmKeys


def sites_of(docs: list[Node], *, path: str) -> Iterator[ImageSite]:
    """Every image site of ``docs`` (without ``helm:`` keys), in document order."""
    for doc in docs:
        if images_path(doc, path=path) is not None:
            yield from kustomize_images(doc, path=path)
        elif isinstance(doc, MappingNode) and argocd.is_argocd(doc, path=path):
            yield from argocd.kustomize_image_strings(doc, path=path)
        else:
            yield from container_images(doc, path=path)


def helm_site_of(docs: list[Node], *, path: str, keys: HelmKeys, repository: str) -> HelmSite:
    """The site ``keys`` address: in a values file (one mapping) or in an Argo CD Application's ``helm``."""
    apps = [d for d in docs if isinstance(d, MappingNode) and argocd.is_argocd(d, path=path)]
    want = getattr(keys, key_field(keys)) or ""
    releases = [d for d in docs if flux.is_helm_release(d)]
    if releases and not (len(docs) == 1 and has((ValuesRoot(docs[0], ""),), want, path=path)):
        return _helm_release_site(releases, path=path, keys=keys, repository=repository, want=want)
    if not apps:
        if len(docs) != 1 or not isinstance(docs[0], MappingNode):
            raise ConfigError("a Helm values file is one YAML mapping", file=path,
                              line=line_of(docs[min(1, len(docs) - 1)]))
        return helm_site((ValuesRoot(docs[0], ""),), keys, path=path, repository=repository)
    for doc in apps:
        for label, roots, values in argocd.helm_roots(doc, path=path):
            if has(roots, want, path=path):
                return helm_site(roots, keys, path=path, repository=repository,
                                 label=f"{argocd.owner(doc, path=path)} {label}")
            if values is not None:
                raise ConfigError(f"helm key {want} is not in `{label}.parameters` nor `{label}.valuesObject`, and "
                                  f"`{label}.values` is a string of YAML, which buildctl does not edit inside",
                                  file=path, line=line_of(values),
                                  hint=f"move the image to `{label}.valuesObject` or a `{label}.parameters` entry")
    names = [n for doc in apps for _, roots, _ in argocd.helm_roots(doc, path=path) for root in roots
             if root.parameters for entry in root.node.value if (n := scalar(get(entry, "name")))]
    raise ConfigError(f"no Argo CD helm source here sets {want} (in `helm.parameters` by name or "
                      "`helm.valuesObject`)", file=path, line=line_of(apps[0]),
                      hint=f"its parameters are {', '.join(names[:6])}: name the image's in `helm:` (Image Updater "
                      "writes image.name and image.tag: helm: {repository: image.name, tag: image.tag})" if names
                      else f"list the values file it reads with `helm:` ({', '.join(files[:3])}; `$values/` is the root "
                      "of the source with `ref: values`)" if (files := _value_files(apps, path=path))
                      else "add it there, or list the chart's values file with `helm:` instead")


def _value_files(apps: list[Node], *, path: str) -> list[str]:
    """The ``helm.valueFiles`` of the Applications' sources: where their values come from."""
    lists = [get(get(s, "helm"), "valueFiles") for doc in apps for _, s in argocd.sources(doc, path=path)]
    return [item.value for files in lists if isinstance(files, SequenceNode) for item in files.value
            if isinstance(item, ScalarNode) and item.value]


def _helm_release_site(releases: list[Node], *, path: str, keys: HelmKeys, repository: str, want: str) -> HelmSite:
    """The one Flux HelmRelease of the file whose ``spec.values`` set the release's image at ``keys``."""
    found, refused = [], []
    for doc in releases:
        if has(roots := flux.values_roots(doc), want, path=path):
            try:
                found.append(helm_site(roots, keys, path=path, repository=repository,
                                       label=f"{flux.owner(doc)} spec.values"))
            except ConfigError as exc:  # another HelmRelease of the file: its own image
                refused.append(exc)
    if len(found) > 1:
        raise ConfigError(f"helm key {want} of {repository} is set in {len(found)} HelmReleases' spec.values; "
                          "buildctl edits one", file=path, line=line_of(found[1].slots[key_field(keys)].value),
                          hint="list one HelmRelease per file, or give the others another key")
    if found:
        return found[0]
    if refused:
        raise refused[0]
    raise ConfigError(f"no Flux HelmRelease here sets {want} in `spec.values`", file=path, line=line_of(releases[0]),
                      hint="add it there (a value from spec.valuesFrom is not in this file)")


def not_found(docs: list[Node], *, path: str, repository: str) -> ConfigError:
    """The error for a file without a site of ``repository``: where the image was seen, if it was."""
    want = repository_of(repository)
    for doc in docs:
        for dotted, node in _scalars(doc, ""):
            if node.tag.endswith(":str") and want and _names_an_image(dotted, node.value.strip()) \
                    and repository_of(node.value.strip()) == want:
                return ConfigError(f"no container image of {repository} that buildctl edits: {_owner(doc, path)} "
                                   f"has it at {dotted}, {_why(doc, dotted, path=path)}", file=path,
                                   line=line_of(node))
    templated = [node for doc in docs for dotted, node in _scalars(doc, "")
                 if dotted.endswith("image") and "{{" in node.value]
    if templated:  # a chart's template whose image a values file sets
        return ConfigError(f"no container image of {repository} found: the image here is a Helm template action "
                           f"({templated[0].value.strip()[:80]})", file=path, line=line_of(templated[0]),
                           hint=template_hint(templated[0].value))
    for doc in docs:  # kustomize sets images in `images:` (a Flux Kustomization in `spec.images`) only
        if (at := images_path(doc, path=path)) is not None:
            return ConfigError(f"no container image of {repository} found: {_owner(doc, path)} has no "
                               f"`{'.'.join(at)}:` entry for it", file=path,
                               hint=f"add one (`- name: {repository}`, as `kustomize edit set image` writes it), "
                               "or list the resource file that holds the image")
    return ConfigError(f"no container image of {repository} found", file=path)


# One word parses as a Docker Hub official image (`redis` is docker.io/library/redis), so a label
# `app: redis` would be "seen": a value without `/`, `:` or `@` counts only at a key naming an image.
_IMAGE_KEY = re.compile(r"(?:^|\.)(?:image|repository|newName)$|(?:^|\.)images\[\d+\](?:\.name)?$", re.IGNORECASE)


def _names_an_image(dotted: str, value: str) -> bool:
    return any(c in value for c in "/:@") or _IMAGE_KEY.search(dotted) is not None


def _owner(doc: Node, path: str) -> str:
    if is_kustomization(doc, path=path):
        return "the kustomization"
    return f"{scalar(get(doc, 'kind')) or '?'}/{scalar(get(get(doc, 'metadata'), 'name')) or '?'}"


def _why(doc: Node, dotted: str, *, path: str) -> str:
    if (at := images_path(doc, path=path)) is not None:
        if index := re.fullmatch(rf"{re.escape('.'.join(at))}\[(\d+)\]\.name", dotted):
            entry = get_path(doc, *at).value[int(index[1])]
            return f"but the entry's newName makes it deploy {scalar(get(entry, 'newName'))} instead"
        return f"not in its `{'.'.join(at)}:` list (buildctl edits name/newName/newTag/digest entries there)"
    if argocd.is_argocd(doc, path=path):
        return "not in a source's `kustomize.images` (give the entry `helm:` keys for Helm values)"
    if flux.is_helm_release(doc):
        return "in its Helm values (give the manifest entry `helm:` keys: they address `spec.values`)"
    kind = scalar(get(doc, "kind")) or ""
    specs = [".".join(p) for p, spec in pod_specs(doc, kind)] if isinstance(doc, MappingNode) else []
    fields = ", ".join(CONTAINER_FIELDS)
    for spec in specs:
        if dotted.startswith(f"{spec}."):
            return f"which is not the `image` of one of its {fields}"
    if isinstance(doc, MappingNode) and (core := core_pod_spec(doc, kind)) is not None:
        return f"but a {kind} runs the containers under {'.'.join(core)} only"
    return ("outside a pod template (buildctl edits the containers of spec.template.spec, "
            "spec.jobTemplate.spec.template.spec or template.spec)")


def _scalars(node: Node, at: str, depth: int = 0) -> Iterator[tuple[str, ScalarNode]]:
    if depth > 64:  # an alias cycle
        return
    if isinstance(node, ScalarNode):
        yield at, node
    elif isinstance(node, MappingNode):
        for k, v in node.value:
            yield from _scalars(v, f"{at}.{scalar(k)}".lstrip("."), depth + 1)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _scalars(item, f"{at}[{i}]", depth + 1)

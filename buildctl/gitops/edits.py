"""Exact, minimal edits of image references in GitOps manifests (pure: text in, text out).

The old shell step did ``sed -i "s|image:.*|image: REG/$2:$3|g"``: it rewrote every ``image:``
line — sidecars of other repositories, comments, env values — and lost digests. Here each target
scalar is located in the PyYAML node tree and the new value is spliced into the original text at
that node's offsets, so every other byte (comments, quoting, key order, CRLF, BOM, other documents)
stays as it was. Nothing is ever re-dumped.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path

from yaml.nodes import Node

from buildctl.errors import ConfigError, OperationError
from buildctl.gitops import helm_values
from buildctl.gitops.image_fields import (
    ContainerImage,
    KustomizeImage,
    compose_documents,
    container_images,
    is_kustomization,
    kustomize_images,
    no_documents,
    repository_of,
)
from buildctl.gitops.kustomize_edits import FIELDS, kustomize_splices
from buildctl.gitops.manifest_files import read_manifest
from buildctl.gitops.results import Drift, FileChange, GitOpsChange
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.tag_order import is_newer
from buildctl.gitops.yaml_splice import Splice, apply_splices, replace_scalar
from buildctl.model import GitOpsFile, ReleasedImage, TagOrder
from buildctl.references import ImageReference, parse_reference, written_name

Site = ContainerImage | KustomizeImage


def reference_for(release: ReleasedImage, *, pin_digest: bool) -> str:
    ref = f"{release.repository}:{release.tag}"
    return f"{ref}@{release.digest}" if pin_digest else ref


def current_reference(site: Site) -> str:
    # strip(): a block scalar (`image: |`) holds its final newline; the reference is still the one
    # written, and replacing it then says why it cannot (yaml_splice), not "no image found".
    return site.image.value.strip() if isinstance(site, ContainerImage) else site.reference()


def find_images(text: str, *, path: str, repository: str, containers: tuple[str, ...] = ()) -> list[Site]:
    """The images of ``repository`` in ``text`` (only ``containers``, if given).

    Raises ConfigError when nothing matches, or when a named container has no such image: a
    typo in services.yaml must fail loudly rather than silently update nothing.
    """
    return _find(compose_documents(text, path=path), text, path=path, repository=repository, containers=containers)


def _find(docs: list[Node], text: str, *, path: str, repository: str, containers: tuple[str, ...]) -> list[Site]:
    want = repository_of(repository)
    if want is None:
        raise ConfigError(f"not an image repository: {repository!r}", file=path)
    if not docs:
        raise no_documents(text, path=path, hint=f"list the manifest that holds the image of {repository}")
    sites: list[Site] = []
    for doc in docs:
        if is_kustomization(doc, path=path):
            for entry in kustomize_images(doc, path=path):
                # The image the entry produces (newName, else name): `name: x, newName: y` deploys y.
                new_name = entry.field("newName")
                produces = repository_of(new_name.value if new_name is not None else entry.name)
                if produces == want and (not containers or entry.name in containers):
                    sites.append(entry)
        else:
            for image in container_images(doc, path=path):
                if image.image.tag != "tag:yaml.org,2002:str":
                    continue  # `image: 42`, `image: null`: not a reference
                if repository_of(current_reference(image)) == want and (
                    not containers or image.container in containers
                ):
                    sites.append(image)
    found = {s.container if isinstance(s, ContainerImage) else s.name for s in sites}
    if missing := [c for c in containers if c not in found]:
        raise ConfigError(f"no container named {', '.join(missing)} with an image of {repository}", file=path)
    if not sites:
        raise ConfigError(f"no container image of {repository} found", file=path)
    return sorted(sites, key=_position)


def edit_file(text: str, *, path: str, repository: str, new_reference: str, containers: tuple[str, ...] = (),
              tag_order: TagOrder = TagOrder.NONE) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Point every image of ``repository`` in ``text`` at ``new_reference``, leaving alone every
    image whose tag is newer than the release's by ``tag_order``: returns the new text, one
    human-readable line per edited image (none when the file already holds ``new_reference``),
    and one line per image kept."""
    try:
        new = parse_reference(new_reference)
    except ValueError as exc:
        raise ConfigError(str(exc), file=path) from None
    newline = "\r\n" if "\r\n" in text else "\n"
    splices: dict[int, Splice] = {}  # keyed by start: sites an alias shares edit its anchor's node once
    edits: list[str] = []
    kept: list[str] = []
    docs = compose_documents(text, path=path)
    sites = _find(docs, text, path=path, repository=repository, containers=containers)
    sharing = Sharing(text, docs)  # a node reached from places that are not sites of this edit stays
    respell = repository_of(new_reference) == repository_of(repository)  # as each site's is
    for site in sites:
        fields = [f for f in map(site.field, FIELDS) if f is not None] if isinstance(site, KustomizeImage) else []
        sharing.edited(*([site.image] if isinstance(site, ContainerImage) else [site.entry, *fields]))
    for site in sites:
        old = current_reference(site)
        where = site.where if isinstance(site, ContainerImage) else f"kustomization image {site.name}"
        if new.tag and is_newer(_tag_of(site), new.tag, tag_order):
            kept.append(f"{where}: keeps {old} (newer than {new.tag})")
            continue
        if isinstance(site, ContainerImage):
            written = _respelled(old, new) if respell and old != new_reference else new_reference
            if written != old:
                what = f"the image of {where.split(' ', 1)[1]}"
                sharing.check(site.image, what=what, path=path, key=site.key, merge=site.merge)
            todo = [] if written == old else [replace_scalar(text, site.image, written, path=path)]
        else:
            written = new_reference
            todo = kustomize_splices(text, site, new_reference, newline, path=path, sharing=sharing)
        for splice in todo:
            splices.setdefault(splice.start, splice)
        if todo:
            edits.append(f"{where}: {old} -> {written}")
    new_text = apply_splices(text, sorted(splices.values(), key=lambda s: (s.start, s.end)))
    _check_result(new_text, path=path, repository=repository, containers=containers, new=new, kept=len(kept))
    return new_text, tuple(edits), tuple(kept)


def compute_change(
    root: Path,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[GitOpsFile, ...]],
    *,
    pin_digest: bool,
    tag_order: TagOrder = TagOrder.NONE,
) -> tuple[GitOpsChange, tuple[str, ...]]:
    """The manifest change for ``releases``, and the services whose manifests it changes.

    A reference newer than the release (by ``tag_order``) is kept, and listed in its FileChange."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    edits: dict[str, list[str]] = {}
    kept: dict[str, list[str]] = {}
    changed: list[str] = []
    for release in releases:
        new_reference = reference_for(release, pin_digest=pin_digest)
        for target in targets.get(release.service, ()):
            if target.path not in before:
                before[target.path] = after[target.path] = read_manifest(root, target.path)
                edits[target.path], kept[target.path] = [], []
            if target.helm is not None:
                text, done, skip = helm_values.edit_for_release(after[target.path], target, release,
                                                                pin_digest=pin_digest, tag_order=tag_order)
            else:
                text, done, skip = edit_file(after[target.path], path=target.path, repository=release.repository,
                                             new_reference=new_reference, containers=target.containers,
                                             tag_order=tag_order)
            after[target.path] = text
            edits[target.path].extend(done)
            kept[target.path].extend(skip)
            if done and release.service not in changed:
                changed.append(release.service)
    files = tuple(FileChange(p, before[p], after[p], tuple(edits[p]), tuple(kept[p])) for p in before)
    return GitOpsChange(files), tuple(changed)


def drift(
    root: Path,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[GitOpsFile, ...]],
) -> list[Drift]:
    """Every targeted image that does not reference the released tag (and digest, if pinned)."""
    out: list[Drift] = []
    for release in releases:
        for target in targets.get(release.service, ()):
            text = read_manifest(root, target.path)
            if target.helm is not None:
                refs = [helm_values.release_site(text, path=target.path, keys=target.helm,
                                                 repository=release.repository).reference()]
            else:
                sites = find_images(text, path=target.path, repository=release.repository,
                                    containers=target.containers)
                refs = [current_reference(site) for site in sites]
            for ref in refs:
                if not _in_sync(ref, release):
                    out.append(Drift(release.service, target.path, ref))
    return out


def unified_diff(change: GitOpsChange) -> str:
    out: list[str] = []
    for f in change.files:
        lines = difflib.unified_diff(
            f.before.splitlines(keepends=True),
            f.after.splitlines(keepends=True),
            fromfile=f"a/{f.path}",
            tofile=f"b/{f.path}",
        )
        for line in lines:
            # Like git: mark a last line without a newline instead of gluing the next one to it.
            out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# --------------------------------------------------------------------------- helpers


def _respelled(old: str, new: ImageReference) -> str:
    """``new`` with the repository as ``old`` (of the same repository) writes it: ``team/app:41`` ->
    ``team/app:42``, never ``docker.io/team/app:42``."""
    return written_name(old) + (f":{new.tag}" if new.tag else "") + (f"@{new.digest}" if new.digest else "")


def _tag_of(site: Site) -> str | None:
    if isinstance(site, KustomizeImage):
        return site.field("newTag").value if site.field("newTag") is not None else None
    try:
        return parse_reference(current_reference(site)).tag
    except ValueError:
        return None


def _position(site: Site) -> int:
    return (site.image if isinstance(site, ContainerImage) else site.entry).start_mark.index


def _in_sync(ref: str, release: ReleasedImage) -> bool:
    parsed = parse_reference(ref)
    if parsed.digest is not None and parsed.digest != release.digest:
        return False
    return parsed.tag == release.tag or (parsed.tag is None and parsed.digest == release.digest)


def _check_result(
    text: str, *, path: str, repository: str, containers: tuple[str, ...], new: ImageReference, kept: int = 0
) -> None:
    """Re-read the edited text: every target must now resolve to exactly ``new`` (but ``kept`` ones)."""
    left = []
    for site in find_images(text, path=path, repository=repository, containers=containers):
        got = parse_reference(current_reference(site))  # of the repository: find_images matched it
        if (got.tag, got.digest) != (new.tag, new.digest):
            left.append(current_reference(site))
    if len(left) > kept:
        raise OperationError(f"{path}: edit left {left[0]} (a buildctl bug)")

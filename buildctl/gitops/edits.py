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
from buildctl.gitops import finder, render_check
from buildctl.gitops.manifest_files import read_manifest
from buildctl.gitops.results import Drift, FileChange, GitOpsChange
from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.sites import ImageSite, Rewrite
from buildctl.gitops.sites.helm_keys import shared_tag_conflicts
from buildctl.gitops.tag_order import is_newer
from buildctl.gitops.yaml_nodes import compose_documents, no_documents, repository_of
from buildctl.gitops.yaml_splice import Splice, apply_splices
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage, TagOrder
from buildctl.references import parse_reference


def reference_for(release: ReleasedImage, *, pin_digest: bool) -> str:
    ref = f"{release.repository}:{release.tag}"
    return f"{ref}@{release.digest}" if pin_digest else ref


def find_images(text: str, *, path: str, repository: str, containers: tuple[str, ...] = (),
                helm: HelmKeys | None = None) -> list[ImageSite]:
    """The image sites of ``repository`` in ``text`` (only ``containers``, if given; at ``helm`` keys).

    Raises ConfigError when nothing matches, or when a named container has no such image: a
    typo in services.yaml must fail loudly rather than silently update nothing.
    """
    return _find(compose_documents(text, path=path), text, path=path, repository=repository, containers=containers,
                 helm=helm)


def _find(docs: list[Node], text: str, *, path: str, repository: str, containers: tuple[str, ...],
          helm: HelmKeys | None) -> list[ImageSite]:
    want = repository_of(repository)
    if want is None:
        raise ConfigError(f"not an image repository: {repository!r}", file=path)
    if not docs:
        hint = "a Helm values file is one YAML mapping" if helm else f"list the manifest that holds the image of {repository}"
        raise no_documents(text, path=path, hint=hint)
    if helm is not None:
        return [finder.helm_site_of(docs, path=path, keys=helm, repository=repository)]
    of_repository = [s for s in finder.sites_of(docs, path=path) if s.produces() == want]
    sites = [s for s in of_repository if not containers or s.name in containers]
    found = {s.name for s in sites}
    if missing := [c for c in containers if c not in found]:
        seen = "; ".join(f"{s.where} (line {text.count(chr(10), 0, s.position) + 1})" for s in of_repository[:3])
        raise ConfigError(f"no container named {', '.join(missing)} with an image of {repository}", file=path,
                          hint=f"the image is at {seen}" if seen else None)
    if not sites:
        raise finder.not_found(docs, path=path, repository=repository)
    return sorted(sites, key=lambda s: s.position)


def edit_file(text: str, *, path: str, repository: str, new_reference: str, containers: tuple[str, ...] = (),
              tag_order: TagOrder = TagOrder.NONE, helm: HelmKeys | None = None,
              ) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Point every image of ``repository`` in ``text`` (at ``helm`` keys, if given) at ``new_reference``,
    leaving alone every image whose tag is newer than the release's by ``tag_order``: returns the new
    text, one human-readable line per edited image (none when the file already holds
    ``new_reference``), and one line per image kept."""
    try:
        new = parse_reference(new_reference)
    except ValueError as exc:
        raise ConfigError(str(exc), file=path) from None
    splices: dict[int, Splice] = {}  # keyed by start: sites an alias shares edit its anchor's node once
    edits: list[str] = []
    kept: list[str] = []
    docs = compose_documents(text, path=path)
    render_check.remember(text, docs)  # the check before pushing reads this text again
    sites = _find(docs, text, path=path, repository=repository, containers=containers, helm=helm)
    sharing = Sharing(text, docs)  # a node reached from places that are not sites of this edit stays
    for site in sites:
        sharing.edited(*site.nodes())
    rewrite = Rewrite(text, path, "\r\n" if "\r\n" in text else "\n", sharing)
    expected: list[str] = []
    for site in sites:
        old = site.reference() or ""
        if new.tag and is_newer(site.current_tag(), new.tag, tag_order):
            kept.append(f"{site.where}: keeps {old} (newer than {new.tag})")
            expected.append(old)
            continue
        written, todo = site.rewrite(rewrite, new_reference)
        expected.append(written)
        for splice in todo:
            splices.setdefault(splice.start, splice)
        if todo:
            edits.append(f"{site.where}: {old} -> {written}")
    new_text = apply_splices(text, sorted(splices.values(), key=lambda s: (s.start, s.end)))
    if splices:
        _check_result(new_text, expected, path=path, repository=repository, containers=containers, helm=helm)
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
    shared_tag_conflicts(releases, targets)
    for release in releases:
        new_reference = reference_for(release, pin_digest=pin_digest)
        for target in targets.get(release.service, ()):
            if target.path not in before:
                before[target.path] = after[target.path] = read_manifest(root, target.path)
                edits[target.path], kept[target.path] = [], []
            text, done, skip = edit_file(after[target.path], path=target.path, repository=release.repository,
                                         new_reference=new_reference, containers=target.containers,
                                         tag_order=tag_order, helm=target.helm)
            after[target.path] = text
            edits[target.path].extend(done)
            kept[target.path].extend(skip)
            if done and release.service not in changed:
                changed.append(release.service)
    for release in releases:  # a value shared with another release's site (a helm prefix's tag) moved it too
        if release.service not in changed and any(
                _moved(before[t.path], after[t.path], t, release) for t in targets.get(release.service, ())):
            changed.append(release.service)
    files = tuple(FileChange(p, before[p], after[p], tuple(edits[p]), tuple(kept[p])) for p in before)
    return GitOpsChange(files), tuple(changed)


def _moved(before: str, after: str, target: GitOpsFile, release: ReleasedImage) -> bool:
    if before == after:
        return False
    refs = [[s.reference() for s in find_images(text, path=target.path, repository=release.repository,
                                                containers=target.containers, helm=target.helm)]
            for text in (before, after)]
    return refs[0] != refs[1]


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
            sites = find_images(text, path=target.path, repository=release.repository,
                                containers=target.containers, helm=target.helm)
            refs = [site.reference() or "" for site in sites]
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


def _in_sync(ref: str, release: ReleasedImage) -> bool:
    try:
        parsed = parse_reference(ref)
    except ValueError:  # `newTag: '{{.version}}'`, a Helm `tag: "{{ .Chart.AppVersion }}"`: not the release
        return False
    if parsed.digest is not None and parsed.digest != release.digest:
        return False
    return parsed.tag == release.tag or (parsed.tag is None and parsed.digest == release.digest)


def _check_result(text: str, expected: list[str], *, path: str, repository: str, containers: tuple[str, ...],
                  helm: HelmKeys | None) -> None:
    """Re-read the edited text: its sites must now hold exactly what the edit wrote (and kept)."""
    docs = compose_documents(text, path=path)
    render_check.remember(text, docs)
    got = [s.reference() or "" for s in _find(docs, text, path=path, repository=repository, containers=containers,
                                               helm=helm)]
    if sorted(map(_normal, got)) != sorted(map(_normal, expected)):
        left = next(iter(set(got) - set(expected)), got[0] if got else "nothing")
        raise OperationError(f"{path}: edit left {left} (a buildctl bug)")


def _normal(ref: str) -> str:
    """``ref`` as the registry reads it: `vote:42` and `docker.io/library/vote:42` are one image."""
    try:
        return str(parse_reference(ref))
    except ValueError:
        return ref

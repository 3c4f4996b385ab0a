"""Exact, minimal edits of image references in GitOps manifests (pure: text in, text out).

The old shell step did ``sed -i "s|image:.*|image: REG/$2:$3|g"``: it rewrote every ``image:``
line — sidecars of other repositories, comments, env values — and lost digests. Here each target
scalar is located in the PyYAML node tree and the new value is spliced into the original text at
that node's offsets, so every other byte (comments, quoting, key order, CRLF, BOM, other documents)
stays as it was. Nothing is ever re-dumped.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from yaml.nodes import Node

from buildctl.errors import ConfigError, OperationError
from buildctl.fork_map import map_forked
from buildctl.gitops import finder, render_check
from buildctl.gitops.file_diff import file_diff
from buildctl.gitops.manifest_files import read_manifest
from buildctl.gitops.results import Drift, FileChange, GitOpsChange
from buildctl.gitops.scalar_swap import swapped_documents
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
    # Keyed by range: sites an alias shares edit its anchor's node once, while an insertion and a removal
    # that start at one offset (a flow entry's new field where its removed last one began) both stay.
    splices: dict[tuple[int, int], Splice] = {}
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
            splices.setdefault((splice.start, splice.end), splice)
        if todo:
            edits.append(f"{site.where}: {old} -> {written}")
    ordered = sorted(splices.values(), key=lambda s: (s.start, s.end))
    new_text = apply_splices(text, ordered)
    if splices:  # the sites re-read: from the updated trees when the splices provably only swap scalars
        _check_result(new_text, expected, path=path, repository=repository, containers=containers, helm=helm,
                      docs=swapped_documents(text, docs, ordered))
    return new_text, tuple(edits), tuple(kept)


class _Job(NamedTuple):
    """One release's edit of one file; ``number`` orders the edits as services.yaml lists them."""
    number: int
    service: str
    repository: str
    new_reference: str
    target: GitOpsFile


class _FilePlan(NamedTuple):
    path: str
    before: str
    after: str
    edits: tuple[str, ...]
    kept: tuple[str, ...]
    services: tuple[str, ...]  # whose edits changed the file
    outlines: tuple  # what the check before pushing reads of ``before`` and ``after`` (render_check)
    diff: str


def compute_change(
    root: Path,
    releases: Sequence[ReleasedImage],
    targets: Mapping[str, tuple[GitOpsFile, ...]],
    *,
    pin_digest: bool,
    tag_order: TagOrder = TagOrder.NONE,
) -> tuple[GitOpsChange, tuple[str, ...]]:
    """The manifest change for ``releases``, and the services whose manifests it changes.

    A reference newer than the release (by ``tag_order``) is kept, and listed in its FileChange.
    Files are planned apart from each other (on every core, for many files: buildctl.fork_map);
    the edits of one file run in services.yaml's order, and the first error in that order is raised."""
    shared_tag_conflicts(releases, targets)
    jobs: dict[str, list[_Job]] = {}
    numbers = itertools.count()
    for release in releases:
        new_reference = reference_for(release, pin_digest=pin_digest)
        for target in targets.get(release.service, ()):
            jobs.setdefault(target.path, []).append(
                _Job(next(numbers), release.service, release.repository, new_reference, target))
    plan = functools.partial(_plan_file, root, tag_order=tag_order)
    planned = map_forked(plan, list(jobs.values()))
    if failed := [p for p in planned if isinstance(p, int)]:
        first = min(failed)  # planned again here, to raise the error itself
        plan(next(j for j in jobs.values() if any(job.number == first for job in j)), raising=True)
        raise OperationError(f"planning the GitOps edit failed in a worker only (a buildctl bug, edit {first})")
    files = [p for p in planned if not isinstance(p, int)]
    for p in files:
        render_check.remember_outlines(p.outlines)
    edited = {s for p in files for s in p.services}
    changed = list(dict.fromkeys(r.service for r in releases if r.service in edited))
    before = {p.path: p.before for p in files}
    after = {p.path: p.after for p in files}
    for release in releases:  # a value shared with another release's site (a helm prefix's tag) moved it too
        if release.service not in changed and any(
                _moved(before[t.path], after[t.path], t, release) for t in targets.get(release.service, ())):
            changed.append(release.service)
    change = GitOpsChange(tuple(FileChange(p.path, p.before, p.after, p.edits, p.kept, p.diff) for p in files))
    return change, tuple(changed)


def _plan_file(root: Path, jobs: list[_Job], *, tag_order: TagOrder, raising: bool = False) -> _FilePlan | int:
    """The edits of one file, or (unless ``raising``) the number of the edit that failed."""
    path = jobs[0].target.path
    edits: list[str] = []
    kept: list[str] = []
    services: list[str] = []
    job = jobs[0]
    try:
        before = text = read_manifest(root, path)
        for job in jobs:
            text, done, skip = edit_file(text, path=path, repository=job.repository, new_reference=job.new_reference,
                                         containers=job.target.containers, tag_order=tag_order, helm=job.target.helm)
            edits.extend(done)
            kept.extend(skip)
            if done:
                services.append(job.service)
    except Exception:  # noqa: BLE001 - reported by number: the caller raises it again in-process
        if raising:
            raise
        return job.number
    return _FilePlan(path, before, text, tuple(edits), tuple(kept), tuple(services),
                     render_check.known_outlines(before, text), file_diff(path, before, text))


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
    return "".join(f.diff if f.diff is not None else file_diff(f.path, f.before, f.after) for f in change.files)


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
                  helm: HelmKeys | None, docs: list[Node] | None) -> None:
    """Re-read the edited text (or ``docs``, its node trees): its sites must now hold exactly what the
    edit wrote (and kept)."""
    docs = compose_documents(text, path=path) if docs is None else docs
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

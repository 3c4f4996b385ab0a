"""The Helm edits of one values text, as the tests call them (edits.edit_file with `helm:` keys)."""

from __future__ import annotations

from buildctl.gitops.edits import edit_file, find_images
from buildctl.model import HelmKeys


def edit_values(text: str, *, path: str, keys: HelmKeys, repository: str, tag: str, digest: str | None,
                pin_digest: bool) -> tuple[str, tuple[str, ...]]:
    """(new text, edits): the image at ``keys`` pointed at ``repository:tag`` (pinned to ``digest``)."""
    new = f"{repository}:{tag}" + (f"@{digest}" if pin_digest and digest else "")
    return edit_file(text, path=path, repository=repository, new_reference=new, helm=keys)[:2]


def find_site(text: str, *, path: str, keys: HelmKeys, repository: str):
    (site,) = find_images(text, path=path, repository=repository, helm=keys)
    return site

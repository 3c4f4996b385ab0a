"""Image sites: where a reference lives in a GitOps file, and how to read and rewrite it.

One module per kind of site — a container's ``image:`` field (container.py), a kustomization
``images:`` entry or a Flux Kustomization's ``spec.images`` one (kustomize_entry.py), Helm values
keys (helm_keys.py), Argo CD's strings (argocd.py) — each a frozen dataclass with the ``ImageSite``
methods. ``finder.py`` lists the sites of a document; the editor (edits.py) and its checks see only
this protocol, so a new layout is one new module and its tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from yaml.nodes import Node

from buildctl.gitops.shared_values import Sharing
from buildctl.gitops.yaml_splice import Splice
from buildctl.references import parse_reference


@dataclass(frozen=True)
class Rewrite:
    """What a site needs to write a new reference into ``text`` (the file being edited)."""

    text: str
    path: str
    newline: str  # "\r\n" in a CRLF file: inserted lines keep it
    sharing: Sharing  # refuses a change that an alias or a `<<:` merge key would carry elsewhere


class ImageSite(Protocol):
    @property
    def where(self) -> str: ...  # for messages: "Deployment/vote container vote"

    @property
    def name(self) -> str: ...  # what a manifest entry's `containers:` names

    @property
    def position(self) -> int: ...  # offset in the text: sites are edited and reported in file order

    def reference(self) -> str | None: ...  # the image it deploys now; None: not a reference (`image: 42`)

    def produces(self) -> str | None: ...  # the repository of the image it deploys (normalised)

    def current_tag(self) -> str | None: ...  # the tag the rule of gitops.tag_order reads

    def nodes(self) -> tuple[Node, ...]: ...  # every node its edit may change (Sharing.edited)

    def rewrite(self, edit: Rewrite, new_reference: str) -> tuple[str, list[Splice]]:
        """(the reference as written, the splices writing it); no splices when it already holds it."""
        ...


def tag_of(reference: str | None) -> str | None:
    try:
        return parse_reference(reference).tag if reference else None
    except ValueError:
        return None

"""Check what Argo CD will read, before pushing: the files a release touched still parse into the
same documents of the same kinds, gained no duplicate key, and every kustomization in a touched
directory still renders with ``kustomize build`` (when kustomize is installed).

Runs on the work tree with the edited files written; raises OperationError on the first problem,
so nothing is committed or pushed.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError, OperationError
from buildctl.gitops import kustomize
from buildctl.gitops.sites.kustomize_entry import KUSTOMIZATION_FILES
from buildctl.gitops.yaml_nodes import compose_documents, get, scalar
from buildctl.gitops.results import GitOpsChange

_HINT = "nothing was pushed; fix the file in the GitOps repository (or services.yaml) and run again"


def check(work: Path, change: GitOpsChange, *, render: bool = True) -> tuple[str, ...]:
    """What was checked, one line each; OperationError at the first file that would break.

    ``render`` False (gitops.render_check: false) skips ``kustomize build``, and says so."""
    touched = change.modified_files
    documents = 0
    for f in touched:
        (before, old_dups), (after, dups) = _outline(f.before, f.path, edited=False), _outline(f.after, f.path, edited=True)
        if before != after:
            raise OperationError(f"{f.path}: the edit changed the documents from {before} to {after} "
                                 "(a buildctl bug)", hint=_HINT)
        if new_dups := {k: line for k, line in dups.items() if k not in old_dups}:
            key, line = min(new_dups.items(), key=lambda item: item[1])
            raise OperationError(f"{f.path}:{line}: the edit would leave key `{key.partition('.')[2]}` twice in "
                                 "one mapping (a buildctl bug)", hint=_HINT)
        documents += len(after)
    # One line for every file (a release may touch 1,000): the record lists the files in its diff.
    done = [f"{len(touched)} edited file(s) parse into the same {documents} document(s) and kinds, "
            "no key twice"]
    if not render:
        return (*done, "kustomize build not run (gitops.render_check: false)")
    if kustomize.available() is None:
        return tuple(done)
    for directory in sorted({str(PurePosixPath(f.path).parent) for f in touched}):
        # os.path, not pathlib: three names in each of 1,000 folders (issue #20)
        found = [Path(f) for n in sorted(KUSTOMIZATION_FILES) if os.path.isfile(f := os.path.join(work, directory, n))]
        if not found:
            continue
        charts = _has_helm_charts(found[0])
        if charts and kustomize.helm() is None:
            # Never a silent pass: this directory was not rendered, and the output and record say so.
            done.append(f"warning: {directory}: kustomize build skipped: its helmCharts need helm, which is not "
                        "on PATH")
            continue
        result = kustomize.build(work / directory, root=work, enable_helm=charts)
        if not result.ok:
            lines = result.output.splitlines()
            raise OperationError(f"`kustomize build {directory}` fails after the edit: {lines[0] if lines else ''}"
                                 + "".join(f"\n    {line}" for line in lines[1:20]), hint=_HINT)
        done.append(f"{directory}: kustomize build{' --enable-helm' if charts else ''} ok")
    return tuple(done)


def _has_helm_charts(kustomization: Path) -> bool:
    try:
        docs = compose_documents(kustomization.read_text(encoding="utf-8"), path=str(kustomization))
    except (ConfigError, OSError, UnicodeDecodeError):
        return False  # kustomize build words the problem
    return any(get(d, "helmCharts") is not None for d in docs)


def _documents(text: str, path: str, *, edited: bool) -> list[Node]:
    try:
        return compose_documents(text, path=path)
    except ConfigError as exc:
        what = "the edit made it invalid YAML (a buildctl bug)" if edited else "it is not valid YAML"
        raise OperationError(f"{exc.message}: {what}", hint=_HINT) from None


Outline = tuple[list[str], dict[str, int]]  # the documents' kinds; each key twice in a mapping, with its line

# Outlines of texts the edit composed already (edits.py calls remember): this check reads the same
# text the same way, so 1,000 manifests are not composed a second time before and after the edit
# (node trees are not kept: garbage collection would walk them). Bounded by the text they hold.
_OUTLINES: dict[str, Outline] = {}
_MAX_OUTLINED_CHARS = 32 << 20
_outlined_chars = 0


def remember(text: str, docs: list[Node]) -> None:
    """Record the outline of ``docs``, the documents ``text`` composes into."""
    if text not in _OUTLINES:
        _store(text, (_kinds(docs), _duplicates(docs)))


def known_outlines(*texts: str) -> tuple[tuple[str, Outline], ...]:
    """The outlines remembered of ``texts``: a forked worker's plan hands them to the parent."""
    return tuple((t, _OUTLINES[t]) for t in dict.fromkeys(texts) if t in _OUTLINES)


def remember_outlines(outlines: tuple[tuple[str, Outline], ...]) -> None:
    """Take the outlines a worker remembered (known_outlines) as if composed here."""
    for text, outline in outlines:
        if text not in _OUTLINES:
            _store(text, outline)


def _store(text: str, outline: Outline) -> None:
    global _outlined_chars
    if _outlined_chars + len(text) > _MAX_OUTLINED_CHARS:
        _OUTLINES.clear()
        _outlined_chars = 0
    _OUTLINES[text] = outline
    _outlined_chars += len(text)


def _outline(text: str, path: str, *, edited: bool) -> Outline:
    if (known := _OUTLINES.get(text)) is not None:
        return known
    docs = _documents(text, path, edited=edited)
    return _kinds(docs), _duplicates(docs)


def _kinds(docs: list[Node]) -> list[str]:
    return [scalar(get(d, "kind")) or "(no kind)" for d in docs]


def _duplicates(docs: list[Node]) -> dict[str, int]:
    """Each dotted key (``0.images.1.newTag``) that appears twice in one mapping, with the line
    of its second appearance (the first such mapping in document order, aliases walked once)."""
    found: dict[str, int] = {}
    for n, doc in enumerate(docs):
        seen: set[int] = set()
        todo: list[tuple[Node, str]] = [(doc, f"{n}.")]
        while todo:  # depth first, in document order, as a recursive walk would: no recursion limit
            node, path = todo.pop()
            if id(node) in seen:  # an alias: visited at its anchor
                continue
            seen.add(id(node))
            if isinstance(node, MappingNode):
                keys: set[str] = set()
                for k, _ in node.value:
                    if isinstance(k, ScalarNode):
                        if k.value in keys:
                            found.setdefault(f"{path}{k.value}", k.start_mark.line + 1)
                        keys.add(k.value)
                todo.extend((v, f"{path}{scalar(k) or '?'}.") for k, v in reversed(node.value))
            elif isinstance(node, SequenceNode):
                todo.extend((item, f"{path}{i}.") for i, item in reversed(list(enumerate(node.value))))
    return found

"""Check what Argo CD will read, before pushing: the files a release touched still parse into the
same documents of the same kinds, gained no duplicate key, and every kustomization in a touched
directory still renders with ``kustomize build`` (when kustomize is installed).

Runs on the work tree with the edited files written; raises OperationError on the first problem,
so nothing is committed or pushed.
"""

from __future__ import annotations

from collections.abc import Iterator
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
        before, after = _documents(f.before, f.path, edited=False), _documents(f.after, f.path, edited=True)
        if _kinds(before) != _kinds(after):
            raise OperationError(f"{f.path}: the edit changed the documents from {_kinds(before)} to {_kinds(after)} "
                                 "(a buildctl bug)", hint=_HINT)
        dups = _duplicates(after)
        old_dups = _duplicates(before) if dups else {}  # the usual case: no key twice, nothing to compare
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
        found = [work / directory / n for n in sorted(KUSTOMIZATION_FILES) if (work / directory / n).is_file()]
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


def _kinds(docs: list[Node]) -> list[str]:
    return [scalar(get(d, "kind")) or "(no kind)" for d in docs]


def _duplicates(docs: list[Node]) -> dict[str, int]:
    """Each dotted key (``0.images.1.newTag``) that appears twice in one mapping, with the line
    of its second appearance."""
    found: dict[str, int] = {}
    for n, doc in enumerate(docs):
        for path, mapping in _mappings(doc, f"{n}."):
            seen: set[str] = set()
            for k, _ in mapping.value:
                if isinstance(k, ScalarNode):
                    if k.value in seen:
                        found.setdefault(f"{path}{k.value}", k.start_mark.line + 1)
                    seen.add(k.value)
    return found


def _mappings(node: Node, path: str, seen: set[int] | None = None) -> Iterator[tuple[str, MappingNode]]:
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias: visited at its anchor
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        yield path, node
        for k, v in node.value:
            yield from _mappings(v, f"{path}{scalar(k) or '?'}.", seen)
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            yield from _mappings(item, f"{path}{i}.", seen)

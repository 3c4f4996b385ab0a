"""GitOps YAML as node trees, and the repository an image reference names.

Works on PyYAML *node* trees (``yaml.compose_all``), not on loaded Python objects: every node keeps
``start_mark``/``end_mark`` offsets into the original text, which is what lets the edits splice a
new value in without touching any other byte. Images compare by repository, parsed per the Docker
reference grammar (buildctl.references): ``redis:7-alpine`` is ``docker.io/library/redis``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from buildctl.errors import ConfigError
from buildctl.references import parse_reference

# --------------------------------------------------------------------------- references

@functools.lru_cache(maxsize=4096)  # a release meets the same few references in every file
def repository_of(ref: str) -> str | None:
    """The normalised repository (``registry/path``) of ``ref``, None if it is not a reference:
    ``redis:7-alpine`` and ``index.docker.io/redis`` -> ``docker.io/library/redis``; tag and digest
    are dropped. A registry host is a DNS name, whatever its letter case: ``MyACR.azurecr.io/team/api``
    is the image a release to ``myacr.azurecr.io/team/api`` deploys (the edit keeps the file's spelling)."""
    try:
        parsed = parse_reference(ref)
        if parsed.registry != parsed.registry.lower():  # `Docker.IO/redis` is then docker.io/library/redis
            parsed = parse_reference(f"{parsed.registry.lower()}/{parsed.repository}")
        return parsed.name
    except ValueError:
        return None


# --------------------------------------------------------------------------- YAML nodes

# libyaml composes ~10x faster (a GitOps repo may hold thousands of manifests) and reads all text,
# so a file is accepted or refused whatever characters it holds. Its marks count characters like
# Python's string offsets (CRLF is two) but for a BOM that starts the text, dropped uncounted: marks
# then move up by one. Probed here, not assumed (if marks were bytes, non-ASCII text would go to the
# pure-Python loader). Errors are worded from the pure-Python loader, which the tests pin down.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


_RESOLVER = yaml.resolver.Resolver()
_NO_OP: dict = {}


@functools.lru_cache(maxsize=4096)  # manifests repeat their keys and values: ~90 distinct in 1,000 Deployments
def _resolve(kind: type, value: str | None, implicit: bool | tuple[bool, bool]) -> str:
    """SafeLoader's implicit tag of a node (a pure function of these: no path resolvers, see below)."""
    return yaml.resolver.Resolver.resolve(_RESOLVER, kind, value, implicit)


def implicit_tag(plain: str) -> str:
    """The tag both loaders give ``plain`` written unquoted and untagged (`42`: int, `a:1`: str)."""
    return _resolve(ScalarNode, plain, (True, False))


if _FAST_LOADER is not None and not yaml.resolver.Resolver.yaml_path_resolvers:
    class _MemoLoader(_FAST_LOADER):  # type: ignore[misc, valid-type]
        """libyaml's composer calls back into Python for every node: the tag resolver (regular
        expressions over the scalar) and the path-resolver hooks, ~half of composing a manifest.
        Here the resolver is memoised and the hooks, no-ops without path resolvers (none are
        registered: checked above), are C callables. Same nodes, tags and marks as CSafeLoader."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            # Instance attributes, not methods: the composer looks them up per node and calls them as they are.
            self.resolve = _resolve
            self.descend_resolver = _NO_OP.get  # (parent, index) -> ignored
            self.ascend_resolver = _NO_OP.copy  # () -> ignored

    _FAST_LOADER = _MemoLoader

_FAST_UNICODE, _FAST_BOM_SHIFT = (
    (yaml.compose("# \u00e9\U0001f5f3\na: b\n", Loader=_FAST_LOADER).value[0][0].start_mark.index == 5,
     1 - yaml.compose("\ufeffa: b\n", Loader=_FAST_LOADER).value[0][0].start_mark.index)
    if _FAST_LOADER is not None else (False, 0))


def fast_loader(text: str) -> type | None:
    """libyaml's loader, if it reads ``text`` with marks that are offsets into it."""
    return _FAST_LOADER if _FAST_LOADER is not None and (text.isascii() or _FAST_UNICODE) else None


def compose_documents(text: str, *, path: str) -> list[Node]:
    """Every non-empty document of ``text``, as node trees; ConfigError with file:line if invalid.

    Not cached: keeping 1,000 files' node trees alive makes every garbage collection walk them
    (measured: composing 1,000 manifests 0.18 s -> 0.65 s)."""
    if (loader := fast_loader(text)) is not None:
        try:
            docs = list(yaml.compose_all(text, Loader=loader))
        except (yaml.YAMLError, UnicodeEncodeError):  # a lone surrogate cannot reach libyaml as UTF-8
            pass
        else:
            if text.startswith("\ufeff") and _FAST_BOM_SHIFT:
                for node in every_node(docs):
                    node.start_mark, node.end_mark = _moved(node.start_mark), _moved(node.end_mark)
            return [d for d in docs if not (isinstance(d, ScalarNode) and d.tag.endswith(":null"))]
    try:
        docs = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context
        if exc.context and exc.problem and exc.context_mark is not None:
            # "while parsing a flow sequence" names where the unclosed thing started.
            started = exc.context_mark.line + 1
            problem = f"{exc.context}{f' at line {started}' if started != line else ''}: {exc.problem}"
        raise ConfigError(f"not valid YAML: {problem}", file=path, line=line, hint=template_hint(text)) from None
    except yaml.reader.ReaderError as exc:  # a control character in the file
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"not valid YAML: unacceptable character #x{exc.character:04x}", file=path, line=line,
                          hint=template_hint(text)) from None
    return [d for d in docs if not (isinstance(d, ScalarNode) and d.tag.endswith(":null"))]


def template_hint(text: str) -> str | None:
    """For a Helm chart's template listed as a manifest: it is not YAML until Helm renders it."""
    if "{{" not in text:
        return None
    return ("this looks like a Helm template ({{ ... }}), which is YAML only once Helm renders it: list the chart's "
            "values file with `helm:` keys instead (README: Helm values files)")


def no_documents(text: str, *, path: str, hint: str | None = None) -> ConfigError:
    """The error for a file that holds no YAML document."""
    what = "the file is empty" if not text.strip("\ufeff \t\r\n") else "the file holds no YAML document (only comments)"
    return ConfigError(what, file=path, hint=hint)


def _moved(mark: yaml.Mark) -> yaml.Mark:
    return yaml.Mark(mark.name, mark.index + _FAST_BOM_SHIFT, mark.line, mark.column, None, None)


def line_of(node: Node) -> int:
    return node.start_mark.line + 1


MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class Slot:
    """Where a mapping holds a key: its key and value nodes, and the `<<:` merge key it came through."""
    key: Node
    value: Node
    merge: Node | None = None


def lookup(node: Node | None, key: str, _depth: int = 0) -> Slot | None:
    """``key`` in a mapping node as YAML merge keys read it: its own (the last one if duplicated),
    else from the first mapping merged in by `<<: *base` or `<<: [*a, *b]` that has it."""
    if not isinstance(node, MappingNode):
        return None
    own, merges = None, []
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG:
            merges.append((key_node, value_node))
        elif isinstance(key_node, ScalarNode) and key_node.value == key:
            own = Slot(key_node, value_node)
    if own is not None or _depth >= 64:  # 64: a merge of itself is a cycle
        return own
    for merge, value in merges:
        for source in value.value if isinstance(value, SequenceNode) else [value]:
            if (slot := lookup(source, key, _depth + 1)) is not None:
                return Slot(slot.key, slot.value, merge)
    return None


def get(node: Node | None, key: str) -> Node | None:
    """The value node of ``key`` in a mapping node (the last one if duplicated; merges followed)."""
    found, merges = None, False
    for key_node, value_node in node.value if isinstance(node, MappingNode) else ():
        merge = isinstance(key_node, ScalarNode) and key_node.tag == MERGE_TAG
        merges |= merge
        if not merge and isinstance(key_node, ScalarNode) and key_node.value == key:
            found = value_node
    slot = lookup(node, key) if found is None and merges else None  # the slower walk: for merges only
    return slot.value if slot is not None else found


def get_path(node: Node | None, *keys: str) -> Node | None:
    for key in keys:
        node = get(node, key)
    return node


def scalar(node: Node | None) -> str | None:
    return node.value if isinstance(node, ScalarNode) else None


def api_group(doc: Node) -> str:
    """The group of a document's ``apiVersion`` (``kustomize.toolkit.fluxcd.io/v1``: kustomize.toolkit.fluxcd.io);
    "" for none or a core version (``v1``)."""
    group, slash, _ = (scalar(get(doc, "apiVersion")) or "").partition("/")
    return group if slash else ""


# --------------------------------------------------------------------------- walking

def children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, SequenceNode) else []


def every_node(docs: list[Node]) -> Iterator[Node]:
    """Each node of ``docs`` once (an alias is its anchor's node object, met again)."""
    seen, todo = {id(d) for d in docs}, list(docs)
    while todo:
        yield (node := todo.pop())
        for child in children(node):
            if id(child) not in seen:
                seen.add(id(child))
                todo.append(child)

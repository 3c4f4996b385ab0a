"""Read a YAML file into plain data while remembering the line of every key and value.

PyYAML composes the node tree (with marks); we construct the values ourselves so each path
(("services", "vote", "platforms", 1), ...) maps to the 1-based line it came from. That is what
lets every config error name file, line and key.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from buildctl.errors import ConfigError

Path_ = tuple[str | int, ...]

# ${VAR} or ${VAR:-default}; $$ is a literal dollar. Azure's $(Build.BuildId) reaches the
# environment as BUILD_BUILDID, so `tag: ${BUILD_BUILDID:-dev}` works in pipelines.
_MERGE_TAG = "tag:yaml.org,2002:merge"  # a plain `<<` key, as PyYAML's resolver tags it
_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True)
class SourceDocument:
    file: str  # as shown to the user
    data: Any
    lines: Mapping[Path_, int]  # path -> 1-based line of the value (keys: line of the key)

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# libyaml composes ~10x faster (a services.yaml listing 1,000 manifests: 0.4 s -> 0.07 s). Only
# line numbers are read from its marks, and those agree for any text; errors go to the pure-Python
# loader, whose messages the tests pin down.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str, shown: str) -> yaml.Node | None:
    if _FAST_LOADER is not None:
        try:
            check_bounds(text, shown, _FAST_LOADER)
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass  # the pure-Python parser words it (and libyaml stops at 1,000 levels: so bound again)
    try:
        check_bounds(text, shown, yaml.SafeLoader)
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # PyYAML's composer recurses; only reached without libyaml
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=shown) from None


# Bounds on what a document may become once its aliases are expanded. An alias bomb ("billion
# laughs") is a few lines that expand to 10^9 nodes (it ran for minutes and took 4.9 GB before
# these, issue #14). Only what aliases add counts: the nodes written out are already in memory as
# text, and a 1 MB manifest without an alias holds well over 100,000 of them.
MAX_NODES = 100_000
MAX_DEPTH = 64


def check_bounds(text: str, shown: str, loader_class: type) -> None:
    """Refuse, from the event stream (one linear pass, no recursion, nothing expanded), a
    document whose aliases add more than MAX_NODES nodes, that nests deeper than MAX_DEPTH
    collections (aliases included), or with an alias inside the node it names (a cycle)."""
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, collection levels)
    stack: list[list[Any]] = [[0, 0, None]]  # open collections: [nodes, levels, anchor]
    total = 0
    loader = loader_class(text)

    def fail(message: str, line: int, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=shown, line=line, hint=hint)

    try:
        while (event := loader.get_event()) is not None:
            line = event.start_mark.line + 1
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([1, 1, event.anchor])
                if len(stack) - 1 > MAX_DEPTH:
                    raise fail(f"nested deeper than {MAX_DEPTH} levels", line)
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size, levels, anchor = stack.pop()
                if anchor:
                    anchors[anchor] = (size, levels)
            elif isinstance(event, yaml.ScalarEvent):
                size, levels = 1, 0
                if event.anchor:
                    anchors[event.anchor] = (1, 0)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    if any(frame[2] == event.anchor for frame in stack):
                        raise fail(f"alias *{event.anchor} is inside the node it refers to (a cycle)", line)
                    continue  # an undefined alias: the composer reports it
                size, levels = anchors[event.anchor]
                total += size  # what the alias adds: a copy of its node, expanded
                if len(stack) - 1 + levels > MAX_DEPTH:
                    raise fail(f"alias *{event.anchor} nests the document deeper than {MAX_DEPTH} levels", line)
            else:
                continue
            if total > MAX_NODES:
                raise fail(f"aliases expand the document past {MAX_NODES} nodes (an alias bomb?)", line,
                           hint="write the values out, or use fewer nested aliases")
            parent = stack[-1]
            parent[0] += size
            parent[1] = max(parent[1], levels + 1)
    finally:
        loader.dispose()


def load_yaml(path: Path, *, shown_as: str | None = None, environ: Mapping[str, str] | None = None) -> SourceDocument:
    shown = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown, hint="pass -c/--config PATH or run from the folder holding services.yaml") from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file", file=shown, hint=f"pass {shown}/services.yaml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=shown) from None
    try:
        node = _compose(text, shown)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", file=shown, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=shown) from None
    if node is None:
        raise ConfigError("the file is empty", file=shown, line=1)
    lines: dict[Path_, int] = {}
    builder = _Builder(shown, lines, os.environ if environ is None else environ)
    return SourceDocument(shown, builder.build(node, ()), lines)


class _Builder:
    def __init__(self, file: str, lines: dict[Path_, int], environ: Mapping[str, str]) -> None:
        self.file = file
        self.lines = lines
        self.environ = environ
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node, merged in self.pairs(node, path):
                line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode):  # not constructed: it may be an alias bomb
                    raise ConfigError("keys must be strings, got a " + ("list" if isinstance(key_node, yaml.SequenceNode) else "mapping"),
                                      file=self.file, line=line, key=format_path(path) or None)
                key = self.constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    raise ConfigError(f"keys must be strings, got {key!r}", file=self.file, line=line, key=format_path(path) or None)
                if key in out:
                    if merged:  # a key written out overrides the one a `<<:` merge brings
                        continue
                    raise ConfigError("duplicate key", file=self.file, line=line, key=format_path((*path, key)))
                self.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return self.interpolate(value, path, node.start_mark.line + 1)
        if isinstance(value, float) and not math.isfinite(value):  # .nan passes every min/max check
            raise ConfigError(f"{node.value} is not a finite number", file=self.file, line=node.start_mark.line + 1,
                              key=format_path(path) or None)
        return value

    def pairs(self, node: yaml.MappingNode, path: Path_) -> list[tuple[yaml.Node, yaml.Node, bool]]:
        """``node``'s (key, value, merged) pairs: its own first, then those of its ``<<:`` merge keys
        (YAML 1.1 merge, as docker compose files use it: ``<<: *defaults`` or ``<<: [*a, *b]``,
        the earlier mapping winning), so a key written out overrides a merged one."""
        own = [(k, v, False) for k, v in node.value if k.tag != _MERGE_TAG]
        merged: list[tuple[yaml.Node, yaml.Node, bool]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE_TAG:
                continue
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise ConfigError("`<<:` merges a mapping or a list of mappings (e.g. <<: *defaults)",
                                      file=self.file, line=source.start_mark.line + 1, key=format_path(path) or None)
                merged += [(k, v, True) for k, v, _ in self.pairs(source, path)]
        return own + merged

    def interpolate(self, value: str, path: Path_, line: int) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group("name"), match.group("default")
            found = self.environ.get(name)
            if found:
                return found
            if default is not None:
                return default
            raise ConfigError(
                f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)",
                file=self.file,
                line=line,
                key=format_path(path),
            )

        return _INTERPOLATION.sub(substitute, value)

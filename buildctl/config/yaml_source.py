"""Read a YAML file into plain data while remembering the line of every key and value.

PyYAML composes the node tree (with marks); we construct the values ourselves so each path
(("services", "vote", "platforms", 1), ...) maps to the 1-based line it came from. That is what
lets every config error name file, line and key.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from buildctl.config import source_text
from buildctl.config.secret_fields import secret_interpolation_error
from buildctl.config.yaml_bounds import MAX_DEPTH, check_bounds
from buildctl.config.yaml_hints import DOTTED_MACRO, macro_error, tab_error
from buildctl.errors import ConfigError
from buildctl.redaction import is_secret_variable

Path_ = tuple[str | int, ...]

# ${VAR} or ${VAR:-default}; $$ is a literal dollar. Azure's $(Build.BuildId) reaches the
# environment as BUILD_BUILDID, so `tag: ${BUILD_BUILDID:-dev}` works in pipelines; written as
# $(Build.BuildId) it is refused (yaml_hints.macro_error), $$(Build.BuildId) stays literal.
_MERGE_TAG = "tag:yaml.org,2002:merge"  # a plain `<<` key, as PyYAML's resolver tags it
_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
                            r"|" + DOTTED_MACRO)


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
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        # Keys come from the file: a long or odd one (a whole line of a file that is not YAML,
        # 'A B', '') is shortened and quoted, never echoed as it is.
        text = part if _PLAIN_KEY.match(part) and len(part) <= SHOWN_CHARS else shorten(part)
        out += f".{text}" if out else text
    return out


SHOWN_CHARS = 40  # at most this much of a key or value the file holds is repeated in a message
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*\Z")


def shorten(value: Any, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut to about ``limit`` characters of its text."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(type(value), type(value).__name__)


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


def load_yaml(path: Path, *, shown_as: str | None = None, environ: Mapping[str, str] | None = None,
              wants_text: Callable[[Path_], bool] | None = None) -> SourceDocument:
    """``path`` as data with lines. ``wants_text(path)``: the field at that path is text, so a plain
    scalar there is kept as written (``1.10``, ``no``, ``2024-01-01``), not as YAML 1.1 resolves it."""
    shown = shown_as or str(path)
    text = source_text.read_text(path, shown)
    try:
        node = _compose(text, shown)
    except yaml.reader.ReaderError as exc:  # a character YAML refuses; its position is an offset in text
        line, message = source_text.character_problem(text, exc.position, exc.character, exc.reason)
        raise ConfigError(message, file=shown, line=line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        if (tab := tab_error(text, mark, file=shown)) is not None:  # PyYAML's words name no fix
            raise tab from None
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", file=shown, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {str(exc).splitlines()[0]}", file=shown) from None
    if node is None:
        raise ConfigError("the file is empty", file=shown, line=1)
    lines: dict[Path_, int] = {}
    builder = _Builder(shown, lines, os.environ if environ is None else environ, wants_text)
    return SourceDocument(shown, builder.build(node, ()), lines)


_YAML_TAG = "tag:yaml.org,2002:"
_COLLECTION_TAGS = (_YAML_TAG + "map", _YAML_TAG + "seq")


def _shown_tag(tag: str) -> str:
    """``tag:yaml.org,2002:int`` as it is written, ``!!int``."""
    return "!!" + tag[len(_YAML_TAG):] if tag.startswith(_YAML_TAG) else tag


class _Builder:
    def __init__(self, file: str, lines: dict[Path_, int], environ: Mapping[str, str],
                 wants_text: Callable[[Path_], bool] | None = None) -> None:
        self.file = file
        self.lines = lines
        self.environ = environ
        self.wants_text = wants_text or (lambda path: False)
        self.constructor = yaml.SafeLoader("")

    def fail(self, message: str, node: yaml.Node, path: Path_) -> ConfigError:
        return ConfigError(message, file=self.file, line=node.start_mark.line + 1, key=format_path(path) or None)

    def is_plain(self, node: yaml.ScalarNode) -> bool:
        """Written plain (no quotes, no block style) and without an explicit tag: YAML 1.1 gave it
        its type from its text alone (``1.10`` a float, ``no`` false, ``2024-01-01`` a date)."""
        return not node.style and node.tag == self.constructor.resolve(yaml.ScalarNode, node.value, (True, False))

    def construct(self, node: yaml.ScalarNode, path: Path_) -> Any:
        """The scalar's value; ConfigError for what the constructor cannot make of it: an unknown
        or unsafe tag (``!env``, ``!!python/object``), ``!!int abc``, a date like 2024-13-45."""
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise ValueError, KeyError, AttributeError...
            tag = _shown_tag(node.tag)
            written = node.value if self.is_plain(node) else f"{tag} {node.value}"
            if isinstance(exc, yaml.MarkedYAMLError):
                why = exc.problem or exc.context or "not valid here"
            else:
                why = f"not a valid {tag.lstrip('!')}"
                if isinstance(exc, ValueError) and str(exc):
                    why += f" ({str(exc).splitlines()[0]})"
            raise self.fail(f"cannot read {shorten(written)}: {why}", node, path) from None

    def key(self, node: yaml.Node, path: Path_) -> str:
        if not isinstance(node, yaml.ScalarNode):  # not constructed: it may be an alias bomb
            raise self.fail("keys must be strings, got a " + ("list" if isinstance(node, yaml.SequenceNode) else "mapping"),
                            node, path)
        if self.is_plain(node):  # `yes:`, `ON:`, `1.10:` are the names written, not true and 1.1
            key: Any = node.value
        else:
            key = self.construct(node, path)
        if not isinstance(key, str):
            raise self.fail(f"keys must be strings, got {_type_name(key)} {shorten(key)} (quote it)", node, path)
        if "\0" in key:
            raise self.fail(f"key {shorten(key)} contains a NUL character", node, path)
        return key

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.CollectionNode) and node.tag not in _COLLECTION_TAGS:  # never constructed
            written = _shown_tag(node.tag) + (" {...}" if isinstance(node, yaml.MappingNode) else " [...]")
            raise self.fail(f"cannot read {shorten(written)}: tags on mappings and lists are not supported", node, path)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node, merged in self.pairs(node, path):
                line = key_node.start_mark.line + 1
                key = self.key(key_node, path)
                if key in out:
                    if merged:  # a key written out overrides the one a `<<:` merge brings
                        continue
                    raise ConfigError("duplicate key", file=self.file, line=line, key=format_path((*path, key)))
                self.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if self.is_plain(node) and node.tag != _YAML_TAG + "null" and self.wants_text(path):
            value: Any = node.value  # a string field: `1.10` stays 1.10, `no` stays no
        else:
            value = self.construct(node, path)
        if isinstance(value, str):
            if "\0" in value:  # no file name, argument or tag may hold one; os and subprocess refuse it
                raise self.fail("contains a NUL character (\\0)", node, path)
            return self.interpolate(value, path, node.start_mark.line + 1)
        if isinstance(value, float) and not math.isfinite(value):  # .nan passes every min/max check
            raise self.fail(f"{node.value} is not a finite number", node, path)
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
            if match.group("macro"):
                raise macro_error(match.group(0), file=self.file, line=line, key=format_path(path))
            name, default = match.group("name"), match.group("default")
            if is_secret_variable(name):
                raise secret_interpolation_error(name, file=self.file, line=line, key=format_path(path))
            found = self.environ.get(name)
            if found:
                return found
            if default is not None:  # `${VAR:-x}`: unset or empty gives x; `${VAR:-}` allows empty
                return default
            # Unset and set-but-empty are both refused (docker compose would substitute "" and warn):
            # in a pipeline, an empty BUILD_BUILDID is a mapping gone wrong, not a wish for an empty tag.
            # Each is named for what it is; ${VAR:-} is how to say empty is fine.
            state = "is set but empty" if name in self.environ else "is not set"
            fix = (f"write ${{{name}:-default}} to give a default, or ${{{name}:-}} to allow it empty" if name in self.environ
                   else f"write ${{{name}:-default}} to give a default")
            raise ConfigError(f"environment variable {name} {state} ({fix})", file=self.file, line=line,
                              key=format_path(path))

        return _INTERPOLATION.sub(substitute, value)

"""Read a YAML file into plain data while remembering the line of every key and value.

PyYAML composes the node tree (with marks); we construct the values ourselves so each path
(("services", "vote", "platforms", 1), ...) maps to the 1-based line it came from. That is what
lets every config error name file, line and key.
"""

from __future__ import annotations

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


def _compose(text: str) -> yaml.Node | None:
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


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
        node = _compose(text)
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
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):
                    raise ConfigError(f"keys must be strings, got {key!r}", file=self.file, line=line, key=format_path(path) or None)
                if key in out:
                    raise ConfigError("duplicate key", file=self.file, line=line, key=format_path((*path, key)))
                self.lines[(*path, key)] = line
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            return self.interpolate(value, path, node.start_mark.line + 1)
        return value

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

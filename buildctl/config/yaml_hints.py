"""Hints for the mistakes PyYAML and the schema word without a fix (issue #18): a tab in the
indentation, Azure Pipelines' $(Build.BuildId) macro syntax, a buildx CSV spec YAML split into a
list because it was not quoted. Each a pure function of the text or value; None when it is not that.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from buildctl.errors import ConfigError


def tab_in_indentation(text: str, mark: yaml.Mark | None) -> int | None:
    """The 1-based column of a tab in the indentation of the line ``mark`` is on, if any."""
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines):
        return None
    line = lines[mark.line]
    indent = line[:len(line) - len(line.lstrip(" \t"))]
    return indent.index("\t") + 1 if "\t" in indent else None


def tab_error(text: str, mark: yaml.Mark | None, *, file: str) -> ConfigError | None:
    """The error for a YAML error at ``mark`` when its line is indented with a tab."""
    column = tab_in_indentation(text, mark)
    if column is None:
        return None
    return ConfigError(f"a tab in the indentation (column {column}): YAML indents with spaces only",
                       file=file, line=mark.line + 1, hint="replace the tab with spaces")


# Azure Pipelines' macro syntax, $(Build.BuildId): Azure expands it in pipeline YAML, never in a
# file a step reads. It exports every variable to the environment, upper-cased with '.' -> '_'.
_AZURE_MACRO = re.compile(r"\$\((?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\)")
# Its dotted form ($(Build.BuildId), $(System.TeamProject)): never anything else in a services.yaml.
DOTTED_MACRO = r"\$\((?P<macro>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)\)"


def azure_macro_hint(value: object) -> str | None:
    """For a value holding ``$(Build.BuildId)``: how to say it here, ``${BUILD_BUILDID}``."""
    found = _AZURE_MACRO.search(value) if isinstance(value, str) else None
    if found is None:
        return None
    variable = found.group("name").upper().replace(".", "_")
    return (f"$({found.group('name')}) is Azure Pipelines macro syntax, never expanded in services.yaml: "
            f"write ${{{variable}}} (Azure exports it as the environment variable {variable}) "
            f"or ${{{variable}:-default}}")


def macro_error(macro: str, *, file: str, line: int, key: str) -> ConfigError:
    """A dotted ``$(Build.BuildId)`` in a value: refused, with the ``${...}`` to write."""
    return ConfigError(f"{macro} is not expanded (Azure Pipelines macro syntax)", file=file, line=line, key=key,
                       hint=azure_macro_hint(macro))


# key=value pieces, as a `type=registry,ref=x,mode=max` written unquoted in [...] becomes
_CSV_PIECE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*=[^,\s]*\Z")


def split_csv_hint(key: str, value: Any) -> str | None:
    """For a list of ``key=value`` strings (a buildx CSV spec that YAML split at its commas): the
    quoted form that was meant."""
    if not (isinstance(value, list) and len(value) > 1 and all(isinstance(v, str) and _CSV_PIECE.match(v)
                                                                for v in value)):
        return None
    joined = ",".join(value)
    return (f'quote it: {key}: ["{joined}"] — unquoted inside [...], YAML splits it at the commas '
            f"into {len(value)} items")

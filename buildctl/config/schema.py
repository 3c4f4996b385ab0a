"""The JSON Schema of services.yaml, and its first violation as one line with file:line and key.

services.schema.json is the single source of truth for shape (it is also what editors use). An
unknown key is reported before anything else about its mapping, with a suggestion.
"""

from __future__ import annotations

import difflib
import re
import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from buildctl.config.yaml_source import Path_, SourceDocument, format_path
from buildctl.errors import ConfigError


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("buildctl.config").joinpath("services.schema.json").read_text())


def validate(doc: SourceDocument) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return
    # An unknown key first, wherever it is: a typo'd key is what makes its mapping "miss" a
    # required one, and "unknown key 'contxt' (did you mean 'context'?)" is the error to fix.
    located = [(_locate(doc, e), _unknown_key_error(e) is None) for e in errors]
    (line, key, message), _ = min(located, key=lambda item: (item[1], item[0][0] or 0, item[0][1]))
    raise ConfigError(message, file=doc.file, line=line, key=key or None)


def _unknown_key_error(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """The additionalProperties: false error in ``error`` (also inside a oneOf, e.g. a manifest)."""
    if error.validator == "additionalProperties" and error.validator_value is False:
        return error
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return next((e for e in error.context or () if _unknown_key_error(e) is not None), None)
    return None


def _unknown_key(doc: SourceDocument, error: jsonschema.ValidationError) -> tuple[int | None, str, str]:
    """The mapping's first unknown key (by line), with the closest allowed key as a suggestion."""
    path: Path_ = tuple(error.absolute_path)
    allowed = sorted(error.schema.get("properties", {}))
    patterns = error.schema.get("patternProperties", {})
    unknown = [k for k in error.instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
    first = min(unknown, key=lambda k: doc.line_of((*path, k)) or 0)
    close = difflib.get_close_matches(str(first), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else (f" (allowed: {', '.join(allowed)})" if allowed else "")
    return doc.line_of((*path, first)), format_path(path), f"unknown key {first!r}{hint}"


def _locate(doc: SourceDocument, error: jsonschema.ValidationError) -> tuple[int | None, str, str]:
    """(line, key, message) for one schema error, worded for a person editing YAML."""
    path: Path_ = tuple(error.absolute_path)
    value = error.instance
    if (unknown := _unknown_key_error(error)) is not None:
        return _unknown_key(doc, unknown)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return doc.line_of(path), format_path(path), f"missing required key {missing!r}"
    if "propertyNames" in error.schema_path:
        return doc.line_of((*path, value)), format_path((*path, value)), (
            "service names must be lowercase letters, digits, '.', '_' or '-'"
        )
    if "x-message" in error.schema:
        return doc.line_of(path), format_path(path), error.schema["x-message"].format(value=value)
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return doc.line_of(path), format_path(path), f"expected {_article(expected)}, got {_type_name(value)} {value!r}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return doc.line_of(path), format_path(path), f"must be one of {options}, got {value!r}"
    if error.validator == "oneOf" and path and path[-2:-1] == ("manifests",):
        return doc.line_of(path), format_path(path), "a manifest is a path or {path: ..., containers: [...]}"
    if error.validator == "maxItems":
        return doc.line_of(path), format_path(path), f"at most {error.validator_value} item(s)"
    if error.validator in {"minItems", "minProperties", "minLength"}:
        return doc.line_of(path), format_path(path), "must not be empty"
    if error.validator == "uniqueItems":
        return doc.line_of(path), format_path(path), "contains duplicates"
    return doc.line_of(path), format_path(path), error.message


def _article(word: str) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
             "integer": "an integer", "number": "a number"}
    return " or ".join(names.get(w.strip(), w.strip()) for w in word.split(" or "))


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)

"""The JSON Schema of services.yaml, and its first violation as one line with file:line and key.

services.schema.json is the single source of truth for shape (it is also what editors use). An
unknown key is reported before anything else about its mapping, with a suggestion.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from buildctl.config import valid_marks
from buildctl.config.yaml_hints import azure_macro_hint, split_csv_hint
from buildctl.config.yaml_source import Path_, SourceDocument, format_path, shorten
from buildctl.errors import ConfigError

if TYPE_CHECKING:  # loaded by the first document that needs validating (~60 ms, issue #20)
    import jsonschema


SCHEMA_FILE = str(resources.files("buildctl.config").joinpath("services.schema.json"))


@cache
def schema() -> dict[str, Any]:
    return json.loads(Path(SCHEMA_FILE).read_text())


class TextFields:
    """``wants_text(path)`` for yaml_source.load_yaml: does the schema let the value at ``path`` be a
    string (a tag, a build arg, a label, a path...)? Then a plain scalar there keeps the text written:
    YAML 1.1 would make ``1.10`` 1.1, ``0777`` 511, ``12:30:00`` 45000, ``no`` false, ``2024-01-01`` a
    date. Fields typed boolean or number only (provenance, push_retries) keep YAML's types. A path
    the schema does not describe (an unknown key, x- extensions) is text too: the schema reports it.
    One instance per document: it remembers the subschemas of each mapping and list it walked."""

    def __init__(self) -> None:
        self._at: dict[Path_, list[dict[str, Any]]] = {(): _expand(schema())}

    def __call__(self, path: Path_) -> bool:
        found = self._children(self._subschemas(path[:-1]), path[-1]) if path else self._at[()]
        return not found or any(_takes_string(s) for s in found)

    def _subschemas(self, path: Path_) -> list[dict[str, Any]]:
        if path not in self._at:
            self._at[path] = self._children(self._subschemas(path[:-1]), path[-1])
        return self._at[path]

    @staticmethod
    def _children(parents: list[dict[str, Any]], part: str | int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for parent in parents:
            if isinstance(part, int):
                child = parent.get("items")
                out += _expand(child) if isinstance(child, dict) else []
                continue
            if part in parent.get("properties", {}):
                out += _expand(parent["properties"][part])
                continue
            matched = [sub for pattern, sub in parent.get("patternProperties", {}).items() if re.search(pattern, part)]
            if not matched and isinstance(parent.get("additionalProperties"), dict):
                matched = [parent["additionalProperties"]]
            for sub in matched:
                out += _expand(sub)
        return out


def _expand(sub: dict[str, Any]) -> list[dict[str, Any]]:
    """``sub`` with its $ref followed and its oneOf/anyOf branches listed instead of it."""
    while "$ref" in sub:
        sub = schema()["$defs"][sub["$ref"].rsplit("/", 1)[1]]
    branches = sub.get("oneOf") or sub.get("anyOf")
    if branches:
        return [s for branch in branches for s in _expand(branch)]
    return [sub]


def _takes_string(sub: dict[str, Any]) -> bool:
    kind = sub.get("type")
    return kind is None or kind == "string" or (isinstance(kind, list) and "string" in kind)


def validate(doc: SourceDocument) -> None:
    mark = valid_marks.mark_of(doc.data, rules=(SCHEMA_FILE, __file__))
    if mark is not None and valid_marks.is_marked(mark):
        return  # this very document passed these very rules before
    errors = list(_validator()(schema()).iter_errors(doc.data))
    if not errors:
        if mark is not None:
            valid_marks.mark(mark)
        return
    # An unknown key first, wherever it is: a typo'd key is what makes its mapping "miss" a
    # required one, and "unknown key 'contxt' (did you mean 'context'?)" is the error to fix.
    located = [(_locate(doc, e), _unknown_key_error(e) is None, e) for e in errors]
    (line, key, message), _, error = min(located, key=lambda item: (item[1], item[0][0] or 0, item[0][1]))
    raise ConfigError(message, file=doc.file, line=line, key=key or None, hint=_hint(error))


def _hint(error: jsonschema.ValidationError) -> str | None:
    """How to fix what PyYAML made of a value that looked right to its author."""
    path = tuple(error.absolute_path)
    name = next((str(p) for p in reversed(path) if isinstance(p, str)), "")
    return split_csv_hint(name, error.instance) or azure_macro_hint(error.instance)


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
    return doc.line_of((*path, first)), format_path(path), f"unknown key {shorten(first, UNKNOWN_KEY_CHARS)}{hint}"


# An unknown key may be a whole line of a file that is not a services.yaml (-c /etc/shadow): show
# only its start, enough to find it on the line named.
UNKNOWN_KEY_CHARS = 20


class _Shown(str):
    """A value in an x-message: ``{value!r}`` is shortened (it may be a whole line of any file)."""

    def __repr__(self) -> str:
        return shorten(str(self))


def _x_message(template: str, value: Any) -> str:
    shown = _Shown(value) if isinstance(value, str) else value
    return template.format(value=shown, lower=_Shown(value.lower()) if isinstance(value, str) else value)


def _service_name_problem(name: str, error: jsonschema.ValidationError) -> str:
    if error.validator == "maxLength":
        return (f"service names are at most {error.validator_value} characters, this one has {len(name)} "
                "(a service names files, e.g. <service>.build.log)")
    if not name:
        return "service names must not be empty"
    if matches(error.validator_value, name.lower()):
        return f"service names must be lowercase: {shorten(name.lower())}"
    if not re.match(r"[a-z0-9]", name):
        return f"service names must start with a lowercase letter or a digit, not {name[0]!r}"
    bad = next(c for c in name if not re.match(r"[a-z0-9_.-]", c))
    return f"service names must be lowercase letters, digits, '.', '_' or '-', not {bad!r}"


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
        at = (*path, value)
        if "x-message" in error.schema:
            return doc.line_of(at), format_path(at), _x_message(error.schema["x-message"], value)
        return doc.line_of(at), format_path(at), _service_name_problem(value, error)
    if (error.validator == "pattern" and isinstance(value, str) and "x-case-message" in error.schema
            and matches(error.validator_value, value.lower())):  # only the case is wrong
        return doc.line_of(path), format_path(path), _x_message(error.schema["x-case-message"], value)
    if "x-message" in error.schema:
        return doc.line_of(path), format_path(path), _x_message(error.schema["x-message"], value)
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return doc.line_of(path), format_path(path), f"expected {_article(expected)}, got {_type_name(value)} {shorten(value)}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return doc.line_of(path), format_path(path), f"must be one of {options}, got {shorten(value)}"
    if error.validator == "oneOf" and path and path[-2:-1] == ("manifests",):
        return doc.line_of(path), format_path(path), "a manifest is a path or {path: ..., containers: [...]}"
    if error.validator == "maxItems":
        return doc.line_of(path), format_path(path), f"at most {error.validator_value} item(s)"
    if error.validator in {"minItems", "minProperties", "minLength"}:
        return doc.line_of(path), format_path(path), "must not be empty"
    if error.validator == "uniqueItems" and (pair := _first_repeat(value)):  # the second one, as the loader does
        at = (*path, pair[0])
        return doc.line_of(at), format_path(at), f"duplicate {shorten(value[pair[0]])} (the same as item {pair[1]})"
    if error.validator == "pattern":
        return doc.line_of(path), format_path(path), f"{shorten(value)} does not match {error.validator_value}"
    return doc.line_of(path), format_path(path), error.message.splitlines()[0]


def _first_repeat(items: list[Any]) -> tuple[int, int] | None:
    """(i, j): item i is item j again (j < i), as JSON Schema's uniqueItems sees it (true is not 1)."""
    same = lambda a, b: a == b and isinstance(a, bool) == isinstance(b, bool)
    return next(((i, j) for i in range(len(items)) for j in range(i) if same(items[i], items[j])), None)


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any):
    """JSON Schema's pattern, with ``$`` at the end meaning the end of the text, as in ECMA-262
    (Python's ``$`` also matches before a trailing newline: ``"vote\\n"`` would pass)."""
    import jsonschema

    if isinstance(instance, str) and not matches(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def matches(pattern: str, text: str) -> bool:
    anchored = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    return re.search(anchored, text) is not None


@cache
def _validator() -> type[jsonschema.protocols.Validator]:
    import jsonschema

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _pattern})


def _article(word: str) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
             "integer": "an integer", "number": "a number"}
    return " or ".join(names.get(w.strip(), w.strip()) for w in word.split(" or "))


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)

"""config/valid_marks.py: a services.yaml that passed the schema is not validated again (no
jsonschema import); a failing one is never marked, and any change to the document is another mark."""

from __future__ import annotations

from pathlib import Path

from buildctl.config import valid_marks
from tests.helpers.cli import loaded_modules, run_cli

GOOD = """registry: 127.0.0.1:5000
tag: v1
services:
  vote: {context: vote, image: demo/vote}
"""


def _project(tmp_path: Path, text: str) -> Path:
    (tmp_path / "vote").mkdir(exist_ok=True)
    (tmp_path / "vote" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "services.yaml").write_text(text)
    return tmp_path / "services.yaml"


def test_a_valid_document_is_validated_once(tmp_path: Path) -> None:
    config, env = _project(tmp_path, GOOD), {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    for n, validated in ((1, True), (2, False)):
        result = run_cli("plan", "-c", str(config), env=env, modules=tmp_path / f"modules{n}")
        assert result.code == 0, result.output
        assert ("jsonschema" in loaded_modules(tmp_path / f"modules{n}")) is validated
    assert len(list((tmp_path / "cache" / "buildctl" / valid_marks.FOLDER).iterdir())) == 1


def test_an_invalid_document_is_reported_every_time(tmp_path: Path) -> None:
    config, env = _project(tmp_path, GOOD.replace("context: vote", "contxt: vote")), {"XDG_CACHE_HOME": str(tmp_path / "c")}
    for _ in range(2):
        result = run_cli("plan", "-c", str(config), env=env)
        assert result.code == 2 and "services.yaml:4" in result.stderr and "contxt" in result.stderr, result.output
    assert not (tmp_path / "c" / "buildctl" / valid_marks.FOLDER).exists()


def test_the_mark_changes_with_any_value_and_type() -> None:
    rules = (valid_marks.__file__,)
    doc = {"tag": "v1", "services": {"vote": {"context": "vote", "push_retries": 1}}}
    marks = {valid_marks.mark_of(d, rules=rules) for d in (
        doc,
        {**doc, "tag": "v2"},
        {"tag": "v1", "services": {"vote": {"context": "vote", "push_retries": True}}},  # true is not 1
        {"tag": "v1", "services": {"vote": {"context": "vote", "push_retries": 1.0}}},
        {"tag": "v1", "services": {"vote": {"context": "vote", "push_retries": "1"}}},
    )}
    assert len(marks) == 5 and None not in marks
    assert valid_marks.mark_of({"tag": "v1", "services": {"vote": {"context": "vote", "push_retries": 1}}},
                               rules=rules) == valid_marks.mark_of(doc, rules=rules)  # key order is not a change
    assert valid_marks.mark_of({1: "x"}, rules=rules) is None  # {1: x} and {"1": x} would print alike


def test_a_changed_schema_is_another_mark(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text("{}")
    first = valid_marks.mark_of({"tag": "v1"}, rules=(str(schema),))
    schema.write_text('{"type": "object"}')
    valid_marks._rules_digest.cache_clear()
    assert valid_marks.mark_of({"tag": "v1"}, rules=(str(schema),)) != first

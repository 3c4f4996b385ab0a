"""`buildctl schema`: the JSON Schema buildctl validates services.yaml with, on stdout."""

from __future__ import annotations

import json

import jsonschema
import yaml

from buildctl.config.schema import schema
from tests.helpers.cli import PROJECT, run_cli


def test_prints_the_schema_as_json() -> None:
    result = run_cli("schema")
    assert result.code == 0 and result.stderr == ""
    printed = json.loads(result.stdout)
    assert printed == schema()
    assert printed == json.loads((PROJECT / "buildctl" / "config" / "services.schema.json").read_text())


def test_the_printed_schema_validates_the_sample_project() -> None:
    # What an editor does with it: the repository's own services.yaml is valid, a typo is not.
    printed = json.loads(run_cli("schema").stdout)
    validator = jsonschema.Draft202012Validator(printed)
    sample = yaml.safe_load((PROJECT / "services.yaml").read_text())
    assert list(validator.iter_errors(sample)) == []
    sample["services"]["vote"]["contxt"] = sample["services"]["vote"].pop("context")
    assert {e.validator for e in validator.iter_errors(sample)} >= {"additionalProperties", "required"}

"""YAML scalars as services.yaml means them: text where the schema wants text (YAML 1.1 would turn
`1.10` into 1.1, `0777` into 511, `no` into false, `2024-01-01` into a date), typed values where it
wants booleans or numbers, and one exit-2 line for anything the constructor cannot read (an
unknown or unsafe tag, `!!int abc`, a date like 2024-13-45) instead of an internal error (exit 3).
Both parsers (libyaml and the pure-Python one) give the same answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.config import yaml_source
from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import named, run_cli

S = "services:\n  api:\n    context: api\n    image: team/api\n"


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_source, "_FAST_LOADER", None)
    return request.param


def load(project: Path, text: str, **kw):
    (project / "services.yaml").write_text(text)
    return load_config(project / "services.yaml", environ={}, **kw)


def refused(project: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> str:
    monkeypatch.chdir(project)
    (project / "services.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Path("services.yaml"), environ={})
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in info.value.message and "<unicode string>" not in info.value.message
    return info.value.message


CANNOT_READ = [
    ("tag: !env FOO\n" + S, "services.yaml:1: tag: cannot read '!env FOO': could not determine a constructor for the tag '!env'"),
    ("tag: !!python/object:os.system ls\n" + S,
     ("services.yaml:1: tag: cannot read '!!python/object:os.system ls': could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/object:os.system'")),
    ("tag: !!int abc\n" + S, "services.yaml:1: tag: cannot read '!!int abc': not a valid int (invalid literal for int() with base 10: 'abc')"),
    ("tag: !!float x\n" + S, "services.yaml:1: tag: cannot read '!!float x': not a valid float (could not convert string to float: 'x')"),
    ("tag: !!bool maybe\n" + S, "services.yaml:1: tag: cannot read '!!bool maybe': not a valid bool"),
    ("tag: !!map x\n" + S, "services.yaml:1: tag: cannot read '!!map x': expected a mapping node, but found scalar"),
    ("tag: !!timestamp soon\n" + S, "services.yaml:1: tag: cannot read '!!timestamp soon': not a valid timestamp"),
    (S + "    build_args: {D: !!timestamp '2024-02-30'}\n",
     "services.yaml:5: services.api.build_args.D: cannot read '!!timestamp 2024-02-30': not a valid timestamp (day is out of range for month)"),
    # Where a date really is read (a field that is not text), a bad one is one line too.
    ("gitops: {repo: g, push_retries: 2024-13-45}\n" + S,
     "services.yaml:1: gitops.push_retries: cannot read '2024-13-45': not a valid timestamp (month must be in 1..12)"),
    ("build: {provenance: 2024-02-30}\n" + S,
     "services.yaml:1: build.provenance: cannot read '2024-02-30': not a valid timestamp (day is out of range for month)"),
    # Tags on keys.
    ("!!python/name:os.system x: 1\n" + S,
     ("services.yaml:1: cannot read '!!python/name:os.system x': could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/name:os.system'")),
    (S + "    build_args: {!!int abc: x}\n",
     "services.yaml:5: services.api.build_args: cannot read '!!int abc': not a valid int (invalid literal for int() with base 10: 'abc')"),
    (S + "    build_args: {!!int '5': x}\n", "services.yaml:5: services.api.build_args: keys must be strings, got integer 5 (quote it)"),
    (S + '    dockerfile: "api/\\0Dockerfile"\n', "services.yaml:5: services.api.dockerfile: contains a NUL character (\\0)"),
]


@pytest.mark.parametrize(("text", "message"), CANNOT_READ, ids=[f"cannot-read-{i:02d}" for i in range(len(CANNOT_READ))])
def test_what_the_constructor_cannot_read_is_one_line(project_dir: Path, monkeypatch, parser: str, text: str,
                                                      message: str) -> None:
    assert refused(project_dir, monkeypatch, text) == message


def test_plain_scalars_in_text_fields_stay_as_written(project_dir: Path, parser: str) -> None:
    cfg = load(project_dir, """\
tag: 2024-01-01
build: {labels: {version: 1.10, built: 2024-02-30}, provenance: no, sbom: yes}
gitops: {repo: g, push_retries: 010, branch: 2024}
services:
  api:
    context: api
    image: team/api
    target: 1.10
    build_args: {PY: 3.10, VERSION: 1.10, OCT: 0777, T: 12:30:00, C: 0x1F, N: no, Y: Yes, D: 2024-13-45, E: 1e3, I: 80}
    smoke: [python3, -c, 1.10]
""")
    api = named(cfg.services, "api")
    assert dict(api.build_args) == {"PY": "3.10", "VERSION": "1.10", "OCT": "0777", "T": "12:30:00", "C": "0x1F",
                                    "N": "no", "Y": "Yes", "D": "2024-13-45", "E": "1e3", "I": "80"}
    assert dict(cfg.build.labels) == {"version": "1.10", "built": "2024-02-30"}
    assert (cfg.tag, api.target, api.smoke) == ("2024-01-01", "1.10", ("python3", "-c", "1.10"))
    assert cfg.gitops.branch == "2024"
    # Fields typed boolean or number keep YAML's types.
    assert (cfg.build.provenance, cfg.build.sbom, cfg.gitops.push_retries) == (False, True, 8)


def test_quoted_and_explicitly_tagged_scalars_are_what_they_say(project_dir: Path, parser: str) -> None:
    cfg = load(project_dir, S + "    build_args: {A: '1.10', B: !!str 0777, C: \"no\", F: !!bool 'yes'}\n")
    assert dict(named(cfg.services, "api").build_args) == {"A": "1.10", "B": "0777", "C": "no", "F": "true"}


def test_keys_are_the_names_written(project_dir: Path, parser: str) -> None:
    cfg = load(project_dir, "services:\n  yes: {context: api, image: team/yes}\n  1.10: {context: web, image: team/w, "
                            "build_args: {ON: x, 2024-02-30: y, 0777: z}}\n")
    assert [s.name for s in cfg.services] == ["yes", "1.10"]
    assert dict(named(cfg.services, "1.10").build_args) == {"ON": "x", "2024-02-30": "y", "0777": "z"}


def test_a_null_is_still_refused_where_text_is_wanted(project_dir: Path, monkeypatch, parser: str) -> None:
    assert refused(project_dir, monkeypatch, "tag: ~\n" + S) == "services.yaml:1: tag: expected a string, got null None"


def test_tags_on_mappings_and_lists_are_refused_not_ignored(project_dir: Path, monkeypatch, parser: str) -> None:
    assert refused(project_dir, monkeypatch, "tag: !!python/object/apply:os.system [ls]\n" + S) == (
        "services.yaml:1: tag: cannot read '!!python/object/apply:os.system [...]': tags on mappings and lists are not supported")
    assert refused(project_dir, monkeypatch, "x-d: !!set {a: null}\n" + S) == (
        "services.yaml:1: x-d: cannot read '!!set {...}': tags on mappings and lists are not supported")


def test_cli_cannot_read_is_one_line_and_exit_2(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("tag: !!python/object:os.system ls\n" + S)
    result = run_cli("plan", cwd=project_dir, timeout=60)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        ("buildctl: error: services.yaml:1: tag: cannot read '!!python/object:os.system ls': could not determine "
        "a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'")]

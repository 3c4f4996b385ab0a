"""Unknown keys in services.yaml: named, on their own line, with a suggestion, before any other
error about their mapping (issue #15: a typo'd `contxt` used to report "missing required key
'context'" on the mapping's line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.config.schema import schema
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import run_cli

# (services.yaml, exact message): every nesting level that has additionalProperties: false.
CASES = [
    # The example: the typo hides `context`, so the mapping also misses a required key.
    ("services:\n  vote:\n    contxt: vote\n    image: voting-app/vote\n",
     "services.yaml:3: services.vote: unknown key 'contxt' (did you mean 'context'?)"),
    ("regsitry: x.io\nservices:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:1: unknown key 'regsitry' (did you mean 'registry'?)"),
    # `services` itself misspelled: unknown key first, not "missing required key 'services'".
    ("tag: v1\nservice:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:2: unknown key 'service' (did you mean 'services'?)"),
    # gitops misses `repo` because it is spelled `rep`.
    ("gitops:\n  branch: main\n  rep: ../gitops.git\nservices:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:3: gitops: unknown key 'rep' (did you mean 'repo'?)"),
    ("gitops:\n  repo: ../gitops.git\n  author:\n    mail: ci@example.com\nservices:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:4: gitops.author: unknown key 'mail' (did you mean 'email'?)"),
    ("builder:\n  name: ci\n  drivr: docker-container\nservices:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:3: builder: unknown key 'drivr' (did you mean 'driver'?)"),
    (("builder:\n  driver: remote\n  nodes:\n    - endpoint: tcp://a:1234\n      platfroms: [linux/arm64]\n"
      "services:\n  vote: {context: vote, image: voting-app/vote}\n"),
     "services.yaml:5: builder.nodes[0]: unknown key 'platfroms' (did you mean 'platforms'?)"),
    # A wrong type earlier in the file still comes second.
    ("build:\n  provenance: yes-please\n  no-cache: true\nservices:\n  vote: {context: vote, image: voting-app/vote}\n",
     "services.yaml:3: build: unknown key 'no-cache' (did you mean 'no_cache'?)"),
    # Inside a oneOf (a manifest is a path or a mapping): the key, not "a manifest is a path or ...".
    (("services:\n  vote:\n    context: vote\n    image: voting-app/vote\n    manifests:\n"
      "      - path: k8s/vote.yaml\n        container: [vote]\n"),
     "services.yaml:7: services.vote.manifests[0]: unknown key 'container' (did you mean 'containers'?)"),
    # Two unknown keys: the first by line.
    ("services:\n  vote:\n    context: vote\n    imge: voting-app/vote\n    targt: app\n",
     "services.yaml:4: services.vote: unknown key 'imge' (did you mean 'image'?)"),
]


def _message(tmp_path: Path, monkeypatch, text: str) -> ConfigError:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "services.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Path("services.yaml"), environ={})
    return info.value


@pytest.mark.parametrize(("text", "message"), CASES, ids=[m.split(": ", 1)[1].split(":")[0] for _, m in CASES])
def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path, monkeypatch, text: str, message: str) -> None:
    error = _message(tmp_path, monkeypatch, text)
    assert error.message == message
    assert error.exit_code == EXIT_BAD_INPUT


def test_without_a_close_match_the_allowed_keys_are_listed(tmp_path: Path, monkeypatch) -> None:
    error = _message(tmp_path, monkeypatch, "colour: red\nservices:\n  vote: {context: vote, image: voting-app/vote}\n")
    allowed = ", ".join(sorted(schema()["properties"]))
    assert error.message == f"services.yaml:1: unknown key 'colour' (allowed: {allowed})"
    error = _message(tmp_path, monkeypatch, "services:\n  vote: {context: vote, image: voting-app/vote, zzz: 1}\n")
    assert error.message.startswith("services.yaml:2: services.vote: unknown key 'zzz' (allowed: build_args, context, ")


def test_extension_keys_are_not_unknown(tmp_path: Path, monkeypatch) -> None:
    # x-* is allowed at the top level (patternProperties): the typo next to it is the only unknown key.
    error = _message(tmp_path, monkeypatch, "x-base: &b {image: voting-app/vote}\ntagg: v1\n"
                     "services:\n  vote: {context: vote, image: voting-app/vote}\n")
    assert error.message == "services.yaml:2: unknown key 'tagg' (did you mean 'tag'?)"


def test_cli_reports_it_with_exit_2(tmp_path: Path) -> None:
    (tmp_path / "services.yaml").write_text(CASES[0][0])
    result = run_cli("plan", cwd=tmp_path)
    assert result.code == EXIT_BAD_INPUT
    assert result.stdout == ""
    assert result.stderr == f"buildctl: error: {CASES[0][1]}\n"

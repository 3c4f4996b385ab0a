"""The config mistakes PyYAML and the schema word without a fix get one (issue #18): an unquoted
buildx CSV spec, Azure's $(Build.BuildId) macro syntax, a tab in the indentation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.config.yaml_hints import azure_macro_hint, split_csv_hint
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import run_cli

SERVICES = "services:\n  api: {context: api, image: team/api}\n"


def refused(project: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    path = project / "services.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ=environ or {})
    return raised.value


def test_an_unquoted_cache_spec_is_told_to_quote(project_dir: Path) -> None:
    error = refused(project_dir, "build:\n  cache_to: [type=registry,ref=reg.example/c,mode=max]\n" + SERVICES)
    assert error.message.endswith("/services.yaml:2: build.cache_to: at most 1 item(s)")
    assert error.hint.startswith('quote it: cache_to: ["type=registry,ref=reg.example/c,mode=max"]')
    assert "3 items" in error.hint


def test_the_quoted_cache_spec_loads(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text('build:\n  cache_to: ["type=registry,ref=reg.example/c,mode=max"]\n'
                                               + SERVICES)
    assert load_config(project_dir / "services.yaml", environ={}).build.cache_to == (
        "type=registry,ref=reg.example/c,mode=max",)


def test_an_azure_macro_is_refused_with_the_variable_to_use(project_dir: Path) -> None:
    error = refused(project_dir, "tag: $(Build.BuildId)\n" + SERVICES, environ={"BUILD_BUILDID": "4711"})
    assert "services.yaml:1: tag: $(Build.BuildId) is not expanded" in error.message
    assert "${BUILD_BUILDID}" in error.hint and "environment variable BUILD_BUILDID" in error.hint
    # Anywhere, not only in the tag: a build arg would otherwise reach the build as the literal text.
    error = refused(project_dir, "services:\n  api: {context: api, image: team/api, build_args: {V: "
                                 "'v-$(Build.SourceVersion)'}}\n")
    assert "services.api.build_args.V" in error.message and "${BUILD_SOURCEVERSION}" in error.hint


def test_the_hinted_spelling_works(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("tag: ${BUILD_BUILDID}\n" + SERVICES)
    assert load_config(project_dir / "services.yaml", environ={"BUILD_BUILDID": "4711"}).tag == "4711"
    (project_dir / "services.yaml").write_text("services:\n  api: {context: api, image: team/api, "
                                               "smoke: [sh, -c, 'echo $$(Build.X) $(uname -m)']}\n")
    smoke = load_config(project_dir / "services.yaml", environ={}).services[0].smoke
    assert smoke == ("sh", "-c", "echo $(Build.X) $(uname -m)")  # $$ keeps it; a shell's $(...) is no macro


def test_an_undotted_macro_gets_the_hint_where_it_is_invalid(project_dir: Path) -> None:
    error = refused(project_dir, "tag: $(releaseTag)\n" + SERVICES)
    assert "invalid tag '$(releaseTag)'" in error.message and "${RELEASETAG}" in error.hint


@pytest.mark.parametrize(("text", "line", "column"), [
    ("services:\n  api:\n\tcontext: api\n    image: team/api\n", 3, 1),
    ("services:\n  api:\n    context: api\n    image: team/api\n    build_args:\n  \t  A: b\n", 6, 3),
])
def test_a_tab_in_the_indentation_is_one_message(project_dir: Path, text: str, line: int, column: int) -> None:
    error = refused(project_dir, text)
    assert error.message.endswith(f"/services.yaml:{line}: a tab in the indentation (column {column}): "
                                  "YAML indents with spaces only")
    assert error.hint == "replace the tab with spaces"


def test_hints_stay_silent_on_other_values() -> None:
    assert split_csv_hint("cache_to", ["type=registry,ref=a", "type=local,dest=b"]) is None
    assert split_csv_hint("platforms", ["linux/amd64", "linux/arm64"]) is None
    assert split_csv_hint("cache_to", ["type=registry"]) is None
    assert azure_macro_hint("${BUILD_BUILDID}") is None and azure_macro_hint(3) is None


def test_the_cli_prints_message_and_hint(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("tag: $(Build.BuildId)\n" + SERVICES)
    result = run_cli("plan", "-f", str(project_dir / "services.yaml"), cwd=project_dir)
    assert result.code == EXIT_BAD_INPUT and result.stdout == ""
    assert result.stderr.splitlines() == [
        "buildctl: error: services.yaml:1: tag: $(Build.BuildId) is not expanded (Azure Pipelines macro syntax)",
        "  hint: $(Build.BuildId) is Azure Pipelines macro syntax, never expanded in services.yaml: write "
        "${BUILD_BUILDID} (Azure exports it as the environment variable BUILD_BUILDID) or ${BUILD_BUILDID:-default}",
    ]

"""`buildctl rollback`: bad input is one line, exit 2, before the registry or Git is touched; an
unreachable registry is one line, exit 1, and Git is left alone (no engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.gitops import REG, deployment, git, make_remote


@pytest.fixture
def project(project_dir: Path) -> Path:
    make_remote(project_dir, {"apps/api.yaml": deployment("api", tag="42")})
    (project_dir / "services.yaml").write_text(
        "gitops: {repo: remote.git, pin_digest: true}\n"
        "services:\n"
        "  api:\n    context: api\n    image: voting-app/api\n    manifests: [apps/api.yaml]\n"
        "  web:\n    context: web\n    image: voting-app/web\n"
    )
    return project_dir


def tip(project: Path) -> str:
    return git("rev-parse", "main", cwd=project / "remote.git").strip()


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("buildctl: error:")]


def test_an_invalid_tag_is_refused_before_reading_services_yaml(tmp_path: Path) -> None:
    result = run_cli("rollback", "v1/rc", cwd=tmp_path)  # no services.yaml here at all
    assert result.code == 2, result.output
    assert errors(result.stderr) == ["buildctl: error: invalid tag 'v1/rc': tags are 1-128 characters of letters, "
                                     "digits, '_', '.', '-' (not starting with '.' or '-')"]


def test_without_a_gitops_section_there_is_nothing_to_roll_back(project: Path) -> None:
    text = (project / "services.yaml").read_text().replace("gitops: {repo: remote.git, pin_digest: true}\n", "")
    (project / "services.yaml").write_text(text)
    result = run_cli("rollback", "41", cwd=project)
    assert result.code == 2, result.output
    assert errors(result.stderr) == ["buildctl: error: `buildctl rollback` needs a gitops: section in services.yaml"]


def test_an_unknown_service_is_bad_input_and_git_is_untouched(project: Path) -> None:
    before = tip(project)
    result = run_cli("rollback", "41", "apii", cwd=project)
    assert result.code == 2, result.output
    assert errors(result.stderr) == ["buildctl: error: SERVICE: unknown service 'apii' (services: api, web)"]
    assert tip(project) == before


def test_an_unreachable_registry_is_one_error_and_git_is_untouched(project: Path) -> None:
    before = tip(project)
    result = run_cli("rollback", "41", "--registry", "127.0.0.1:9", "--record", "r.json", cwd=project, timeout=120)
    assert result.code == 1, result.output
    [line] = errors(result.stderr)
    assert "127.0.0.1:9" in line
    assert tip(project) == before and not (project / "r.json").exists()
    assert f"{REG}/api:42" in git("show", "main:apps/api.yaml", cwd=project / "remote.git")


def test_services_without_manifests_have_nothing_to_roll_back(project: Path) -> None:
    result = run_cli("rollback", "41", "web", "--registry", "127.0.0.1:9", cwd=project)  # never asked
    assert result.code == 2, result.output
    assert errors(result.stderr) == ["buildctl: error: no selected service has `manifests:` to roll back (web)"]

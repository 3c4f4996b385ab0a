"""A default on ``ARG TARGETARCH`` / ``TARGETPLATFORM`` / ``TARGETOS`` / ``TARGETVARIANT`` (it replaces
BuildKit's per-platform value: every image then gets one platform's binaries): an error with
Dockerfile:LINE from the lint (``doctor --dockerfile``), and the build is refused before anything
is built, logged in to or pushed."""

from __future__ import annotations

import json

import httpx
import pytest

from buildctl.errors import ConfigError
from buildctl.inspect.dockerfile import lint, preflight_findings
from buildctl.inspect.dockerfile_parse import platform_arg_defaults
from tests.helpers.cli import REGISTRY, run_cli

BOTH = ("linux/amd64", "linux/arm64")
# The shape seen in the wild: a download step that picks the binary by TARGETARCH.
DOWNLOAD = """\
FROM alpine:3.20
ARG TARGETARCH=amd64
RUN wget -O /usr/local/bin/tool https://example.com/tool-linux-${TARGETARCH}
ENTRYPOINT ["tool"]
"""


def errors(text: str, target: str | None = None) -> list[tuple[str, str, str]]:
    return [(f.location, f.code, f.stage) for f in lint(text, path="Dockerfile", platforms=BOTH,
                                                        native="linux/amd64", target=target)
            if f.severity == "error"]


def test_a_default_on_target_arch_is_an_error_at_its_line() -> None:
    findings = lint(DOWNLOAD, path="Dockerfile", platforms=BOTH, native="linux/amd64")
    error = next(f for f in findings if f.code == "platform-arg-default")
    assert (error.location, error.severity, error.stage) == ("Dockerfile:2", "error", "#0")
    assert error.message.startswith("`ARG TARGETARCH=amd64` gives BuildKit's per-platform argument a default")
    assert error.message.endswith("declare it without a value: `ARG TARGETARCH`")


@pytest.mark.parametrize(("text", "expected"), [
    ("ARG TARGETPLATFORM=linux/amd64\nFROM alpine\n", [("Dockerfile:1", "platform-arg-default", "global scope")]),
    ("FROM alpine AS app\nARG TARGETOS=linux TARGETARCH=arm64\n",
     [("Dockerfile:2", "platform-arg-default", "app"), ("Dockerfile:2", "platform-arg-default", "app")]),
    ('FROM alpine\nARG TARGETVARIANT=""\n', [("Dockerfile:2", "platform-arg-default", "#0")]),  # empty is a value too
    ("FROM alpine\nARG \\\n    TARGETARCH=amd64\n", [("Dockerfile:2", "platform-arg-default", "#0")]),  # continued
    # no default: the per-platform value; other names with defaults are fine; a comment is not an ARG
    ("ARG TARGETARCH\nFROM alpine\nARG TARGETARCH\nARG BUILDARCH=amd64\nARG ARCH=amd64\n# ARG TARGETARCH=amd64\n", []),
    ("FROM alpine\nARG targetarch=amd64\n", []),  # ARG names are case-sensitive: not BuildKit's
])
def test_which_args_count(text: str, expected: list) -> None:
    assert errors(text) == expected


def test_only_stages_the_build_runs_count() -> None:
    text = "FROM alpine AS unused\nARG TARGETARCH=amd64\nFROM alpine AS app\nARG TARGETARCH\n"
    assert errors(text) == []
    assert errors(text, target="unused") == [("Dockerfile:2", "platform-arg-default", "unused")]
    copied = "FROM alpine AS tools\nARG TARGETARCH=amd64\nRUN get-tool\nFROM alpine\nCOPY --from=tools /t /t\n"
    assert errors(copied) == [("Dockerfile:2", "platform-arg-default", "tools")]


def test_preflight_findings_are_these_errors_and_nothing_else() -> None:
    pinned = "FROM --platform=linux/amd64 alpine\n"  # an error in the lint, left to verification at build time
    assert preflight_findings(pinned, path="Dockerfile") == ()
    assert [f.line for f in preflight_findings(DOWNLOAD, path="Dockerfile")] == [2]
    assert [(a.stage, a.line, a.name, a.default) for a in platform_arg_defaults(DOWNLOAD)] == [(0, 2, "TARGETARCH", "amd64")]
    with pytest.raises(ConfigError, match="target stage 'nope' not found"):
        preflight_findings(DOWNLOAD, path="Dockerfile", target="nope")


def _project(root, dockerfile: str, image: str):
    (root / "api").mkdir()
    (root / "api" / "Dockerfile").write_text(dockerfile)
    (root / "services.yaml").write_text(f"services:\n  api: {{context: api, image: {image}}}\n")
    return root / "services.yaml"


def test_doctor_dockerfile_reports_it(tmp_path) -> None:
    config = _project(tmp_path, DOWNLOAD, "team/api")
    result = run_cli("doctor", "--dockerfile", "--json", "-c", str(config))
    assert result.code == 1, result.output
    findings = json.loads(result.stdout)["services"][0]["findings"]
    assert [(f["file"], f["line"], f["code"], f["severity"]) for f in findings if f["severity"] == "error"] == [
        ("api/Dockerfile", 2, "platform-arg-default", "error")]
    human = run_cli("doctor", "--dockerfile", "-c", str(config))
    assert "api/Dockerfile:2 platform-arg-default: `ARG TARGETARCH=amd64`" in human.stdout, human.output


@pytest.mark.engine
def test_a_build_with_it_is_refused_before_anything_is_built(tmp_path) -> None:
    repository = f"buildctl-test-arg-default/api-{tmp_path.name[-12:].lower().replace('_', '-')}"
    config = _project(tmp_path, DOWNLOAD.replace("alpine:3.20", "scratch").replace("RUN wget", "# RUN wget"), repository)
    result = run_cli("build", "-c", str(config), "--tag", "1")
    assert result.code == 2, result.output
    assert result.stderr.startswith("buildctl: error: api/Dockerfile:2: service api: `ARG TARGETARCH=amd64`"), result.stderr
    assert "buildctl doctor --dockerfile" in result.output  # the hint
    tags = httpx.get(f"http://{REGISTRY}/v2/{repository}/tags/list", timeout=10)
    assert tags.status_code == 404  # nothing was pushed
    assert not (tmp_path / ".buildctl").exists()  # no run started: no state folder, build log or record

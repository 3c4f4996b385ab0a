"""dockerfile_lint: which stages run RUN steps under QEMU, on real Dockerfile shapes (pure)."""

from __future__ import annotations

import json

import pytest

from buildctl.errors import ConfigError
from buildctl.inspect.dockerfile import BUILD, TARGET, Finding, lint, parse
from tests.helpers.cli import PROJECT, run_cli

BOTH = ("linux/amd64", "linux/arm64")
AMD64 = "linux/amd64"


def found(text: str, *, platforms=BOTH, native=AMD64, target=None) -> list[tuple[int, str, str]]:
    return [(f.line, f.code, f.stage) for f in lint(text, path="Dockerfile", platforms=platforms, native=native,
                                                    target=target)]


GO_BUILDER = """\
FROM golang:1.22 AS build
WORKDIR /src
COPY . .
RUN go mod download
RUN go build -o /out/app ./cmd/app

FROM scratch
COPY --from=build /out/app /app
ENTRYPOINT ["/app"]
"""


def test_the_sample_services_run_their_import_check_under_emulation() -> None:
    for service in ("vote", "result", "worker"):
        path = f"{service}/Dockerfile"
        findings = lint((PROJECT / path).read_text(), path=path, platforms=BOTH, native=AMD64)
        assert [(f.location, f.code, f.severity) for f in findings] == [(f"{path}:17", "emulated-image-stage", "info")]
        assert "1 RUN step (line 17) runs under QEMU emulation for linux/arm64" in findings[0].message


def test_a_builder_stage_copied_from_should_run_on_the_build_platform() -> None:
    findings = lint(GO_BUILDER, path="svc/Dockerfile", platforms=BOTH, native=AMD64)
    assert findings == (Finding(
        "svc/Dockerfile", 1, "emulated-build-stage", "warning", "build",
        "stage build: 2 RUN steps (lines 4, 5) run under QEMU emulation for linux/arm64, yet only its files are "
        "used (COPY --from at line 8): `FROM --platform=$BUILDPLATFORM` runs it natively; cross-compile for "
        "TARGETOS/TARGETARCH (e.g. GOOS=$TARGETOS GOARCH=$TARGETARCH go build)"),)  # fmt: skip


@pytest.mark.parametrize("flag", ["--platform=$BUILDPLATFORM", "--platform=${BUILDPLATFORM}",
                                  "--platform $BUILDPLATFORM"])
def test_a_cross_compiling_builder_is_clean(flag: str) -> None:
    assert found(GO_BUILDER.replace("FROM golang:1.22", f"FROM {flag} golang:1.22")) == []
    assert parse(GO_BUILDER.replace("FROM golang", f"FROM {flag} golang"), path="D")[0].platform == BUILD


def test_nothing_is_emulated_when_every_platform_is_native() -> None:
    assert found(GO_BUILDER, platforms=(AMD64,)) == []
    # On an arm64 machine it is the amd64 image that is emulated.
    findings = lint(GO_BUILDER, path="D", platforms=BOTH, native="linux/arm64")
    assert "emulation for linux/amd64," in findings[0].message


def test_a_final_stage_pinned_to_one_platform_is_an_error() -> None:
    text = "FROM --platform=$BUILDPLATFORM debian:12\nCOPY app /app\n"
    assert [(f.line, f.code, f.severity) for f in lint(text, path="D", platforms=BOTH, native=AMD64)] == [
        (1, "pinned-platform", "error")]
    pinned = "ARG PLAT=linux/amd64\nFROM --platform=${PLAT} debian:12 AS final\nRUN true\n"
    findings = lint(pinned, path="D", platforms=BOTH, native=AMD64)
    assert [(f.line, f.code) for f in findings] == [(2, "pinned-platform")]  # amd64 on amd64: nothing emulated
    assert "the images for linux/arm64 would carry linux/amd64 binaries" in findings[0].message
    # Pinned to a foreign platform: its RUN is emulated as well.
    assert found(pinned.replace("linux/amd64", "linux/arm64")) == [(2, "pinned-platform", "final"),
                                                                   (3, "emulated-image-stage", "final")]
    assert found(pinned, platforms=(AMD64,)) == []  # an amd64-only image pinned to amd64 is fine


def test_stages_inherit_the_platform_of_the_stage_they_are_built_from() -> None:
    text = ("FROM --platform=$BUILDPLATFORM node:20 AS tools\nRUN npm ci\n"
            "FROM tools AS assets\nRUN npm run build\n"
            "FROM debian:12 AS base\nRUN apt-get update\n"
            "FROM base\nRUN useradd app\nCOPY --from=assets /dist /srv\n")  # fmt: skip
    stages = parse(text, path="D")
    assert [s.platform for s in stages] == [BUILD, BUILD, TARGET, TARGET]
    # base and the final stage both become the image: both are reported where their RUN steps are.
    assert found(text) == [(6, "emulated-image-stage", "base"), (8, "emulated-image-stage", "#3")]


def test_only_stages_the_target_needs_count() -> None:
    text = ("FROM alpine AS unused\nRUN make everything\n"
            "FROM alpine AS test\nRUN make test\n"
            "FROM alpine AS build\nRUN make\n"
            "FROM scratch AS prod\nCOPY --from=2 /out /\n")  # fmt: skip
    assert found(text) == [(5, "emulated-build-stage", "build")]  # COPY --from=2: by index
    assert found(text, target="test") == [(4, "emulated-image-stage", "test")]
    with pytest.raises(ConfigError, match="target stage 'nope' not found"):
        found(text, target="nope")


def test_run_mount_from_a_stage_makes_it_needed() -> None:
    text = ("FROM alpine AS deps\nRUN apk add build-base\n"
            "FROM --platform=$BUILDPLATFORM alpine\n"
            "RUN --mount=type=bind,from=deps,source=/usr,target=/deps ls /deps\n")  # fmt: skip
    assert found(text, target=None)[0][:2] == (1, "emulated-build-stage")
    assert "COPY --from at line 4" in lint(text, path="D", platforms=BOTH, native=AMD64)[0].message


def test_continuations_comments_heredocs_and_the_escape_directive() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "# escape=`\n"
        "\n"
        "FROM `\n"
        "  # a comment inside a continuation is dropped`\n"
        "  --platform=$BUILDPLATFORM golang AS build\n"
        "RUN <<EOF\n"
        "FROM alpine\n"
        "RUN not an instruction\n"
        "EOF\n"
        "RUN <<-END cat > /x\n"
        "\tFROM nope\n"
        "\tEND\n"
        "FROM alpine\n"
        "COPY --from=build /x /x\n"
        "RUN apk add tini `\n"
        "    curl\n"
    )
    stages = parse(text, path="D")
    assert [(s.line, s.name, s.platform, s.runs) for s in stages] == [
        (4, "build", BUILD, (7, 11)), (14, None, TARGET, (16,))]
    assert found(text) == [(16, "emulated-image-stage", "#1")]


def test_a_heredoc_marker_without_its_closing_line_is_not_a_heredoc() -> None:
    text = "FROM alpine AS build\nRUN echo 'a <<b' > /x\nFROM alpine\nCOPY --link --from=build /x /x\nRUN true\n"
    assert [(s.line, s.runs, s.copies) for s in parse(text, path="D")] == [(1, (2,), ()), (3, (5,), (("build", 4),))]


def test_an_unresolvable_platform_is_not_guessed() -> None:
    text = "ARG PLAT\nFROM --platform=$PLAT alpine AS build\nRUN make\nFROM alpine\nCOPY --from=build /a /a\n"
    assert parse(text, path="D")[0].platform is None
    assert found(text) == []


def test_not_a_dockerfile() -> None:
    with pytest.raises(ConfigError) as err:
        parse("# just a comment\n", path="x/Dockerfile")
    assert err.value.message.startswith("x/Dockerfile: no FROM instruction")
    with pytest.raises(ConfigError, match="x/Dockerfile:2: RUN before the first FROM"):
        parse("ARG A=1\nRUN true\nFROM a\n", path="x/Dockerfile")


def test_cli_doctor_dockerfile(project_dir) -> None:
    (project_dir / "api" / "Dockerfile").write_text(GO_BUILDER)
    (project_dir / "web" / "Dockerfile").write_text("FROM --platform=$BUILDPLATFORM nginx\nCOPY site /srv\n")
    (project_dir / "services.yaml").write_text(
        "services:\n  api: {context: api, image: team/api}\n  web: {context: web, image: team/web}\n")
    result = run_cli("doctor", "--dockerfile", "--json", "-c", str(project_dir / "services.yaml"))
    assert result.code == 1, result.output  # the pinned web image is an error
    data = json.loads(result.stdout)
    assert [(s["service"], [(f["file"], f["line"], f["code"]) for f in s["findings"]]) for s in data["services"]] == [
        ("api", [("api/Dockerfile", 1, "emulated-build-stage")]), ("web", [("web/Dockerfile", 1, "pinned-platform")])]
    (project_dir / "web" / "Dockerfile").write_text("FROM nginx\nCOPY site /srv\n")
    human = run_cli("doctor", "--dockerfile", "-c", str(project_dir / "services.yaml"))
    assert human.code == 0, human.output  # warnings are advice
    assert "api/Dockerfile:1 emulated-build-stage: stage build: 2 RUN steps" in human.stdout
    assert "web/Dockerfile: no RUN step under emulation" in human.stdout


def test_an_alias_of_the_native_architecture_is_native() -> None:
    # linux/aarch64 is linux/arm64 (platforms.Platform): no emulated stage, no pinned-platform error.
    text = "FROM --platform=linux/aarch64 debian\nRUN true\n"
    assert lint(text, path="D", platforms=["linux/arm64"], native="linux/arm64") == ()
    assert [f.code for f in lint(text, path="D", platforms=["linux/arm64", "linux/amd64"], native="linux/arm64")] == [
        "pinned-platform"]

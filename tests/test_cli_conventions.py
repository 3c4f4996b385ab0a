"""docker buildx's conventions (issue #18): -h, -f/--file, --builder, --platform a,b, --progress,
exit codes in --help — through the real CLI."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from buildctl import errors
from buildctl.cli_options import ProgressMode, display_args, display_for, platform_list, progress_mode
from buildctl.config.loader import load_config
from buildctl.output import live_progress, progress
from tests.helpers.cli import BASE_IMAGE, PROJECT, run_cli
from tests.test_cli_examples import verbs


@pytest.mark.parametrize("verb", [None, *verbs()])
def test_dash_h_is_help(verb: str | None) -> None:
    words = [verb] if verb else []
    short, long = run_cli(*words, "-h"), run_cli(*words, "--help")
    assert (short.code, long.code) == (0, 0), short.output
    assert short.stdout == long.stdout and "Usage: buildctl" in short.stdout


@pytest.mark.parametrize("verb", [None, "build", "verify"])
def test_help_lists_the_exit_codes(verb: str | None) -> None:
    text = run_cli(*([verb] if verb else []), "--help", env={"COLUMNS": "80"}).stdout
    section = text.split("Exit codes:", 1)[1].split("Examples:")[0]
    assert max(len(line) for line in section.splitlines()) <= 80
    listed = re.findall(r"^\s+(\d+)\s+(.+(?:\n\s{9,}\S.*)*)", section, re.MULTILINE)
    assert [(int(code), " ".join(meaning.split())) for code, meaning in listed] == list(errors.EXIT_CODES)


def test_the_readme_lists_the_same_exit_codes() -> None:
    section = (PROJECT / "README.md").read_text().split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", section, re.MULTILINE)
    assert [(int(code), meaning.replace("`", "")) for code, meaning in rows] == list(errors.EXIT_CODES)


def test_dash_f_is_the_config() -> None:
    long = run_cli("plan", "--json", "--config", "services.yaml", "vote")
    short = run_cli("plan", "--json", "-f", "services.yaml", "vote")
    alias = run_cli("plan", "--json", "--file", "services.yaml", "vote")
    assert {long.code, short.code, alias.code} == {0}, short.output
    drop = lambda out: {k: v for k, v in json.loads(out).items() if k != "services"}  # run ids differ
    assert drop(long.stdout) == drop(short.stdout) == drop(alias.stdout)
    missing = run_cli("plan", "-f", "nowhere/services.yaml")
    assert missing.code == errors.EXIT_BAD_INPUT and "nowhere/services.yaml: file not found" in missing.stderr


def test_builder_overrides_the_configured_name() -> None:
    result = run_cli("plan", "--json", "--builder", "ci")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["builder"]["name"] == "ci"
    assert all(s["buildx"][3:5] == ["--builder", "ci"] for s in data["services"])
    bad = run_cli("plan", "--builder", "no spaces")
    assert bad.code == errors.EXIT_BAD_INPUT and bad.stdout == ""
    assert bad.stderr.startswith("buildctl: error: --builder: invalid builder name 'no spaces'")


def test_builder_override_is_checked_by_the_schema_rule(project_dir) -> None:
    (project_dir / "services.yaml").write_text("services:\n  api: {context: api, image: team/api}\n")
    assert load_config(project_dir / "services.yaml", builder="arm.pool-2", environ={}).builder.name == "arm.pool-2"
    with pytest.raises(errors.ConfigError, match="invalid builder name '-x'"):
        load_config(project_dir / "services.yaml", builder="-x", environ={})


def test_platform_lists_as_buildx_takes_them() -> None:
    assert platform_list(["linux/amd64,linux/arm64"]) == ("linux/amd64", "linux/arm64")
    assert platform_list(["linux/amd64", "linux/arm64/v8,linux/arm"]) == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert platform_list(None) == ()
    for bad, says in (("linux/ arm64", "whitespace"), ("linux/amd64,", "empty platform"),
                      ("linux/arm64,linux/aarch64", "duplicate"), ("arm64", "expected os/arch")):
        with pytest.raises(errors.UsageError, match=says):
            platform_list([bad])


@pytest.mark.parametrize(("words", "says"), [
    (["verify", "127.0.0.1:9/x:1", "--platform", "linux/amd64, linux /arm64"], "contains whitespace"),
    (["verify", "127.0.0.1:9/x:1", "--platform", "linux/amd64,,linux/arm64"], "empty platform"),
    (["build", "--local", "--platform", "linux/sparc"], "architecture 'sparc' is not one of"),
])
def test_a_bad_platform_is_bad_input_before_anything_runs(words: list[str], says: str) -> None:
    result = run_cli(*words)
    assert result.code == errors.EXIT_BAD_INPUT and says in result.stderr, result.output
    assert result.stderr.startswith("buildctl: error: ") and "platform" in result.stderr.splitlines()[0]


def test_progress_modes() -> None:
    cfg = load_config(PROJECT / "services.yaml", environ={})
    assert isinstance(display_for(ProgressMode.PLAIN, cfg), progress.PlainDisplay)
    assert isinstance(display_for(ProgressMode.QUIET, cfg), progress.QuietDisplay)
    assert isinstance(display_for(ProgressMode.TTY, cfg), live_progress.LiveDisplay)  # also when stderr is no TTY
    # auto: make_display decides by stderr.
    assert display_args(ProgressMode.TTY) == {"quiet": False, "plain": False}
    assert display_args(ProgressMode.AUTO) == {"quiet": False, "plain": None}
    assert progress_mode(ProgressMode.AUTO, quiet=True) is ProgressMode.QUIET
    with pytest.raises(errors.UsageError, match="contradict"):
        progress_mode(ProgressMode.TTY, quiet=True)


@pytest.mark.parametrize(("words", "says"), [
    (["build", "--progress", "fancy"], "'fancy' is not one of 'auto', 'plain', 'tty', 'quiet'"),
    (["run", "-q", "--progress", "plain"], "--quiet and --progress plain contradict each other"),
])
def test_bad_progress_is_bad_input(words: list[str], says: str) -> None:
    result = run_cli(*words, "--registry", "127.0.0.1:9")
    assert result.code == errors.EXIT_BAD_INPUT and says in result.stderr, result.output


@pytest.mark.engine
def test_verify_takes_a_comma_list_and_repeats() -> None:
    comma = run_cli("verify", BASE_IMAGE, "--platform", "linux/amd64,linux/arm64", "--json")
    repeated = run_cli("verify", BASE_IMAGE, "--platform", "linux/arm64", "--platform", "linux/amd64", "--json")
    assert (comma.code, repeated.code) == (0, 0), comma.output + repeated.output
    platforms = lambda out: sorted(p["platform"] for p in json.loads(out)[0]["platforms"])
    assert platforms(comma.stdout) == platforms(repeated.stdout) == ["linux/amd64", "linux/arm64"]
    only = run_cli("verify", BASE_IMAGE, "--platform", "linux/arm64")
    assert only.code == errors.EXIT_FAILED, only.output  # exact by default: amd64 is one too many


def test_a_metadata_file_that_is_a_folder_is_bad_input(tmp_path) -> None:
    result = run_cli("build", "--metadata-file", str(tmp_path), "--registry", "127.0.0.1:9")
    assert result.code == errors.EXIT_BAD_INPUT and "is a directory" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.engine
def test_build_local_takes_a_platform_list(tmp_path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.py /app.py\n")
    (tmp_path / "app" / "app.py").write_text("print('local')\n")
    (tmp_path / "services.yaml").write_text("services:\n  app: {context: app, image: buildctl-e2e/local-list}\n")
    result = run_cli("build", "--local", "--platform", "linux/amd64,linux/arm64", "--json", cwd=tmp_path)
    assert result.code == 0, result.output
    images = {i["platform"]: i["tag"] for i in json.loads(result.stdout)}
    assert images == {p: f"buildctl-local/buildctl-e2e/local-list:{p.replace('/', '-')}"
                      for p in ("linux/amd64", "linux/arm64")}
    for platform, tag in images.items():
        arch = subprocess.run(["docker", "image", "inspect", "--format", "{{.Architecture}}", tag],
                              capture_output=True, text=True, check=True).stdout.strip()
        assert f"linux/{arch}" == platform

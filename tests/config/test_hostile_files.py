"""Files services.yaml names, and services.yaml itself, that are not what they should be: symlink
loops, names too long for the file system, a file where a folder belongs and the reverse, FIFOs,
files that are not UTF-8 or not text. Each is one exit-2 line naming file:line and key; none
blocks, none is an internal error (exit 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import run_cli

S = "services:\n  api:\n    context: api\n    image: team/api\n"
LONG = "a" * 300


def refused(project: Path, monkeypatch: pytest.MonkeyPatch, text: str | bytes, *, config: str = "services.yaml") -> str:
    monkeypatch.chdir(project)
    path = project / "services.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as info:
        load_config(Path(config), environ={})
    assert info.value.exit_code == EXIT_BAD_INPUT
    assert "\n" not in info.value.message and "<unicode string>" not in info.value.message
    return info.value.message


def _loop(project: Path) -> None:
    (project / "l").symlink_to("l")


def _fifo(project: Path) -> None:
    os.mkfifo(project / "api" / "p")


PATHS = [
    ("context-loop", _loop, "services:\n  api:\n    context: l\n    image: team/api\n",
     "services.yaml:3: services.api.context: context 'l' cannot be resolved: a symlink loop"),
    ("dockerfile-loop", _loop, S + "    dockerfile: l\n",
     "services.yaml:5: services.api.dockerfile: Dockerfile 'l' cannot be resolved: a symlink loop"),
    ("project-loop", _loop, "project: l\n" + S, "services.yaml:1: project: project 'l' cannot be resolved: a symlink loop"),
    ("gitops-loop", _loop, "gitops: {repo: l}\n" + S,
     "services.yaml:1: gitops.repo: GitOps repository 'l' cannot be resolved: a symlink loop"),
    ("tls-loop", _loop, "builder:\n  driver: remote\n  driver_opts: {cacert: l}\n  nodes: [{endpoint: 'tcp://a:1'}]\n" + S,
     "services.yaml:3: builder.driver_opts.cacert: TLS cacert 'l' cannot be resolved: a symlink loop"),
    ("context-name-too-long", None, f"services:\n  api:\n    context: {LONG}\n    image: team/api\n",
     f"services.yaml:3: services.api.context: context '{'a' * 80}'… cannot be read: File name too long"),
    ("dockerfile-name-too-long", None, S + f"    dockerfile: api/{LONG}\n",
     f"services.yaml:5: services.api.dockerfile: Dockerfile 'api/{'a' * 76}'… cannot be read: File name too long"),
    ("context-a-file", None, "services:\n  api:\n    context: api/Dockerfile\n    image: team/api\n",
     "services.yaml:3: services.api.context: context 'api/Dockerfile' is a file, not a folder"),
    ("dockerfile-a-folder", None, S + "    dockerfile: web\n",
     "services.yaml:5: services.api.dockerfile: Dockerfile 'web' is a folder, not a file"),
    ("dockerfile-a-fifo", _fifo, S + "    dockerfile: api/p\n",
     "services.yaml:5: services.api.dockerfile: Dockerfile 'api/p' is a named pipe (FIFO), not a regular file"),
    ("cacert-a-folder", None, "builder:\n  driver: remote\n  driver_opts: {cacert: api}\n  nodes: [{endpoint: 'tcp://a:1'}]\n" + S,
     "services.yaml:3: builder.driver_opts.cacert: TLS cacert 'api' is a folder, not a file"),
    ("buildkitd-config-a-fifo", _fifo, "builder: {driver: docker-container, config: api/p}\n" + S,
     "services.yaml:1: builder.config: buildkitd config 'api/p' is a named pipe (FIFO), not a regular file"),
    ("sign-key-a-folder", None, "sign: {key: api}\n" + S, "services.yaml:1: sign.key: signing key 'api' is a folder, not a file"),
    ("project-a-file", None, "project: api/Dockerfile\n" + S, "services.yaml:1: project: project 'api/Dockerfile' is a file, not a folder"),
]


@pytest.mark.parametrize(("setup", "text", "message"), [case[1:] for case in PATHS], ids=[case[0] for case in PATHS])
def test_bad_paths_are_one_line(project_dir: Path, monkeypatch, setup, text: str, message: str) -> None:
    if setup:
        setup(project_dir)
    assert refused(project_dir, monkeypatch, text) == message


@pytest.mark.parametrize(("endpoint", "why"), [
    ("tcp://[::1:1234", "Invalid IPv6 URL"),
    ("tcp://[zz]:1234", "'zz' does not appear to be an IPv4 or IPv6 address"),
])
def test_a_malformed_ipv6_endpoint_is_one_line(project_dir: Path, monkeypatch, endpoint: str, why: str) -> None:
    text = f"builder:\n  driver: remote\n  nodes:\n    - {{endpoint: '{endpoint}'}}\n" + S
    assert refused(project_dir, monkeypatch, text) == (
        f"services.yaml:4: builder.nodes[0].endpoint: invalid endpoint '{endpoint}': {why}; an IPv6 address is "
        "written tcp://[ADDRESS]:PORT")


@pytest.mark.parametrize(("endpoint", "message"), [
    ("tcp://u:s3cr3t@a:1", "the endpoint holds credentials (user@ or user:password@); BuildKit takes TLS client "
                           "certificates: driver_opts cacert, cert, key"),
    ("tcp://a:0", "invalid endpoint 'tcp://a:0': expected tcp://HOST:PORT (port 1-65535)"),
    ("tcp://a:70000", "invalid endpoint 'tcp://a:70000': expected tcp://HOST:PORT (port 1-65535)"),
])
def test_endpoints_hold_no_credentials_and_a_real_port(project_dir: Path, monkeypatch, endpoint: str, message: str) -> None:
    text = f"builder:\n  driver: remote\n  nodes:\n    - {{endpoint: '{endpoint}'}}\n" + S
    got = refused(project_dir, monkeypatch, text)
    assert got == f"services.yaml:4: builder.nodes[0].endpoint: {message}"
    assert "s3cr3t" not in got


def test_a_well_formed_ipv6_endpoint_is_accepted(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_text("builder:\n  driver: remote\n  nodes: [{endpoint: 'tcp://[::1]:1234'}]\n" + S)
    assert load_config(project_dir / "services.yaml", environ={}).builder.nodes[0].endpoint == "tcp://[::1]:1234"


ENCODINGS = [
    ("latin-1", S.replace("team/api", "team/api # caf\xe9").encode("latin-1"),
     "services.yaml:4: not UTF-8: byte 0xe9 at column 26 cannot be decoded; save the file as UTF-8"),
    ("utf-16-bom", S.encode("utf-16"), "services.yaml:1: the file looks like UTF-16 text; services.yaml must be UTF-8"),
    ("utf-16-le", S.encode("utf-16-le"), "services.yaml:1: the file looks like UTF-16 text; services.yaml must be UTF-8"),
    ("utf-16-be", S.encode("utf-16-be"), "services.yaml:1: the file looks like UTF-16 text; services.yaml must be UTF-8"),
    ("control-character", (S + "    target: a\x07b\n").encode(),
     "services.yaml:5: not valid YAML: control character U+0007 at column 14 is not allowed (special characters are not allowed)"),
    ("nul-byte", (S + "x-a: \x00\n").encode(),
     "services.yaml:5: not valid YAML: control character U+0000 at column 6 is not allowed (special characters are not allowed)"),
]


@pytest.mark.parametrize(("data", "message"), [case[1:] for case in ENCODINGS], ids=[case[0] for case in ENCODINGS])
def test_encoding_problems_name_the_line(project_dir: Path, monkeypatch, data: bytes, message: str) -> None:
    assert refused(project_dir, monkeypatch, data) == message


def test_a_utf8_bom_is_fine(project_dir: Path) -> None:
    (project_dir / "services.yaml").write_bytes(b"\xef\xbb\xbf" + S.encode())
    assert load_config(project_dir / "services.yaml", environ={}).services[0].name == "api"


def test_config_that_is_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "services.yaml")
    result = run_cli("plan", "-c", "services.yaml", cwd=tmp_path, timeout=30)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert result.stderr.splitlines() == ["buildctl: error: services.yaml: not a regular file: it is a named pipe (FIFO)"]


@pytest.mark.parametrize(("name", "message"), [
    ("loop", "buildctl: error: loop: cannot read: a symlink loop (too many levels of symbolic links)"),
    (LONG, f"buildctl: error: {LONG}: cannot read: File name too long"),
])
def test_config_path_that_cannot_be_opened(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "loop").symlink_to("loop")
    result = run_cli("plan", "-c", name, cwd=tmp_path, timeout=30)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert result.stderr.splitlines() == [message]


def test_a_file_that_is_not_services_yaml_is_not_echoed(tmp_path: Path) -> None:
    # /etc/shadow's lines end in ':' - YAML keys holding the password hash.
    secret = "$y$j9T$SALTSALTSALTSALT$HASHHASHHASHHASHHASHHASHHASHHASHHASHHASHHAS"
    (tmp_path / "shadow").write_text(f"root:{secret}:19700:0:99999:7:::\nbin:*:19700:0:99999:7:::\n")
    result = run_cli("plan", "-c", "shadow", cwd=tmp_path, timeout=30)
    assert result.code == EXIT_BAD_INPUT, result.output
    assert len(result.stderr.splitlines()) == 1 and "unknown key 'root:$y$j9T$SALTSALT'…" in result.stderr
    assert secret not in result.output and "HASH" not in result.output

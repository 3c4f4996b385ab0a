"""buildctl.engine.docker_config: the run-scoped Docker config a run's `docker login` writes into
(issue #14), on a real filesystem. No daemon: the last tests run the real `docker login`, which
logs in client-side when the daemon is unreachable, against a loopback Basic-auth registry; they
look at every process's argv while the login is in flight. tests/e2e/test_secrets.py does whole runs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from buildctl.engine import docker_config, logins
from buildctl.engine.docker_config import run_scoped, scoped_settings, user_config_dir
from buildctl.errors import BuildctlError

REG = "myacr.azurecr.io"
PASSWORD = "s3cret-Pa55word-for-the-run"
SECRETS = (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), base64.b64encode(f"alice:{PASSWORD}".encode()).decode())
USER_SETTINGS = {
    "auths": {REG: {"auth": "b2xkOmxvZ2lu"}, f"https://{REG}/v1/": {"auth": "b2xkOnYx"},
              "other.example:5000": {"auth": "a2VwdDprZXB0"}},
    "credsStore": "desktop",
    "credHelpers": {REG: "acr-env", "gcr.io": "gcloud"},
    "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
    "detachKeys": "ctrl-e,e",
}


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where mkdtemp puts the scoped folders during the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_tmp: Path) -> Path:
    """A user's Docker config folder, as DOCKER_CONFIG, with a login, builders, contexts and plugins."""
    folder = tmp_path / "user-docker"
    (folder / "buildx" / "instances").mkdir(parents=True)
    (folder / "buildx" / "instances" / "ci").write_text('{"Name": "ci"}')
    (folder / "contexts" / "meta").mkdir(parents=True)
    (folder / "cli-plugins").mkdir()
    (folder / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (folder / "config.json").write_text(json.dumps(USER_SETTINGS, indent="\t"))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("environ", "expected"), [
    ({"DOCKER_CONFIG": "/etc/ci/docker"}, Path("/etc/ci/docker")),
    ({"DOCKER_CONFIG": ""}, Path.home() / ".docker"),
    ({}, Path.home() / ".docker"),
])
def test_user_config_dir(environ: dict[str, str], expected: Path) -> None:
    assert user_config_dir(environ) == expected


# ------------------------------------------------------------------ scoped_settings


def test_scoped_settings_drop_the_runs_registry_and_the_store_only() -> None:
    original = json.loads(json.dumps(USER_SETTINGS))
    settings = scoped_settings(original, REG)
    assert settings == {"auths": {"other.example:5000": {"auth": "a2VwdDprZXB0"}}, "credHelpers": {"gcr.io": "gcloud"},
                        "proxies": USER_SETTINGS["proxies"], "detachKeys": "ctrl-e,e"}
    assert original == USER_SETTINGS  # the user's settings are not edited in place


@pytest.mark.parametrize(("key", "dropped"), [
    (REG, True), (f"https://{REG}", True), (f"http://{REG}/v2/", True), (f"{REG}/v1/", True),
    (f"{REG}:443", False), (f"other.{REG}", False), (f"{REG}.evil.example", False), ("", False),
])
def test_which_auth_keys_are_the_registry(key: str, dropped: bool) -> None:
    settings = scoped_settings({"auths": {key: {}}, "credHelpers": {key: "h"}}, REG)
    assert (key not in settings["auths"], key not in settings["credHelpers"]) == (dropped, dropped)


def test_registry_with_a_port() -> None:
    settings = scoped_settings({"auths": {"127.0.0.1:5000": {}, "127.0.0.1": {}, "127.0.0.1:5001": {}}}, "127.0.0.1:5000")
    assert sorted(settings["auths"]) == ["127.0.0.1", "127.0.0.1:5001"]


@pytest.mark.parametrize("value", [None, [], "x", 3])
def test_odd_auths_are_kept_as_they_are(value: object) -> None:
    assert scoped_settings({"auths": value, "credHelpers": value, "credsStore": value}, REG) == \
        {"auths": value, "credHelpers": value}


def test_docker_hub_helper_is_dropped_for_docker_io() -> None:
    settings = scoped_settings({"credHelpers": {"https://index.docker.io/v1/": "desktop", "gcr.io": "gcloud"}},
                               "docker.io")
    assert settings["credHelpers"] == {"gcr.io": "gcloud"}


# ------------------------------------------------------------------ run_scoped


def test_the_scoped_folder(user: Path, scratch_tmp: Path) -> None:
    before = snapshot(user)
    with run_scoped(REG) as scoped:
        assert os.environ["DOCKER_CONFIG"] == str(scoped) and scoped.parent == scratch_tmp
        assert stat.S_IMODE(scoped.stat().st_mode) == 0o700
        config = scoped / "config.json"
        assert not config.is_symlink() and stat.S_IMODE(config.stat().st_mode) == 0o600
        assert json.loads(config.read_text()) == scoped_settings(USER_SETTINGS, REG)
        links = {p.name: p for p in scoped.iterdir() if p.name != "config.json"}
        assert sorted(links) == ["buildx", "ca.pem", "cli-plugins", "contexts"]
        assert all(p.is_symlink() and p.resolve() == (user / name).resolve() for name, p in links.items())
        (scoped / "buildx" / "instances" / "new").write_text("{}")  # a builder made during the run...
        config.write_text(json.dumps({"auths": {REG: {"auth": SECRETS[2]}}}))  # ...and the run's login
    assert (user / "buildx" / "instances" / "new").read_text() == "{}"  # ...persists; the login does not
    assert not scoped.exists() and list(scratch_tmp.iterdir()) == []
    after = snapshot(user)
    assert after.pop("buildx/instances/new") == b"{}" and after == before
    assert os.environ["DOCKER_CONFIG"] == str(user)


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(1)])
def test_removed_and_restored_however_the_block_ends(user: Path, scratch_tmp: Path, error: BaseException) -> None:
    with pytest.raises(type(error)), run_scoped(REG) as scoped:
        (scoped / "config.json").write_text(PASSWORD)
        raise error
    assert not scoped.exists() and list(scratch_tmp.iterdir()) == []
    assert os.environ["DOCKER_CONFIG"] == str(user)


def test_an_unset_docker_config_stays_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_tmp: Path) -> None:
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # ~/.docker does not exist yet
    with run_scoped(REG) as scoped:
        assert json.loads((scoped / "config.json").read_text()) == {}
        assert sorted(p.name for p in scoped.iterdir()) == ["buildx", "config.json", "contexts"]
    assert "DOCKER_CONFIG" not in os.environ
    assert sorted(p.name for p in (tmp_path / "home" / ".docker").iterdir()) == ["buildx", "contexts"]


def test_an_empty_docker_config_is_restored_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scratch_tmp) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    with run_scoped(REG):
        pass
    assert os.environ["DOCKER_CONFIG"] == ""


@pytest.mark.parametrize("content", ["", "{", "[1, 2]", '"x"', "null", "\xff"])
def test_an_unreadable_user_config_gives_an_empty_one(user: Path, content: str) -> None:
    (user / "config.json").write_text(content, encoding="latin-1")
    with run_scoped(REG) as scoped:
        assert json.loads((scoped / "config.json").read_text()) == {}
    assert (user / "config.json").read_text(encoding="latin-1") == content


def test_private_whatever_the_umask(user: Path) -> None:
    old = os.umask(0)
    try:
        with run_scoped(REG) as scoped:
            assert stat.S_IMODE(scoped.stat().st_mode) == 0o700
            assert stat.S_IMODE((scoped / "config.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_dangling_links_and_nesting(user: Path) -> None:
    (user / "gone").symlink_to(user / "nowhere")
    with run_scoped(REG) as outer, run_scoped("other.example:5000") as inner:
        assert os.environ["DOCKER_CONFIG"] == str(inner)
        assert (inner / "buildx").resolve() == (user / "buildx").resolve()  # the user's, not the outer copy's
        assert json.loads((inner / "config.json").read_text())["auths"] == {}
    assert not inner.exists() and not outer.exists() and os.environ["DOCKER_CONFIG"] == str(user)


# ------------------------------------------------------------------ the real `docker login`, no daemon


@pytest.fixture
def basic_registry(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A loopback /v2/ with Basic auth answering ``request.param`` to credentials; it records, while
    the login is in flight, the argv of every docker process on the machine."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # never the daemon: login client-side
    state: dict = {"status": request.param, "argv": [], "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            if auth:
                state["auth"].append(auth)
                for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                    try:
                        argv = cmdline.read_bytes().split(b"\0")
                    except OSError:
                        continue
                    if b"login" in argv:
                        state["argv"].append(b" ".join(argv).decode(errors="replace"))
            self.send_response(state["status"] if auth else 401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["address"] = f"127.0.0.1:{server.server_port}"
    yield state
    server.shutdown(), server.server_close()


@pytest.mark.parametrize("basic_registry", [200], indirect=True)
def test_real_login_goes_by_stdin_into_the_scoped_folder_only(basic_registry: dict, user: Path, scratch_tmp) -> None:
    address, before = basic_registry["address"], snapshot(user)
    with logins.scoped_login(address, username="alice", password=PASSWORD):
        scoped = Path(os.environ["DOCKER_CONFIG"])
        stored = json.loads((scoped / "config.json").read_text())["auths"][address]["auth"]
        assert base64.b64decode(stored).decode() == f"alice:{PASSWORD}"
    assert basic_registry["auth"] == ["Basic " + SECRETS[2]]  # it did log in, with that password
    assert any("--password-stdin" in argv for argv in basic_registry["argv"]), basic_registry["argv"]
    assert [argv for argv in basic_registry["argv"] for s in SECRETS if s in argv] == []
    assert snapshot(user) == before and list(scratch_tmp.iterdir()) == []
    assert docker_config.user_config_dir() == user


@pytest.mark.parametrize("basic_registry", [401, 500], indirect=True)
def test_a_failed_login_shows_no_password_and_leaves_nothing(basic_registry: dict, user: Path, scratch_tmp) -> None:
    before = snapshot(user)
    with pytest.raises(BuildctlError) as err, logins.scoped_login(basic_registry["address"], username="alice",
                                                                  password=PASSWORD):
        pytest.fail("logged in")
    assert basic_registry["auth"] == ["Basic " + SECRETS[2]] * len(basic_registry["auth"]) != []  # it was sent
    shown = f"{err.value.message}\n{err.value.hint}\n{err.value!r}"
    assert basic_registry["address"] in shown and "alice" in shown
    assert [s for s in SECRETS if s in shown] == []
    assert snapshot(user) == before and list(scratch_tmp.iterdir()) == []

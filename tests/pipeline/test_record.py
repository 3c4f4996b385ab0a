"""buildctl.pipeline.record: reading a release record back (`update-manifests --record`), and its refusals."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.model import ReleasedImage
from buildctl.pipeline.record import MAX_RECORD_BYTES, load_releases
from tests.helpers.cli import run_cli
from tests.helpers.gitops import REG

DIGEST = "sha256:" + "ab" * 32
SERVICE = {"name": "vote", "repository": f"{REG}/vote", "tag": "42", "index_digest": DIGEST,
           "platforms": {"linux/amd64": DIGEST}, "verified": True}  # fmt: skip


def record(tmp_path: Path, *services: dict, raw: str | None = None) -> Path:
    path = tmp_path / "release.json"
    body = {"tag": "42", "registry": "127.0.0.1:5000", "services": list(services)}
    path.write_text(raw if raw is not None else json.dumps(body, indent=2))
    return path


def test_load_releases(tmp_path):
    worker = {**SERVICE, "name": "worker", "repository": f"{REG}/worker", "tagged": True}
    assert load_releases(record(tmp_path, SERVICE, worker)) == (
        ReleasedImage("vote", f"{REG}/vote", "42", DIGEST),
        ReleasedImage("worker", f"{REG}/worker", "42", DIGEST),
    )


@pytest.mark.parametrize(
    ("services", "raw", "message"),
    [
        ((), '{"services": [\n  {"name": "vote",}\n]}', "release.json:2: not valid JSON: Expecting property name enclosed in double quotes"),
        ((), "[]", "release.json: not a release record: expected an object with a non-empty `services` list"),
        (({**SERVICE, "verified": False},), None,
         "release.json: services[0]: service vote is not verified (verified: false); refusing to deploy an image that did not pass verification"),
        (({k: v for k, v in SERVICE.items() if k != "verified"},), None,
         "release.json: services[0]: service vote is not verified (verified: null); refusing to deploy an image that did not pass verification"),
        (({**SERVICE, "tagged": False},), None, "release.json: services[0]: service vote was not tagged (the release gate failed)"),
        (({**SERVICE, "index_digest": "sha256:abc"},), None, "release.json: services[0].index_digest: `index_digest` must be sha256:<64 hex>"),
        (({**SERVICE, "repository": f"{REG}/vote:42"},), None, "release.json: services[0].repository: `repository` must not carry a tag or digest"),
        (({**SERVICE, "tag": ""},), None, "release.json: services[0]: missing or empty `tag`"),
    ],
    ids=["json", "not-an-object", "unverified", "no-verified", "untagged", "digest", "repo-with-tag", "empty-tag"],
)  # fmt: skip
def test_bad_release_records(tmp_path, monkeypatch, services, raw, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_releases(record(tmp_path, *services, raw=raw).relative_to(tmp_path))
    assert str(err.value) == message




# --------------------------------------------------------------------------- bounded reads (issue #24)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "release.json"
    os.mkfifo(path)
    return path


@pytest.mark.timeout(20)  # before: the read waited for a writer forever
def test_a_fifo_is_refused_without_waiting_for_a_writer(fifo):
    with pytest.raises(ConfigError) as err:
        load_releases(fifo)
    assert str(err.value) == f"{fifo}: the release record must be a regular file, not a named pipe (FIFO)"
    assert err.value.exit_code == 2


@pytest.mark.parametrize(("path", "what"), [("/dev/zero", "a character device"), ("/dev/null", "a character device")])
def test_a_device_is_refused_before_reading(path, what):
    with pytest.raises(ConfigError) as err:  # before: /dev/zero was read until MemoryError (exit 3)
        load_releases(Path(path))
    assert str(err.value) == f"{path}: the release record must be a regular file, not {what}"


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_releases(tmp_path)
    assert str(err.value) == f"{tmp_path}: the release record must be a regular file, not a folder"


def test_a_record_larger_than_the_bound_is_refused_unread(tmp_path):
    path = tmp_path / "release.json"
    with path.open("wb") as fh:  # sparse: 1 GiB that takes no disk and would take seconds to read
        fh.truncate(2**30)
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        load_releases(path)
    assert time.monotonic() - start < 1
    assert str(err.value) == f"{path}: larger than 16 MiB: not a release record (those are a few KiB)"
    assert MAX_RECORD_BYTES == 16 * 2**20


@pytest.mark.parametrize("number", ["1" * 100_000, "-" + "9" * 5_000, "0." + "1" * 200, "1e" + "0" * 200])
def test_a_number_too_long_to_convert_is_refused_with_its_line(tmp_path, number):
    path = record(tmp_path, raw='{"tag": "42",\n "run_id": ' + number + ',\n "services": []}')
    with pytest.raises(ConfigError) as err:  # before: the 100,000-digit integer raised ValueError (exit 3)
        load_releases(path)
    assert str(err.value) == f"{path}:2: a number of more than 100 digits"


def test_a_record_of_the_largest_sane_size_and_numbers_loads(tmp_path):
    many = [{**SERVICE, "name": f"svc{i}", "build_seconds": 12345678901234567890, "pad": "9" * 2_000} for i in range(2_000)]
    path = record(tmp_path, *many)
    assert path.stat().st_size < MAX_RECORD_BYTES
    assert len(load_releases(path)) == 2_000


def test_the_cli_refuses_a_fifo_and_dev_zero_with_exit_2(fifo, tmp_path):
    (tmp_path / "services.yaml").write_text("services:\n  vote:\n    image: voting-app/vote\n    context: .\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    for path, what in ((fifo, "a named pipe (FIFO)"), (Path("/dev/zero"), "a character device")):
        result = run_cli("update-manifests", "--record", str(path), "--dry-run", cwd=tmp_path, timeout=30)
        assert result.code == 2, result.output
        assert f"buildctl: error: {path}: the release record must be a regular file, not {what}" in result.stderr
        assert "Traceback" not in result.stderr

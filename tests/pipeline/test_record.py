"""buildctl.pipeline.record: reading a release record back (`update-manifests --record`), and its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.model import ReleasedImage
from buildctl.pipeline.record import load_releases
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



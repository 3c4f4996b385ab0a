"""--metadata-file: the released images in `docker buildx bake --metadata-file`'s shape."""

from __future__ import annotations

import json
from pathlib import Path

from buildctl.pipeline.metadata_file import released_metadata, write_metadata

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def record(*services: dict) -> dict:
    return {"services": list(services)}


def service(name: str, digest: str, *, tagged: bool = True) -> dict:
    return {"name": name, "repository": f"reg.example/team/{name}", "tag": "1.4.0", "index_digest": digest,
            "tagged": tagged}


def test_one_entry_per_released_service_keyed_by_name() -> None:
    buildx = {"api": {"containerimage.digest": A, "containerimage.descriptor": {"digest": A, "size": 1},
                      "image.name": "reg.example/team/api:buildctl-staging-r1", "buildx.build.ref": "default/x"}}
    out = released_metadata(record(service("api", A), service("web", B, tagged=False)), buildx)
    assert out == {"api": {"containerimage.digest": A, "containerimage.descriptor": {"digest": A, "size": 1},
                           "buildx.build.ref": "default/x", "image.name": "reg.example/team/api:1.4.0"}}


def test_buildx_keys_of_another_digest_are_dropped() -> None:
    # An identical earlier release: the tag stays on the existing index, not the rebuilt one.
    buildx = {"api": {"containerimage.digest": B, "containerimage.descriptor": {"digest": B}}}
    assert released_metadata(record(service("api", A)), buildx) == {
        "api": {"containerimage.digest": A, "image.name": "reg.example/team/api:1.4.0"}}


def test_written_as_json_with_unreadable_buildx_files(tmp_path: Path) -> None:
    (tmp_path / "api.metadata.json").write_text("not json")
    path = write_metadata(tmp_path / "out" / "metadata.json", record(service("api", A)), run_dir=tmp_path)
    assert json.loads(path.read_text()) == {"api": {"containerimage.digest": A,
                                                    "image.name": "reg.example/team/api:1.4.0"}}

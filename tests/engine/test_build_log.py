"""engine/build_log.py: the line at which buildx has pushed a build's index (pipeline/verifying.py
begins its checks there). That BuildKit really prints it, per driver: tests/e2e/test_builders.py."""

from __future__ import annotations

from buildctl.engine.build_log import pushed_digest

REF = "127.0.0.1:5000/buildctl-bench/vote:buildctl-staging-35d59289"
DIGEST = "sha256:" + "90ccef1e" * 8


def test_the_index_pushed_under_the_builds_own_tag_is_read_once_done() -> None:
    assert pushed_digest(f"#16 pushing manifest for {REF}@{DIGEST} 0.0s done\n", REF) == DIGEST
    assert pushed_digest(f"#16 pushing manifest for {REF}@{DIGEST} done", REF) == DIGEST


def test_a_push_under_way_another_reference_or_another_line_is_not() -> None:
    assert pushed_digest(f"#16 pushing manifest for {REF}@{DIGEST}\n", REF) is None  # begun, not done
    assert pushed_digest(f"#16 pushing manifest for {REF}x@{DIGEST} 0.0s done", REF) is None
    assert pushed_digest(f"#16 pushing manifest for {REF.replace(':buildctl', '-x:buildctl')}@{DIGEST} done", REF) is None
    assert pushed_digest(f"#16 exporting manifest list {DIGEST} done", REF) is None
    assert pushed_digest(f"#16 pushing manifest for {REF}@sha256:{'0' * 63} done", REF) is None
    assert pushed_digest(f"#3 [linux/amd64 2/2] RUN echo 'pushing manifest for {REF}@{DIGEST} done'", REF) is None

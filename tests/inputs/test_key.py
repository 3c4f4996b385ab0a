"""The input digest (inputs/key.py): equal inputs give equal digests, and each thing that decides an
image changes it; what cannot be known before a build is named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from buildctl.inputs import key as keys
from buildctl.inputs.context import context_entries
from buildctl.model import frozen_map

DOCKERFILE = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app\n"
BASE = keys.Base("reg/base:1", "linux/amd64", "sha256:" + "1" * 64)


def _context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "src" / "app.py").write_text("print(1)\n")
    (ctx / "README.md").write_text("docs\n")
    (ctx / ".dockerignore").write_text("# docs are not shipped\n*.md\n")
    return ctx


def _inputs(ctx: Path, **changes) -> keys.Inputs:
    inputs = keys.Inputs(entries=context_entries(ctx, ctx / "Dockerfile"), dockerfile=DOCKERFILE,
                         platforms=("linux/amd64", "linux/arm64"), build_args=frozen_map({"BASE_IMAGE": "reg/base:1"}),
                         target=None, labels=frozen_map(), bases=(BASE,), source_date_epoch="1700000000",
                         outputs=frozen_map({"provenance": "True"}))
    return replace(inputs, **changes)


def test_equal_inputs_give_equal_digests_and_a_pointer_tag_names_them(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    digest = keys.input_digest(_inputs(ctx))
    assert digest == keys.input_digest(_inputs(ctx)) and digest.startswith("sha256:") and len(digest) == 71
    assert keys.pointer_tag(digest) == f"buildctl-inputs-v1-{digest[7:]}" and len(keys.pointer_tag(digest)) <= 128


@pytest.mark.parametrize("change", [
    {"dockerfile": DOCKERFILE + "RUN true\n"},
    {"dockerfile": "# syntax=docker/dockerfile:1@sha256:" + "2" * 64 + "\n" + DOCKERFILE},
    {"platforms": ("linux/amd64",)},
    {"build_args": frozen_map({"BASE_IMAGE": "reg/base:2"})},
    {"target": "final"},
    {"labels": frozen_map({"team": "x"})},
    {"bases": (replace(BASE, digest="sha256:" + "3" * 64),)},
    {"source_date_epoch": "1700000001"},
    {"outputs": frozen_map({"provenance": "False"})},
])
def test_each_input_changes_the_digest(tmp_path: Path, change: dict) -> None:
    ctx = _context(tmp_path)
    assert keys.input_digest(_inputs(ctx, **change)) != keys.input_digest(_inputs(ctx))


def _after(ctx: Path, edit) -> str:
    before = keys.input_digest(_inputs(ctx))
    edit(ctx)
    return before, keys.input_digest(_inputs(ctx))


@pytest.mark.parametrize("edit", [
    lambda c: (c / "src" / "app.py").write_text("print(2)\n"),
    lambda c: (c / "src" / "app.py").chmod(0o755),
    lambda c: (c / "src" / "app.py").rename(c / "src" / "main.py"),
    lambda c: (c / "src" / "new.py").write_text(""),
    lambda c: (c / "link").symlink_to("src/app.py"),
    lambda c: (c / ".dockerignore").write_text("*.md\nsrc/\n"),
], ids=["content", "mode", "rename", "new-file", "symlink", "dockerignore"])
def test_a_context_change_the_build_sees_changes_the_digest(tmp_path: Path, edit) -> None:
    before, after = _after(_context(tmp_path), edit)
    assert before != after


def test_a_symlink_target_changes_the_digest(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (ctx / "link").symlink_to("src/app.py")

    def retarget(c: Path) -> None:
        (c / "link").unlink()
        (c / "link").symlink_to("README.md")

    before, after = _after(ctx, retarget)
    assert before != after


@pytest.mark.parametrize("edit", [
    lambda c: (c / "README.md").write_text("other docs\n"),
    lambda c: (c / "CHANGES.md").write_text("new, ignored\n"),
], ids=["ignored-edit", "ignored-new"])
def test_what_dockerignore_leaves_out_does_not_change_the_digest(tmp_path: Path, edit) -> None:
    before, after = _after(_context(tmp_path), edit)
    assert before == after


def test_the_dockerfiles_own_ignore_file_wins_and_exceptions_apply(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    (ctx / "Dockerfile.dockerignore").write_text("src\n!src/keep.py\n")
    (ctx / "src" / "keep.py").write_text("")
    paths = {e.path for e in context_entries(ctx, ctx / "Dockerfile")}
    assert "src/keep.py" in paths and "src/app.py" not in paths and "README.md" in paths


@pytest.mark.parametrize(("dockerfile", "flags", "why"), [
    ("ADD https://example.com/x.tgz /x\n", {}, "fetches a remote source"),
    ("ADD --keep-git-dir git@github.com:o/r.git /r\n", {}, "fetches a remote source"),
    ("RUN --mount=type=secret,id=t cat /run/secrets/t\n", {}, "mounts a secret"),
    ("# syntax=docker/dockerfile:1\nFROM x\n", {}, "not pinned by digest"),
    ("FROM x\n", {"secrets": True}, "uses secrets"),
    ("FROM x\n", {"pull": True}, "--pull"),
    ("FROM x\n", {"no_cache": True}, "--no-cache"),
    ("FROM x\n", {"bases": (replace(BASE, digest="not resolved"),)}, "not resolved"),
])
def test_what_cannot_be_known_is_named(dockerfile: str, flags: dict, why: str) -> None:
    options = {"bases": (BASE,), "secrets": False, "pull": False, "no_cache": False, **flags}
    assert why in (keys.unknowable(dockerfile, **options) or "")


def test_a_knowable_dockerfile_is_knowable() -> None:
    text = "# syntax=docker/dockerfile:1@sha256:" + "2" * 64 + "\nFROM x\nADD local.tgz /x\nCOPY --from=y /a /a\n"
    assert keys.unknowable(text, bases=(BASE,), secrets=False, pull=False, no_cache=False) is None


def test_moved_bases_names_each_old_and_new_digest() -> None:
    old = keys.parse_bases_annotation(keys.bases_annotation((BASE, replace(BASE, platform="linux/arm64"))))
    new = (replace(BASE, digest="sha256:" + "4" * 64), replace(BASE, platform="linux/arm64"))
    assert keys.moved_bases(old, new) == (f"reg/base:1 (linux/amd64): {BASE.digest} -> sha256:{'4' * 64}",)

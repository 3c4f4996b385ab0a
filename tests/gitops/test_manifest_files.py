"""Reading manifest files from the GitOps checkout (manifest_files.read_manifest, through compute_change and
drift as a release does): symlinks are refused before anything is edited (git would commit the link,
not the file the edit went to), and every refusal names the file as services.yaml lists it and its
line — never the temporary clone's path, never a byte offset. Real files in tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from buildctl.gitops.edits import compute_change, drift
from buildctl.gitops.manifest_files import read_manifest
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage

R = "127.0.0.1:5000/team/app"
DIGEST = "sha256:" + "ab" * 32
POD = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - name: app\n    image: {R}:41\n"


def refusal(root: Path, path: str, *, helm: bool = False) -> ConfigError:
    targets = {"app": (GitOpsFile(path, helm=HelmKeys() if helm else None),)}
    release = ReleasedImage("app", R, "42", DIGEST)
    with pytest.raises(ConfigError) as err:
        compute_change(root, [release], targets, pin_digest=False)
    with pytest.raises(ConfigError) as again:
        drift(root, [release], targets)  # --check reads the same way
    assert str(again.value) == str(err.value) and err.value.exit_code == EXIT_BAD_INPUT
    return err.value


def test_a_symlinked_manifest_inside_the_repository_is_refused(tmp_path: Path):
    (tmp_path / "real.yaml").write_text(POD)
    os.symlink("real.yaml", tmp_path / "link.yaml")
    assert str(refusal(tmp_path, "link.yaml")) == "link.yaml: is a symlink (to real.yaml); list the file itself"
    assert (tmp_path / "real.yaml").read_text() == POD


def test_a_path_through_a_symlinked_folder_is_refused(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "d.yaml").write_text(POD)
    os.symlink("real", tmp_path / "ln")
    assert str(refusal(tmp_path, "ln/d.yaml")) == "ln/d.yaml: ln is a symlink (to real); list the file itself"
    (tmp_path / "a" / "b").mkdir(parents=True)
    os.symlink("../../real/d.yaml", tmp_path / "a" / "b" / "d.yaml")
    assert str(refusal(tmp_path, "a/b/d.yaml")) == ("a/b/d.yaml: is a symlink (to ../../real/d.yaml); "
                                                    "list the file itself")


def test_a_symlink_out_of_the_repository_is_still_outside_it(tmp_path: Path):
    (tmp_path / "outside.yaml").write_text(POD)
    (tmp_path / "repo").mkdir()
    os.symlink(tmp_path / "outside.yaml", tmp_path / "repo" / "link.yaml")
    assert str(refusal(tmp_path / "repo", "link.yaml")) == "link.yaml: manifest path is outside the GitOps repository"


def test_a_symlink_loop_is_a_refusal_not_a_crash(tmp_path: Path):
    os.symlink("b.yaml", tmp_path / "a.yaml")
    os.symlink("a.yaml", tmp_path / "b.yaml")
    assert str(refusal(tmp_path, "a.yaml")) == "a.yaml: is a symlink (to b.yaml); list the file itself"


def test_a_folder_is_named_as_one_without_the_checkout_path(tmp_path: Path):
    (tmp_path / "dir").mkdir()
    err = refusal(tmp_path, "dir")
    assert (str(err), err.hint) == ("dir: is a folder, not a file", "list the manifest files in it")
    assert str(tmp_path) not in str(err)


@pytest.mark.parametrize(("data", "line", "byte"), [
    (POD.encode().replace(b"name: p", b"name: \xe9"), 3, "0xe9"),           # Latin-1
    ("\ufeff".encode("utf-16") + POD.encode("utf-16-le"), 1, "0xff"),  # UTF-16
    (POD.encode() + b"# \xed\xa0\x80\n", 8, "0xed"),                     # an encoded lone surrogate
])
def test_text_that_is_not_utf8_names_its_line(tmp_path: Path, data: bytes, line: int, byte: str):
    (tmp_path / "d.yaml").write_bytes(data)
    err = refusal(tmp_path, "d.yaml")
    assert (str(err), err.hint) == (f"d.yaml:{line}: not UTF-8 text (byte {byte})", "save the file as UTF-8")


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file is empty"), ("\n  \n", "the file is empty"), ("\ufeff", "the file is empty"),
    ("# nothing yet\n", "the file holds no YAML document (only comments)"),
    ("---\n...\n", "the file holds no YAML document (only comments)"),
])
@pytest.mark.parametrize("helm", [False, True], ids=["manifest", "helm"])
def test_an_empty_file_says_so(tmp_path: Path, text: str, message: str, helm: bool):
    (tmp_path / "d.yaml").write_text(text, encoding="utf-8")
    err = refusal(tmp_path, "d.yaml", helm=helm)
    assert str(err) == f"d.yaml: {message}"


def test_bytes_are_read_exactly(tmp_path: Path):
    text = "\ufeff# é\r\nkind: Pod\r\n"
    (tmp_path / "d.yaml").write_bytes(text.encode())
    assert read_manifest(tmp_path, "d.yaml") == text  # BOM and CRLF kept


@pytest.mark.parametrize("comment", ["# plain", "# naïve"], ids=["ascii", "non-ascii"])
def test_tabs_before_comments_read_alike_whatever_the_file_holds(tmp_path: Path, comment: str):
    # kustomize and kubectl read both; so does buildctl, with one parser for both.
    text = POD.replace("kind: Pod\n", "kind: Pod\t# the pod\n").replace(f"{R}:41\n", f"{R}:41 \t{comment}\n")
    (tmp_path / "d.yaml").write_text(text, encoding="utf-8")
    change, _ = compute_change(tmp_path, [ReleasedImage("app", R, "42", DIGEST)], {"app": (GitOpsFile("d.yaml"),)},
                               pin_digest=False)
    assert change.files[0].after == text.replace(f"{R}:41", f"{R}:42")

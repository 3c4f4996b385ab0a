"""Hard links to a file in a lower layer (a crafted tar, or a tool that writes one): the link is that
file's inode, so deleting or replacing the target path in a later layer leaves the link's bytes.
Real tars through scan_layer, then the entrypoint and elf-files checks; pure."""

from __future__ import annotations

import io

import pytest

from buildctl.inspect.elf_checks import check_elf_files, check_entrypoint, visible_elf_files
from buildctl.inspect.image_fs import FILE, LayeredView
from buildctl.inspect.layers import scan_layer
from buildctl.inspect.results import CheckStatus
from tests.helpers.elf import elf_for, make_tar

ARM = "linux/arm64"
X86, AARCH64 = elf_for("amd64"), elf_for("arm64")
FOREIGN = "1 of {total} ELF files are x86-64 (EM_X86_64), e.g. {path} (expected aarch64)"


def view(*layers: list) -> LayeredView:
    return LayeredView([scan_layer(io.BytesIO(make_tar(members))) for members in layers])


def run(fs: LayeredView, command: str) -> tuple[tuple, tuple]:
    files = visible_elf_files(fs)
    entry = check_entrypoint(ARM, fs, {"config": {"Entrypoint": [command]}})
    elf_files = check_elf_files(ARM, files, ())
    return (entry.status, entry.detail), (elf_files.status, elf_files.detail)


LOWER = [("bin/real", "f", X86, 0o755)]
CASES = {
    "target deleted later": ([LOWER, [("bin/app", "h", "bin/real", 0o755)], [("bin/.wh.real", "f", b"", 0o644)]],
                             "/bin/app", 1),
    "target replaced later": ([LOWER, [("bin/app", "h", "bin/real", 0o755)], [("bin/real", "f", AARCH64, 0o755)]],
                              "/bin/app", 2),
    "target's directory deleted later": ([LOWER, [("app", "h", "bin/real", 0o755)], [(".wh.bin", "f", b"", 0o644)]],
                                         "/app", 1),
    "link to a link, both deleted in the link's layer": (
        [LOWER, [("bin/a", "h", "bin/real", 0o755)],
         [("bin/b", "h", "bin/a", 0o755), ("bin/.wh.real", "f", b"", 0o644), ("bin/.wh.a", "f", b"", 0o644)]],
        "/bin/b", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hard_link_to_a_lower_layer_keeps_that_file(case: str) -> None:
    layers, path, total = CASES[case]
    entry, elf_files = run(view(*layers), path)
    assert entry == (CheckStatus.FAIL, f"{path} is x86-64 (EM_X86_64), expected aarch64")
    assert elf_files == (CheckStatus.FAIL, FOREIGN.format(total=total, path=path))


def test_a_hard_link_to_a_lower_layer_that_is_right_passes() -> None:
    fs = view([("bin/real", "f", AARCH64, 0o755)], [("bin/app", "h", "./bin/real", 0o755)])
    entry, elf_files = run(fs, "/bin/app")
    assert entry == (CheckStatus.PASS, "/bin/app: aarch64 (EM_AARCH64)")
    assert elf_files == (CheckStatus.PASS, "2 ELF files, all aarch64")
    assert fs.get("/bin/app").kind == FILE  # the view answers with the file, never the link


def test_a_deleted_or_hidden_hard_link_is_gone() -> None:
    gone = view(LOWER, [("bin/app", "h", "bin/real", 0o755)], [("bin/.wh.app", "f", b"", 0o644),
                                                                 ("bin/.wh.real", "f", b"", 0o644)])
    assert visible_elf_files(gone) == []
    replaced = view(LOWER, [("bin/app", "h", "bin/real", 0o755)], [("bin/app", "f", b"text", 0o644)])
    assert [path for path, _ in visible_elf_files(replaced)] == ["/bin/real"]


def test_hard_links_without_end_are_no_file() -> None:
    fs = view([("a", "h", "b", 0o755)], [("b", "h", "a", 0o755)], [("a", "h", "b", 0o755)])
    assert fs.get("/a") is None and visible_elf_files(fs) == []

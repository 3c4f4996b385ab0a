"""The page-size check (``verify.page_size``): PT_LOAD alignment read from crafted ELF bytes and from
real arm64 executables cross-compiled here (aarch64-linux-gnu-gcc, ``-z max-page-size``), through
scan_layer, the layer cache and check_page_size. Pure: no registry (tests/inspect/test_page_size_images.py
verifies pushed images)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from buildctl.errors import UsageError
from buildctl.inspect import elf
from buildctl.inspect.elf_checks import check_page_size, visible_elf_files
from buildctl.inspect.image_fs import LayeredView
from buildctl.inspect.layers import LayerCache, dump_table, load_table, scan_layer
from buildctl.inspect.results import CheckStatus
from buildctl.inspect.verify import VerifyOptions, page_size_bytes
from tests.helpers.elf import cross_compile_arm64, elf_for, elf_with_loads, make_tar

K4, K16, K64 = 4096, 16384, 65536
ARM = "linux/arm64"


def alignment(data: bytes) -> int:
    layout = elf.parse_layout(data)
    return elf.load_alignment(layout, data[layout.phoff : layout.phdrs_end])


@pytest.mark.parametrize(("segments", "expected"), [
    ([(0, 0x400000, K64), (0xFFE8, 0x41FFE8, K64)], K64),  # GNU ld's aarch64 default
    ([(0, 0x400000, K4), (0xFE8, 0x401FE8, K4)], K4),  # -z max-page-size=4096
    ([(0, 0x400000, K16), (0x3FE8, 0x407FE8, K16)], K16),  # Android's 16 KiB
    ([(0, 0x400000, K64), (0x1000, 0x412000, K64)], K4),  # aligned, but offset/vaddr congruent mod 4 KiB only
    # p_align 0: "no alignment" (gABI), only p_offset ≡ p_vaddr limits the page size
    ([(0, 0, K64), (0, 0, 0)], K64), ([(0, 0x400000, 0)], 0x400000),
    ([(0x100, 0x100, 0)], 1 << 63),  # congruent on every page size
    # p_align 1 fails glibc ld.so's p_align & (pagesize - 1) test on every page size: 1 byte
    ([(0x100, 0x1100, 1)], 1), ([(0x100, 0x100, 1)], 1),
    ([(0, 0x10000, 0x30000)], K64),  # not a power of two: the pages that divide it
    ([(0x2000, 0x2000, K64)], K64),  # offset == vaddr: congruent on every page size
])
def test_load_alignment_is_the_largest_page_every_segment_maps_on(segments, expected) -> None:
    assert alignment(elf_with_loads(segments)) == expected


def test_load_alignment_reads_32_bit_big_endian_too() -> None:
    data = elf_with_loads([(0, 0x10000, K64), (0x1F00, 0x22F00, K64)], machine=8, elf_class=1, order=">")
    assert alignment(data) == K4  # vaddr - offset = 0x21000: congruent modulo 4 KiB, not 8 KiB
    assert alignment(elf_with_loads([(0, 0, K16)], machine=8, elf_class=1, order=">")) == K16


def test_no_pt_load_or_a_table_cut_short_is_zero() -> None:
    assert alignment(elf_for("arm64")) == 0  # the header says one entry; the table is not there
    full = elf_with_loads([(0, 0x400000, K4)])
    assert alignment(full[:-8]) == 0


def test_the_layer_scan_keeps_the_alignment_and_the_cache_round_trips_it(tmp_path: Path) -> None:
    layer = make_tar([("app/narrow", "f", elf_with_loads([(0, 0x400000, K4)]), 0o755),
                      ("app/wide", "f", elf_with_loads([(0, 0x400000, K64)]), 0o644),
                      ("app/hard", "h", "app/narrow", 0o755), ("app/text", "f", b"hello", 0o644)])
    table = scan_layer(io.BytesIO(layer))
    assert table.entries["/app/narrow"].page_align == K4
    assert table.entries["/app/wide"].page_align == K64
    assert table.entries["/app/hard"].page_align == K4  # a hard link is its file
    assert table.entries["/app/text"].page_align == 0
    assert load_table(dump_table(table)) == table
    cache = LayerCache(tmp_path)
    cache.get("sha256:" + "a" * 64, lambda: table)
    again = LayerCache(tmp_path).get("sha256:" + "a" * 64, lambda: pytest.fail("read from disk, not loaded"))
    assert again.entries["/app/narrow"].page_align == K4


def test_a_cache_file_with_a_bad_alignment_is_refused() -> None:
    table = scan_layer(io.BytesIO(make_tar([("x", "f", elf_with_loads([(0, 0x400000, K4)]), 0o755)])))
    data = dump_table(table).replace(b",4096]", b',"4096"]')
    with pytest.raises(ValueError, match="invalid table entry for '/x'"):
        load_table(data)


def fs(*files: tuple[str, bytes]) -> LayeredView:
    return LayeredView([scan_layer(io.BytesIO(make_tar([(p, "f", d, 0o755) for p, d in files])))])


NARROW = elf_with_loads([(0, 0x400000, K4), (0xFE8, 0x401FE8, K4)])
MIDDLE = elf_with_loads([(0, 0x400000, K16)])
WIDE = elf_with_loads([(0, 0x400000, K64), (0xFFE8, 0x41FFE8, K64)])


def page_check(view: LayeredView, page: int, platform: str = ARM, allow: tuple[str, ...] = ()):
    return check_page_size(platform, visible_elf_files(view), allow, page)


def test_at_the_default_4k_narrow_files_are_a_warning_naming_file_and_alignment() -> None:
    check = page_check(fs(("bin/narrow", NARROW), ("bin/middle", MIDDLE), ("bin/wide", WIDE)), K4)
    assert check.status is CheckStatus.WARN
    assert check.name == "page-size"
    assert check.detail.startswith(
        "1 of 3 ELF files have PT_LOAD segments aligned to 4 KiB, e.g. /bin/narrow: they fail on arm64 kernels "
        "with 16 KiB or 64 KiB pages; 1 of 3 ELF files have PT_LOAD segments aligned to 16 KiB, e.g. /bin/middle: "
        "they fail on arm64 kernels with 64 KiB pages")
    assert "verify.page_size 16k or 64k makes this an error" in check.detail


@pytest.mark.parametrize(("page", "failing"), [(K16, ["/bin/narrow"]), (K64, ["/bin/narrow", "/bin/middle"])])
def test_larger_pages_fail_every_file_that_cannot_be_mapped(page: int, failing: list[str]) -> None:
    check = page_check(fs(("bin/narrow", NARROW), ("bin/middle", MIDDLE), ("bin/wide", WIDE)), page)
    assert check.status is CheckStatus.FAIL
    for path in failing:
        assert path in check.detail
    assert "/bin/wide" not in check.detail
    assert f"they cannot be mapped on {elf.describe_size(page)} pages" in check.detail
    assert check.detail.endswith(f"(verify.page_size: {page // 1024}k)")


def test_files_aligned_for_the_page_size_pass() -> None:
    assert page_check(fs(("bin/wide", WIDE)), K64).status is CheckStatus.PASS
    assert page_check(fs(("bin/wide", WIDE)), K4).detail == "1 ELF file maps on 4 KiB pages"
    middle = page_check(fs(("bin/middle", MIDDLE), ("bin/wide", WIDE)), K16)
    assert (middle.status, middle.detail) == (CheckStatus.PASS, "2 ELF files map on 16 KiB pages "
                                                                "(1 not on 64 KiB, e.g. /bin/middle)")
    assert page_check(fs(("etc/motd", b"hello")), K64).detail == "no loadable ELF files"


def test_p_align_zero_maps_on_every_page_its_offset_and_address_allow() -> None:
    # the kernel runs such a file (/tmp/advA/findings/exit_amd64_palign0); it was failed at every page size
    view = fs(("bin/zero", elf_with_loads([(0, 0x400000, 0)])), ("bin/skewed", elf_with_loads([(0x100, 0x10100, 0)])))
    assert page_check(view, K64).detail == "2 ELF files map on 64 KiB pages"
    assert page_check(view, K4).status is CheckStatus.PASS
    # p_align 1 stays 1 byte: glibc's ld.so refuses such a library on every page size
    assert page_check(fs(("bin/one", elf_with_loads([(0x100, 0x10100, 1)]))), K4).status is CheckStatus.FAIL


def test_below_4k_fails_even_at_the_default() -> None:
    check = page_check(fs(("bin/odd", elf_with_loads([(0x10, 0x400020, 16)]))), K4)
    assert check.status is CheckStatus.FAIL
    assert "aligned to 16 bytes, e.g. /bin/odd: they cannot be mapped on 4 KiB pages" in check.detail


def test_only_arm64_and_only_its_own_machine_is_checked() -> None:
    assert page_check(fs(("bin/narrow", NARROW)), K64, platform="linux/amd64") is None
    amd64_narrow = elf_with_loads([(0, 0x400000, K4)], machine=62)
    assert page_check(fs(("bin/x86", amd64_narrow)), K64).detail == "no loadable ELF files"  # elf-files fails it
    allowed = page_check(fs(("opt/vendor/narrow", NARROW), ("bin/wide", WIDE)), K64, allow=("/opt/vendor/*",))
    assert allowed.status is CheckStatus.PASS


def test_page_size_names_and_options() -> None:
    assert [page_size_bytes(n) for n in ("4k", "16k", "64k")] == [K4, K16, K64]
    with pytest.raises(UsageError, match=r"page size '8k': expected 4k, 16k, 64k"):
        page_size_bytes("8k")
    with pytest.raises(ValueError, match="page size 8192"):
        VerifyOptions(page_size=8192)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[int, bytes]:
    out = tmp_path_factory.mktemp("cross")
    return {size: cross_compile_arm64(out, max_page_size=size) for size in (K4, K64)}


def test_cross_compiled_binaries_are_read_as_the_linker_wrote_them(compiled) -> None:
    narrow, wide = compiled[K4], compiled[K64]
    assert elf.parse_ident(narrow).machine == elf.EM_AARCH64
    assert alignment(narrow) == K4 and alignment(wide) == K64
    view = fs(("usr/local/bin/narrow", narrow), ("usr/local/bin/wide", wide))
    assert page_check(view, K4).status is CheckStatus.WARN
    assert "e.g. /usr/local/bin/narrow" in page_check(view, K16).detail
    assert page_check(view, K16).status is CheckStatus.FAIL
    assert page_check(fs(("usr/local/bin/wide", wide)), K64).status is CheckStatus.PASS

from __future__ import annotations

import pytest

from buildctl.inspect import elf
from tests.helpers.elf import MACHINES, elf_for, make_elf


@pytest.mark.parametrize("arch", sorted(MACHINES))
def test_each_architecture_matches_its_own_binaries_only(arch: str) -> None:
    expected = elf.expected_for(arch)
    assert expected is not None
    assert expected.matches(elf.parse_ident(elf_for(arch)))
    for other in MACHINES.keys() - {arch}:
        assert not expected.matches(elf.parse_ident(elf_for(other))), other


def test_machine_numbers_are_the_abi_ones() -> None:
    assert {a: elf.parse_ident(elf_for(a)).machine for a in MACHINES} == {
        "amd64": 62, "arm64": 183, "arm": 40, "386": 3, "ppc64le": 21, "s390x": 22, "riscv64": 243,
    }


def test_big_endian_machine_is_read_big_endian() -> None:
    ident = elf.parse_ident(make_elf(22, order=">"))
    assert (ident.machine, ident.endian, ident.bits) == (22, "BE", 64)
    # The same number read with the wrong byte order would be 5632: the check must not do that.
    assert elf.parse_ident(make_elf(22, order="<")).machine == 22


def test_ppc64_byte_order_decides_ppc64le() -> None:
    big = elf.parse_ident(make_elf(21, order=">"))
    assert not elf.expected_for("ppc64le").matches(big)
    assert elf.expected_for("ppc64").matches(big)


def test_x32_abi_is_not_amd64() -> None:
    x32 = elf.parse_ident(make_elf(62, elf_class=1))
    assert not elf.expected_for("amd64").matches(x32)
    assert x32.describe() == "x86-64 (EM_X86_64, 32-bit LE)"


def test_describe_names_machine_and_constant() -> None:
    assert elf.parse_ident(elf_for("amd64")).describe() == "x86-64 (EM_X86_64)"
    assert elf.parse_ident(elf_for("arm64")).describe() == "aarch64 (EM_AARCH64)"
    assert elf.parse_ident(make_elf(9999)).describe() == "unknown (e_machine 9999, 64-bit LE)"


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"#!/bin/sh\n", "not an ELF file"),
        (b"\x7fELF\x02\x01", "truncated ELF header"),
        (b"\x7fELF\x03" + bytes(15), "invalid ELF class 3"),
        (b"\x7fELF\x02\x07" + bytes(14), "invalid ELF data encoding 7"),
    ],
)
def test_invalid_headers_are_rejected(head: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        elf.parse_ident(head)


def test_unknown_architecture_has_no_expectation() -> None:
    assert elf.expected_for("mips") is None

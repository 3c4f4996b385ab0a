"""The one platform type: parse (strict, for what users write), of (lenient, for what images and
builders report), normalise, match."""

import pytest

from buildctl import platforms
from buildctl.platforms import Platform, PlatformError


@pytest.mark.parametrize(("parts", "expected"), [
    (("linux", "arm64", "v8"), "linux/arm64"), (("linux", "aarch64", None), "linux/arm64"),
    (("linux", "arm", None), "linux/arm/v7"), (("linux", "arm", "6"), "linux/arm/v6"),
    (("Linux", "x86_64", ""), "linux/amd64"), (("linux", "amd64", "v1"), "linux/amd64"),
    (("linux", "amd64", "v3"), "linux/amd64/v3"), (("linux", "s390x", None), "linux/s390x"),
    (("linux", "armhf", None), "linux/arm/v7"), (("linux", "armel", None), "linux/arm/v6"),
    (("linux", "i686", None), "linux/386"), (("windows", "amd64", None), "windows/amd64"),
])
def test_of_normalises_like_containerd(parts, expected) -> None:
    assert str(Platform.of(*parts)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("linux/arm64/v8", "linux/arm64"), ("linux/amd64", "linux/amd64"), ("linux/arm/v7", "linux/arm/v7"),
    ("linux/arm", "linux/arm/v7"), ("linux/amd64/v2", "linux/amd64/v2"), ("linux/riscv64", "linux/riscv64"),
])
def test_parse_accepts_supported_platforms(text, expected) -> None:
    assert str(Platform.parse(text)) == expected


@pytest.mark.parametrize(("text", "says"), [
    ("arm64", "expected os/arch[/variant]"),
    ("linux/", "expected os/arch[/variant]"),
    ("linux/arm64/v8/x", "expected os/arch[/variant]"),
    ("windows/arm64", "Linux (ELF) images only"),
    ("darwin/arm64", "Linux (ELF) images only"),
    ("linux/arm64/v99", "arm64 has no variant 'v99' (variants: none)"),
    ("linux/amd64/v9", "amd64 has no variant 'v9' (variants: one of v2, v3, v4)"),
    ("linux/arm/v9", "arm has no variant 'v9' (variants: one of v7, v6, v5)"),
    ("linux/sparc64", "architecture 'sparc64' is not one of"),
])
def test_parse_refuses_what_buildctl_cannot_verify(text, says) -> None:
    with pytest.raises(PlatformError) as raised:
        Platform.parse(text)
    assert says in str(raised.value)


def test_missing_and_foreign_compare_normal_forms() -> None:
    assert platforms.missing(("linux/arm64/v8", "linux/arm/v7"), ("linux/arm64", "linux/amd64")) == ("linux/arm/v7",)
    assert platforms.foreign(("linux/amd64", "linux/arm64/v8", "linux/amd64/v3"), "linux/amd64") == ("linux/arm64/v8",)
    assert platforms.foreign(("linux/amd64",), "linux/arm64") == ("linux/amd64",)


def test_one_table_names_each_architecture_everywhere() -> None:
    arm64 = Platform.parse("linux/arm64").info
    assert (arm64.qemu, arm64.elf.machine, arm64.elf.name) == ("qemu-aarch64", 183, "aarch64")
    assert Platform.of_machine("x86_64") == Platform("linux", "amd64")
    assert Platform.of_machine("aarch64") == Platform("linux", "arm64")

"""Tar headers Go's archive/tar (containerd) and Python's tarfile could read differently are refused;
tars both read alike still scan (crafted bytes, and the real Debian base layers)."""

from __future__ import annotations

import io
import tarfile

import pytest

from buildctl.errors import OperationError
from buildctl.inspect.layers import scan_layer
from buildctl.inspect.tar_headers import go_numeric, go_octal, header_problem, pax_problem
from buildctl.registry.client import RegistryClient
from tests.helpers.cli import BASE_IMAGE
from tests.helpers.elf import elf_for, make_tar

USTAR, GNU = b"ustar\x0000", b"ustar  \x00"
ARM, AMD = elf_for("arm64"), elf_for("amd64")


def header(name: bytes, size: int = 0, *, size_field: bytes | None = None, typeflag: bytes = b"0",
           magic: bytes = USTAR, mode_field: bytes = b"0000755\0", prefix: bytes = b"") -> bytes:
    block = bytearray(512)
    block[0:100] = name.ljust(100, b"\0")
    block[100:108] = mode_field
    block[108:116] = block[116:124] = b"0000000\0"
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % 0
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:265] = magic
    block[345:345 + len(prefix)] = prefix
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def member(name: bytes, data: bytes, **fields) -> bytes:  # type: ignore[no-untyped-def]
    return header(name, len(data), **fields) + data + bytes(-len(data) % 512)


def pax(records: dict[bytes, bytes], typeflag: bytes = b"x") -> bytes:
    body = b""
    for key, value in records.items():
        text = b" %s=%s\n" % (key, value)
        length = len(text) + 1
        while length != len(text) + len(str(length)):  # the length counts its own digits
            length = len(text) + len(str(length))
        body += b"%d%s" % (length, text)
    return member(b"././@PaxHeader", body, typeflag=typeflag)


END = bytes(1024)


def test_go_and_python_readings_of_numeric_fields() -> None:
    assert go_octal(b"\x000000012\0") == 10 == go_octal(b" 12 \0")  # Go trims NULs and spaces at both ends
    assert tarfile.nti(b"\x000000012\0") == 0  # Python stops at the first NUL
    assert go_octal(b"0o12\0\0\0\0") is None and tarfile.nti(b"0o12\0\0\0\0") == 10  # int(s, 8) takes 0o
    assert go_numeric(b"\x80" + (1234).to_bytes(11, "big")) == 1234
    assert go_numeric(b"\xff" * 8) == -1 == tarfile.nti(b"\xff" * 8)
    assert go_numeric(b"\x81" + bytes(7)) == 1 << 56  # base-256 for Go, not a number for Python


def test_a_size_field_opening_with_a_nul_is_refused() -> None:
    """The adversarial finding: Go reads the real size, Python 0 and then the file's data as headers."""
    inner = member(b"app", ARM) + END
    layer = member(b"app", inner + AMD, size_field=b"\0" + b"%010o" % len(inner + AMD) + b"\0") + END
    with pytest.raises(OperationError, match=r"could read differently: its size field .* reads as 0 in Python"):
        scan_layer(io.BytesIO(layer))


@pytest.mark.parametrize("field", [b"0o00755\0", b"+0000755", b"0755\t\0\0\0", b"\x81\0\0\0\0\0\x01\xed",
                                   b"\0" + b"000755\0"])
def test_a_mode_field_the_two_read_differently_is_refused(field: bytes) -> None:
    with pytest.raises(OperationError, match="its mode field"):
        scan_layer(io.BytesIO(member(b"app", AMD, mode_field=field) + END))


def test_a_block_that_is_no_header_after_a_member_is_refused() -> None:
    """Python's tarfile would end the archive there silently; Go fails the pull."""
    garbage = b"\x7fELF" + b"\xff" * 508
    layer = member(b"app", ARM) + garbage + member(b"usr/bin/helper", AMD) + END
    with pytest.raises(OperationError, match=r"not a readable tar archive: a block at byte \d+ that is no tar header"):
        scan_layer(io.BytesIO(layer))


def test_one_zero_block_followed_by_a_member_is_refused() -> None:
    layer = member(b"app", ARM) + bytes(512) + member(b"usr/bin/helper", AMD) + END
    with pytest.raises(OperationError, match="a zero block followed by one that is not"):
        scan_layer(io.BytesIO(layer))


def test_a_truncated_header_at_the_end_is_refused() -> None:
    with pytest.raises(OperationError, match=r"a truncated tar header \(300 bytes"):
        scan_layer(io.BytesIO(member(b"app", ARM) + header(b"x")[:300]))


def test_a_prefix_on_a_gnu_header_is_refused() -> None:
    """Python joins it to the name (any magic); Go only for ustar (and not for a GNU header whose
    atime/ctime parse)."""
    layer = member(b"app", AMD, magic=GNU, prefix=b"usr") + END
    with pytest.raises(OperationError, match="a prefix field b'usr' on a GNU header"):
        scan_layer(io.BytesIO(layer))
    assert header_problem(header(b"app", magic=USTAR, prefix=b"usr")) == ""  # ustar: both join it


@pytest.mark.parametrize("records, problem", [
    ({b"size": b"1_0"}, "a pax size of '1_0'"),
    ({b"size": b" 10"}, "a pax size of ' 10'"),
    ({b"mtime": b"1e3"}, "a pax mtime of '1e3'"),
    ({b"path": b"a\0b"}, "a pax path holding a NUL"),
    ({b"GNU.sparse.size": b"10"}, "a GNU sparse file"),
])
def test_pax_records_go_refuses_are_refused(records: dict[bytes, bytes], problem: str) -> None:
    with pytest.raises(OperationError, match=problem):
        scan_layer(io.BytesIO(pax(records) + member(b"app", AMD) + END))


def test_malformed_pax_records_and_global_fields_are_refused() -> None:
    bad_length = member(b"././@PaxHeader", b"99 path=app\n", typeflag=b"x")
    with pytest.raises(OperationError, match="a malformed pax record at byte 0"):
        scan_layer(io.BytesIO(bad_length + member(b"app", AMD) + END))
    # Python applies a global header's path/size to later members; Go hands it over and containerd skips it
    with pytest.raises(OperationError, match="a global pax header setting size"):
        scan_layer(io.BytesIO(pax({b"size": b"0"}, typeflag=b"g") + member(b"app", AMD) + END))
    comment = pax({b"comment": b"4a79f41"}, typeflag=b"g")  # git archive writes one: read alike
    assert set(scan_layer(io.BytesIO(comment + member(b"app", AMD) + END)).entries) == {"/app"}


def test_pax_gnu_and_ustar_headers_read_and_a_tar_may_end_without_zero_blocks() -> None:
    """What real writers make: BuildKit (pax, ustar with a prefix, GNU for devices), GNU tar (long
    names as 'L' headers); Go ends an archive at the end of the stream, so a tar without its two
    zero blocks is whole."""
    blocks = b""
    long_dir = "usr/share/" + "d" * 120
    for name, fmt in ((f"{long_dir}/pax-file", tarfile.PAX_FORMAT), (f"{long_dir}/gnu-file", tarfile.GNU_FORMAT),
                      ("usr/share/" + "u" * 80 + "/ustar-file", tarfile.USTAR_FORMAT)):
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(AMD), 0o755
        blocks += info.tobuf(fmt, "utf-8", "surrogateescape") + AMD + bytes(-len(AMD) % 512)
    device = tarfile.TarInfo("dev/null")
    device.type, device.devmajor, device.devminor = tarfile.CHRTYPE, 1, 3
    blocks += device.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    table = scan_layer(io.BytesIO(blocks))
    assert {f"/{long_dir}/pax-file", f"/{long_dir}/gnu-file", "/usr/share/" + "u" * 80 + "/ustar-file",
            "/dev/null"} <= set(table.entries)
    assert set(scan_layer(io.BytesIO(make_tar([("app", "f", AMD, 0o755)]))).entries) == {"/app"}


def test_the_real_debian_base_layer_reads() -> None:
    """BuildKit's Debian base layer (ustar, pax paths, GNU device headers, 12,000 entries) passes."""
    repository = BASE_IMAGE.rsplit(":", 1)[0]
    with RegistryClient() as client:
        index = client.get_manifest(BASE_IMAGE).json()
        amd64 = next(m for m in index["manifests"] if m.get("platform", {}).get("architecture") == "amd64")
        layers = client.get_manifest(f"{repository}@{amd64['digest']}").json()["layers"]
        tables = [client.stream_blob(repository, layer["digest"], scan_layer) for layer in layers]
    assert any("/usr/bin/bash" in table.entries or "/bin/bash" in table.entries for table in tables)


@pytest.mark.parametrize("key", ["size", "uid", "mtime"])
def test_a_pax_number_of_thousands_of_digits_is_refused_not_a_crash(key: str) -> None:
    body = f" {key}={'9' * 5000}\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    assert "out of Go's range" in pax_problem(f"{length}{body}".encode())
    assert pax_problem(b"9" * 5000 + b" path=x\n") == "a malformed pax record at byte 0"


@pytest.mark.parametrize("kind", [tarfile.CONTTYPE, b"V", b"Z"])
def test_a_member_type_containerd_does_not_unpack_is_refused(kind: bytes) -> None:
    """Python's tarfile reads a contiguous file ('7') or an unknown type as a regular file; containerd's
    applier fails the pull on it (unhandled tar header type)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = elf_for("arm64")
        info = tarfile.TarInfo("app")
        info.size, info.mode, info.type = len(data), 0o755, kind
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(OperationError, match=r"of type b'.', which containerd does not unpack"):
        scan_layer(io.BytesIO(out.getvalue()))

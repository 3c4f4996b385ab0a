"""buildctl.references: image references split as distribution/reference does (registry, path, tag,
digest), refused with the reason a user can act on, and the checks services.yaml validation uses."""

from __future__ import annotations

import re

import pytest

from buildctl.references import (
    TAG_RULE,
    ImageReference,
    is_valid_repository_path,
    is_valid_tag,
    name_problem,
    parse_reference,
    registry_problem,
    written_name,
)

SHA = "sha256:" + "0123456789abcdef" * 4
GENERIC = "expected [registry[:port]/]path[:tag][@sha256:digest]"
LOWERCASE = "repository names must be lowercase"
BAD_DIGEST = "the digest must look like sha256:<64 hex characters>"


@pytest.mark.parametrize(("text", "registry", "repository", "tag", "digest"), [
    ("nginx", "docker.io", "library/nginx", None, None),  # an official image
    ("nginx:1.27-alpine", "docker.io", "library/nginx", "1.27-alpine", None),
    ("bitnami/redis", "docker.io", "bitnami/redis", None, None),  # no host in the first component
    ("a/b/c/d:e", "docker.io", "a/b/c/d", "e", None),
    ("localhost/app", "localhost", "app", None, None),  # localhost is a host without a dot
    ("localhost:5000/team/app:1", "localhost:5000", "team/app", "1", None),
    ("localhost", "docker.io", "library/localhost", None, None),  # alone, it is a repository
    ("127.0.0.1:5000/app", "127.0.0.1:5000", "app", None, None),
    ("[::1]:5000/app:v2", "[::1]:5000", "app", "v2", None),
    ("[fe80::1]/app", "[fe80::1]", "app", None, None),
    ("myacr.azurecr.io/voting-app/vote:42", "myacr.azurecr.io", "voting-app/vote", "42", None),
    ("MyRegistry/app", "MyRegistry", "app", None, None),  # uppercase: only a host may have it
    ("my-host:443/a", "my-host:443", "a", None, None),
    ("example.com", "docker.io", "library/example.com", None, None),  # a dot, but no slash: a path
    ("foo:5000", "docker.io", "library/foo", "5000", None),  # no slash: the "port" is a tag
    (f"host:5000/app@{SHA}", "host:5000", "app", None, SHA),
    (f"host:5000/app:1@{SHA}", "host:5000", "app", "1", SHA),
    (f"nginx@{SHA}", "docker.io", "library/nginx", None, SHA),
    ("a__b/c.d-e---f/g_h", "docker.io", "a__b/c.d-e---f/g_h", None, None),  # every separator
    ("nginx:_private", "docker.io", "library/nginx", "_private", None),  # a tag may start with '_'
    ("nginx:V1.X", "docker.io", "library/nginx", "V1.X", None),  # tags may have uppercase
])
def test_parse_splits_like_distribution(text, registry, repository, tag, digest) -> None:
    assert parse_reference(text) == ImageReference(registry, repository, tag, digest)


@pytest.mark.parametrize("text", [
    "localhost:5000/team/app:1", f"host:5000/a/b:tag@{SHA}", f"[::1]:5000/app@{SHA}", "r.io/x",
])
def test_a_full_reference_prints_back_unchanged(text: str) -> None:
    assert str(parse_reference(text)) == text


def test_a_short_reference_prints_in_full() -> None:
    ref = parse_reference("redis:7")
    assert (ref.name, str(ref)) == ("docker.io/library/redis", "docker.io/library/redis:7")
    assert str(ref.with_tag(None).with_digest(SHA)) == f"docker.io/library/redis@{SHA}"
    assert str(ref.with_tag("8").with_digest(SHA)) == f"docker.io/library/redis:8@{SHA}"
    assert ref.with_tag("8").tag == "8" and ref.tag == "7"  # a new value; the original is frozen
    with pytest.raises(AttributeError):
        ref.tag = "9"  # type: ignore[misc]


@pytest.mark.parametrize(("text", "reason"), [
    ("Nginx", LOWERCASE),
    ("team/App", LOWERCASE),
    ("localhost:5000/App", LOWERCASE),
    ("myacr.azurecr.io/Team/app:1", LOWERCASE),
    ("nginx:", TAG_RULE),  # an empty tag
    ("nginx:.hidden", TAG_RULE),
    ("nginx:-rc1", TAG_RULE),
    ("nginx:a+b", TAG_RULE),
    ("host:5000/app:" + "a" * 129, TAG_RULE),
    ("nginx@sha256:abc", BAD_DIGEST),
    ("nginx@sha256:" + "g" * 64, BAD_DIGEST),
    ("nginx@" + "0" * 64, BAD_DIGEST),  # no algorithm
    ("nginx@", GENERIC),
    ("/nginx", GENERIC),
    ("nginx/", GENERIC),
    ("team//app", GENERIC),
    (".app", GENERIC),
    ("-app", GENERIC),
    ("app-", GENERIC),
    ("a___b", GENERIC),  # separators are '.', '_', '__' or dashes, nothing longer
    ("a-_b", GENERIC),
    ("-host.io/app", GENERIC),
    ("host:/app", GENERIC),  # a colon without a port
    ("https://host.io/app", GENERIC),
    (" nginx", GENERIC),
    ("nginx latest", GENERIC),
    ("host.io/app:1:2", GENERIC),
])
def test_refusals_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_reference(text)
    assert str(raised.value) == f"invalid image reference {text!r}: {reason}"


def test_the_empty_reference_is_named_as_such() -> None:
    with pytest.raises(ValueError, match="^empty image reference$"):
        parse_reference("")


def test_tag_length_is_1_to_128() -> None:
    assert parse_reference("nginx:" + "a" * 128).tag == "a" * 128
    assert is_valid_tag("a" * 128) and is_valid_tag("1")
    assert not is_valid_tag("a" * 129)
    assert not is_valid_tag("")


@pytest.mark.parametrize(("tag", "ok"), [
    ("v1.2.3-rc.1_b7", True), ("_x", True), ("1", True), ("LATEST", True), ("a..b--c", True),
    (".x", False), ("-x", False), ("a/b", False), ("a:b", False), ("a@b", False), ("a b", False),
])
def test_is_valid_tag(tag: str, ok: bool) -> None:
    assert is_valid_tag(tag) is ok


def test_the_repository_path_may_be_255_characters_the_registry_not_counted() -> None:
    host = "registry.example.com:5000/"
    fits = host + "a" * 255
    assert parse_reference(fits + ":tag").repository == "a" * 255
    with pytest.raises(ValueError) as raised:
        parse_reference(fits + "b:tag")  # 256: neither the tag nor the registry counts
    assert "the repository path aaaa" in str(raised.value)
    assert "is 256 characters; registries allow at most 255 (the registry not counted)" in str(raised.value)
    assert len(str(raised.value)) < 250  # the message shows the start of the name, not all of it


def test_docker_hub_paths_count_library() -> None:
    assert parse_reference("a" * 247).repository == "library/" + "a" * 247  # 255 once normalised
    with pytest.raises(ValueError, match="is 256 characters"):
        parse_reference("a" * 248)


def test_name_problem_counts_the_path_only() -> None:
    assert name_problem("a" * 255) is None
    problem = name_problem("team/" + "a" * 251)
    assert problem is not None and problem.startswith("the repository path team/aaa")
    assert "is 256 characters; registries allow at most 255" in problem


HEX64 = "0123456789abcdef" * 4


def test_a_bare_64_hex_digit_name_is_an_image_id() -> None:
    with pytest.raises(ValueError) as raised:
        parse_reference(HEX64)
    assert str(raised.value).startswith(f"invalid image reference {HEX64!r}: 64 hexadecimal digits are an image ID")
    # as distribution's normalize.go: only the whole reference; with a host, a tag or another length it is a name
    assert parse_reference(f"r.io/{HEX64}").repository == HEX64
    assert parse_reference(f"{HEX64}:1").repository == f"library/{HEX64}"
    assert parse_reference(HEX64[:63]).repository == f"library/{HEX64[:63]}"


@pytest.mark.parametrize(("host", "problem"), [
    ("myacr.azurecr.io", None), ("127.0.0.1:5000", None), ("localhost", None), ("host:1", None),
    ("host:65535", None), ("[::1]", None), ("[::1]:5000", None), ("My-Registry.io", None),
    ("", "empty; expected host[:port], e.g. myacr.azurecr.io"),
    ("host:0", "port 0 is out of range (1-65535)"),
    ("host:65536", "port 65536 is out of range (1-65535)"),
    ("host:00000", "port 00000 is out of range (1-65535)"),
    ("host:", "expected host[:port], e.g. myacr.azurecr.io"),
    ("host:-1", "expected host[:port], e.g. myacr.azurecr.io"),
    ("https://myacr.azurecr.io", "expected host[:port], e.g. myacr.azurecr.io"),
    ("myacr.azurecr.io/", "expected host[:port], e.g. myacr.azurecr.io"),
    ("myacr.azurecr.io/team", "expected host[:port], e.g. myacr.azurecr.io"),
    ("-host.io", "expected host[:port], e.g. myacr.azurecr.io"),
    ("host-.io", "expected host[:port], e.g. myacr.azurecr.io"),
    ("host..io", "expected host[:port], e.g. myacr.azurecr.io"),
    ("user@host", "expected host[:port], e.g. myacr.azurecr.io"),
    ("host :5000", "expected host[:port], e.g. myacr.azurecr.io"),
])
def test_registry_problem(host: str, problem: str | None) -> None:
    assert registry_problem(host) == problem


@pytest.mark.parametrize(("path", "ok"), [
    ("voting-app/vote", True), ("vote", True), ("a/b/c", True), ("a.b_c__d-e", True),
    ("Vote", False), ("a//b", False), ("/a", False), ("a/", False), ("", False),
    ("host:5000/a", False), ("a:tag", False), ("a@" + SHA, False), ("_a", False),
])
def test_is_valid_repository_path(path: str, ok: bool) -> None:
    assert is_valid_repository_path(path) is ok


def test_a_trailing_newline_is_not_part_of_any_valid_value() -> None:
    assert not is_valid_tag("v1\n")
    assert registry_problem("myacr.azurecr.io\n") is not None
    assert not is_valid_repository_path("voting-app/vote\n")
    with pytest.raises(ValueError):
        parse_reference("nginx:1.27\n")


def test_tags_are_ascii_only() -> None:
    assert not is_valid_tag("versión")
    assert not is_valid_tag("١٢٣")  # Arabic-Indic digits
    with pytest.raises(ValueError):
        parse_reference("nginx:é")


@pytest.mark.parametrize(("digest", "message"), [
    ("sha256:" + "a" * 32, "a sha256 digest is 64 lowercase hex characters"),
    ("sha256:" + "A" * 64, "a sha256 digest is 64 lowercase hex characters"),
    ("sha512:" + "a" * 64, "a sha512 digest is 128 lowercase hex characters"),
    ("md5:" + "a" * 32, "unsupported digest algorithm 'md5' (sha256, sha384 or sha512)"),
])
def test_digests_are_what_go_digest_accepts(digest: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_reference(f"nginx@{digest}")
    for good in ("sha256:" + "a" * 64, "sha384:" + "b" * 96, "sha512:" + "c" * 128):
        assert parse_reference(f"nginx@{good}").digest == good


def test_docker_io_official_images_normalise_like_bare_names() -> None:
    assert parse_reference("docker.io/nginx:1") == parse_reference("nginx:1")
    # normalize.go: the legacy Docker Hub host is docker.io too
    assert parse_reference("index.docker.io/nginx:1") == parse_reference("nginx:1")
    assert parse_reference("index.docker.io/team/app").name == "docker.io/team/app"


@pytest.mark.parametrize(("text", "name"), [
    ("team/app:41", "team/app"), ("team/app", "team/app"), ("localhost:5000/a:1", "localhost:5000/a"),
    ("docker.io/library/redis:7@sha256:" + "a" * 64, "docker.io/library/redis"), ("redis@sha256:" + "b" * 64, "redis"),
])
def test_written_name_is_the_name_as_written(text: str, name: str) -> None:
    assert written_name(text) == name

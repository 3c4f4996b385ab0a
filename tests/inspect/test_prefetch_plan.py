"""Which layers the prefetch reads (pure): the image under the target stage, for the platforms the
build pulls it for, once per image however many services and platforms share it."""

from __future__ import annotations

from buildctl.inspect.dockerfile import BUILD, TARGET, BaseImage, image_base
from buildctl.inspect.prefetch import BaseTarget, layers_of, platform_manifests, pulled_for, wanted
from tests.helpers.cli import PROJECT

BOTH = ("linux/amd64", "linux/arm64")
DIGEST = "sha256:" + "1" * 64


def base(text: str, **kwargs) -> BaseImage | None:
    return image_base(text, path="Dockerfile", **kwargs)


def test_the_sample_services_are_built_from_the_build_arg_base() -> None:
    local = {"BASE_IMAGE": "127.0.0.1:5000/buildctl/base:bookworm-1"}
    for service in ("vote", "result", "worker"):
        found = image_base((PROJECT / service / "Dockerfile").read_text(), path="Dockerfile", build_args=local)
        assert found is not None and (found.reference, found.platform) == (local["BASE_IMAGE"], TARGET)


def test_the_final_stage_chain_is_followed_down_and_copy_sources_add_no_layers() -> None:
    text = ("FROM golang:1.22 AS build\nRUN go build\n"
            "FROM debian:12 AS runtime\nRUN apt-get update\n"
            "FROM runtime AS app\nCOPY --from=build /out /app\nCOPY --from=alpine:3 /etc/x /x\n"
            "FROM scratch AS tools\n")
    found = base(text, target="app")
    assert found is not None and (found.line, found.reference, found.platform) == (3, "debian:12", TARGET)
    assert base(text) is None  # the last stage is FROM scratch: nothing below the build's own layers
    assert base(text, target="build").reference == "golang:1.22"


def test_the_platform_of_the_stage_that_pulls_the_image_counts() -> None:
    pinned = base("FROM --platform=linux/amd64 debian:12 AS a\nFROM a\n")
    assert pinned is not None and pinned.platform == "linux/amd64"
    assert pulled_for(pinned, BOTH) == ("linux/amd64",)  # every platform's image is built on amd64 bytes
    restated = base("FROM --platform=linux/amd64 debian:12 AS a\nFROM --platform=$TARGETPLATFORM a\n")
    assert restated is not None and restated.platform == "linux/amd64"  # stage a pulls it, for amd64
    native = base("FROM --platform=$BUILDPLATFORM debian:12\n")
    assert native is not None and native.platform == BUILD and pulled_for(native, BOTH) == ()
    unresolved = base("ARG IMG\nFROM $IMG\n")
    assert unresolved is None  # an ARG without a value: the build decides, we cannot


def test_one_target_per_image_with_every_platform_of_its_services() -> None:
    shared = BaseImage(1, "reg/base:1", TARGET)
    targets = wanted([(shared, ("linux/amd64",)), (BaseImage(2, "reg/other:2", TARGET), BOTH),
                      (None, BOTH), (shared, ("linux/arm64/v8", "linux/amd64"))])
    assert targets == (BaseTarget("reg/base:1", ("linux/amd64", "linux/arm64")),
                       BaseTarget("reg/other:2", BOTH))
    assert wanted([(BaseImage(1, "reg/base:1", BUILD), BOTH)]) == ()
    # With the services' repositories: each image's are those built on it, where its tables are shared.
    homed = wanted([(shared, BOTH, "reg/a"), (BaseImage(2, "reg/other:2", TARGET), BOTH, "reg/c"), (shared, BOTH, "reg/b")])
    assert [(t.reference, t.homes) for t in homed] == [("reg/base:1", ("reg/a", "reg/b")), ("reg/other:2", ("reg/c",))]
    assert wanted([(BaseImage(1, "reg/base:1", TARGET), ("linux/nonsense-arch",))]) == ()  # the build says why


def test_the_index_entries_of_the_wanted_platforms_attestations_skipped() -> None:
    def entry(arch: str, digest: str, **extra) -> dict:
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 10,
                "platform": {"os": "linux", "architecture": arch}, **extra}
    label = {"vnd.docker.reference.type": "attestation-manifest"}
    index = {"manifests": [  # attestations as buildx writes them (unknown/unknown): skipped
        entry("unknown", "sha256:" + "f" * 64, annotations=label, platform={"os": "unknown", "architecture": "unknown"}),
        entry("amd64", "sha256:" + "a" * 64),
        entry("amd64", "sha256:" + "a" * 64),
        entry("arm64", "sha256:" + "b" * 64, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        entry("s390x", "sha256:" + "c" * 64),
        entry("amd64", "sha256:" + "e" * 64),  # a second amd64 entry: the first one is what a pull takes
    ]}
    found = platform_manifests(index, BOTH)
    assert {p: d.digest[7] for p, d in found.items()} == {"linux/amd64": "a", "linux/arm64": "b"}
    # The label with a real platform first: containerd picks by platform alone, so that is what a pull takes.
    posing = entry("amd64", "sha256:" + "d" * 64, annotations=label)
    found = platform_manifests({"manifests": [posing, *index["manifests"]]}, BOTH)
    assert {p: d.digest[7] for p, d in found.items()} == {"linux/amd64": "d", "linux/arm64": "b"}


def test_layers_are_taken_with_their_sizes_and_bounded() -> None:
    manifest = {"layers": [{"digest": DIGEST, "size": 123}, {"digest": DIGEST.replace("1", "2"), "size": 7}]}
    assert [(la.digest, la.size) for la in layers_of(manifest)] == [(DIGEST, 123), (DIGEST.replace("1", "2"), 7)]
    try:
        layers_of({"layers": [{"digest": DIGEST, "size": 1}] * 1000})
    except ValueError as exc:
        assert "1000 layers" in str(exc)
    else:
        raise AssertionError("a manifest of 1000 layers was accepted")

"""buildctl.engine.builder_spec, pure: `buildx create` argv, `buildx inspect` text -> BuilderState,
what differs from services.yaml, and which node builds each platform.

The inspect texts are buildx 0.13's output, copied verbatim (labels and GC policy included).
(tests/config/test_builder_config.py covers create commands as services.yaml produces them.)
"""

from __future__ import annotations

import csv
import io

import pytest

from buildctl.engine import builder_spec
from buildctl.engine.results import BuilderState, NodeState
from buildctl.model import BuilderConfig, BuilderNode, Driver, frozen_map

VERSION = "v0.13.2+debian-docker.io-26.1.5+dfsg1-9+deb13u1"
PLATFORMS = ("linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4, linux/arm64, linux/riscv64, linux/ppc64, "
             "linux/ppc64le, linux/s390x, linux/386, linux/mips64le, linux/mips64, linux/loong64, linux/arm/v7, "
             "linux/arm/v6")
LABELS_AND_GC = """\
Labels:
 org.mobyproject.buildkit.worker.executor:         oci
 org.mobyproject.buildkit.worker.hostname:         vm
 org.mobyproject.buildkit.worker.network:          host
GC Policy rule#0:
 All:           false
 Filters:       type==source.local,type==exec.cachemount,type==source.git.checkout
 Keep Duration: 48h0m0s
 Keep Bytes:    488.3MiB
GC Policy rule#1:
 All:        true
 Keep Bytes: 24.21GiB
"""


def node_text(name: str, endpoint: str, platforms: str, extra: str = "") -> str:
    return (f"Name:             {name}\nEndpoint:         {endpoint}\n{extra}Status:           running\n"
            f"BuildKit version: {VERSION}\nPlatforms:        {platforms}\n{LABELS_AND_GC}")


MULTINODE = ("Name:          ci\nDriver:        remote\nLast Activity: 2026-12-01 11:21:20 +0000 UTC\n\nNodes:\n"
             + node_text("ci0", "tcp://127.0.0.1:12341", PLATFORMS.replace("linux/amd64,", "linux/amd64*,", 1)) + "\n"
             + node_text("ci1", "tcp://10.213.0.2:12342", "linux/arm64*, " + PLATFORMS.replace("linux/arm64, ", "")))
CONTAINER = ("Name:          bc\nDriver:        docker-container\nLast Activity: 2026-12-01 11:19:59 +0000 UTC\n\n"
             "Nodes:\nName:                  bc0\nEndpoint:              unix:///var/run/docker.sock\n"
             'Driver Options:        image="127.0.0.1:5000/moby/buildkit:v0.13.2-debian" network="host"\n'
             "Status:                running\nBuildKit daemon flags: --allow-insecure-entitlement=network.host\n"
             f"BuildKit version:      {VERSION}\nPlatforms:             {PLATFORMS}\n{LABELS_AND_GC}")
DEFAULT = ("Name:          default\nDriver:        docker\nLast Activity: 2026-12-01 12:27:33 +0000 UTC\n\nNodes:\n"
           "Name:             default\nEndpoint:         default\nStatus:           running\n"
           "BuildKit version: v0.0.0+unknown\nPlatforms:        linux/amd64, linux/amd64/v2, linux/arm64\n"
           "Labels:\n org.mobyproject.buildkit.worker.containerd.namespace: moby\n")


def remote(*nodes: BuilderNode, name: str = "ci", **opts: str) -> BuilderConfig:
    return BuilderConfig(name, Driver.REMOTE, frozen_map(opts), None, nodes)


# --------------------------------------------------------------------------- parse_inspect


def test_a_two_node_remote_builder_is_read_with_its_pins():
    state = builder_spec.parse_inspect(MULTINODE)
    assert (state.name, state.driver, state.status, [n.name for n in state.nodes]) == ("ci", "remote", "running",
                                                                                      ["ci0", "ci1"])
    first, second = state.nodes
    assert (first.endpoint, first.version, first.pinned, first.native) == (
        "tcp://127.0.0.1:12341", VERSION, ("linux/amd64",), ("linux/amd64",))
    assert first.platforms[:2] == ("linux/amd64", "linux/amd64/v2") and len(first.platforms) == 15
    assert not any("*" in p for n in state.nodes for p in n.platforms)
    assert (second.endpoint, second.pinned, second.platforms[0]) == ("tcp://10.213.0.2:12342", ("linux/arm64",),
                                                                     "linux/arm64")
    assert first.driver_opts == () and first.error == ""  # labels and GC rules are not node fields


def test_driver_options_are_unquoted_and_split_on_the_first_equals():
    (node,) = builder_spec.parse_inspect(CONTAINER).nodes
    assert node.driver_opts == (("image", "127.0.0.1:5000/moby/buildkit:v0.13.2-debian"), ("network", "host"))
    assert node.pinned == () and node.native == ("linux/amd64",)  # unpinned: the worker's first platform
    text = CONTAINER.replace('network="host"', 'nodeselector="kubernetes.io/arch=arm64,pool=arm" env.X="a b"')
    assert builder_spec.parse_inspect(text).nodes[0].driver_opts[1:] == (
        ("nodeselector", "kubernetes.io/arch=arm64,pool=arm"), ("env.X", "a b"))


def test_the_docker_driver_node_shares_the_builders_name():
    state = builder_spec.parse_inspect(DEFAULT)
    assert (state.name, state.driver) == ("default", "docker")
    assert [(n.name, n.endpoint, n.version) for n in state.nodes] == [("default", "default", "v0.0.0+unknown")]


def test_older_and_broken_nodes():
    text = ("Name:   old\nDriver: docker-container\n\nNodes:\nName:      old0\nEndpoint:  unix:///var/run/docker.sock\n"
            "Status:    running\nBuildkit:  v0.11.6\nPlatforms: linux/amd64*\n\n"
            "Name:      old1\nEndpoint:  tcp://10.0.0.9:1234\nError:     dial tcp 10.0.0.9:1234: connect: refused\n"
            "Status:    inactive\nPlatforms:\n")
    first, second = builder_spec.parse_inspect(text).nodes
    assert (first.version, first.pinned) == ("v0.11.6", ("linux/amd64",))
    assert (second.status, second.error, second.platforms, second.version) == (
        "inactive", "dial tcp 10.0.0.9:1234: connect: refused", (), "")


@pytest.mark.parametrize("text", ["", "\n\n", "error: no builder \"x\" found\n"])
def test_text_without_a_builder_is_an_empty_state(text):
    assert builder_spec.parse_inspect(text) == BuilderState("", "", ())


# --------------------------------------------------------------------------- create_commands


def test_the_docker_driver_creates_nothing():
    assert builder_spec.create_commands(BuilderConfig()) == ()
    assert builder_spec.bootstrap_command("ci") == ("docker", "buildx", "inspect", "--bootstrap", "ci")


def test_a_builder_without_nodes_gets_one_default_node():
    cfg = BuilderConfig("bc", Driver.DOCKER_CONTAINER)
    assert builder_spec.create_commands(cfg) == (
        ("docker", "buildx", "create", "--name", "bc", "--driver", "docker-container", "--node", "bc0"),)


def test_nodes_append_after_the_first_and_take_builder_wide_options_under_their_own():
    cfg = remote(BuilderNode("tcp://a:1", ("linux/amd64", "linux/386"), frozen_map({"servername": "a"})),
                 BuilderNode("tcp://b:1", ("linux/arm64",)),
                 cacert="/tls/ca.pem", servername="bk")
    first, second = builder_spec.create_commands(cfg)
    assert first == ("docker", "buildx", "create", "--name", "ci", "--driver", "remote", "--node", "ci0",
                     "--driver-opt", "cacert=/tls/ca.pem", "--driver-opt", "servername=a",
                     "--platform", "linux/amd64,linux/386", "tcp://a:1")
    assert second == ("docker", "buildx", "create", "--name", "ci", "--driver", "remote", "--append", "--node", "ci1",
                      "--driver-opt", "cacert=/tls/ca.pem", "--driver-opt", "servername=bk",
                      "--platform", "linux/arm64", "tcp://b:1")
    assert [builder_spec.node_name(cfg, i) for i in range(2)] == ["ci0", "ci1"]


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("nodeselector", "kubernetes.io/arch=arm64", "nodeselector=kubernetes.io/arch=arm64"),
    ("nodeselector", "a=1,b=2", '"nodeselector=a=1,b=2"'),
    ("env.GREETING", 'say "hi"', '"env.GREETING=say ""hi"""'),
    ("env.MIXED", 'x,"y"', '"env.MIXED=x,""y"""'),
])
def test_driver_options_are_csv_fields_buildx_reads_back_whole(key, value, expected):
    (argv,) = builder_spec.create_commands(BuilderConfig("k", Driver.KUBERNETES, frozen_map({key: value})))
    field = argv[argv.index("--driver-opt") + 1]
    assert field == expected
    assert next(csv.reader(io.StringIO(field))) == [f"{key}={value}"]  # one field, exactly the option


# --------------------------------------------------------------------------- differences

NODE = NodeState("ci0", "tcp://a:1", "running", pinned=("linux/arm64",), driver_opts=(("servername", "a"),))


@pytest.mark.parametrize("wanted", [
    BuilderNode("tcp://a:1", ("linux/arm64",)),
    BuilderNode("tcp://a:1", ("linux/arm64/v8",)),                    # normalised
    BuilderNode("tcp://a:1", ("linux/aarch64",)),
    BuilderNode("", ("linux/arm64",)),                                 # no endpoint: the driver's default
    BuilderNode("tcp://a:1", ("linux/arm64",), frozen_map({"servername": "a"})),
])
def test_an_equivalent_builder_has_no_differences(wanted):
    assert builder_spec.differences(remote(wanted), BuilderState("ci", "remote", (NODE,))) == ()


def test_each_difference_is_one_phrase_naming_the_node():
    cfg = remote(BuilderNode("tcp://b:1", (), frozen_map({"servername": "b", "cacert": "/ca.pem"})))
    assert builder_spec.differences(cfg, BuilderState("ci", "remote", (NODE,))) == (
        "node ci0 is at tcp://a:1, services.yaml says tcp://b:1",
        "node ci0 is pinned to [linux/arm64], services.yaml says []",
        "node ci0 has driver option servername=a, services.yaml says b",
        "node ci0 has driver option cacert=(unset), services.yaml says /ca.pem",
    )


def test_the_driver_is_compared_first_and_the_docker_driver_has_nothing_else():
    assert builder_spec.differences(remote(BuilderNode("tcp://a:1")), builder_spec.parse_inspect(CONTAINER)) == (
        "it uses the docker-container driver, services.yaml asks for remote",)
    assert builder_spec.differences(BuilderConfig(), builder_spec.parse_inspect(DEFAULT)) == ()
    assert builder_spec.differences(BuilderConfig(), BuilderState("default", "docker", (NODE, NODE))) == ()


def test_the_captured_builders_match_the_config_that_made_them():
    two = remote(BuilderNode("tcp://127.0.0.1:12341", ("linux/amd64",)),
                 BuilderNode("tcp://10.213.0.2:12342", ("linux/arm64",)))
    assert builder_spec.differences(two, builder_spec.parse_inspect(MULTINODE)) == ()
    swapped = remote(*reversed(two.nodes))
    found = builder_spec.differences(swapped, builder_spec.parse_inspect(MULTINODE))
    assert len(found) == 4 and found[0] == "node ci0 is at tcp://127.0.0.1:12341, services.yaml says tcp://10.213.0.2:12342"
    bc = BuilderConfig("bc", Driver.DOCKER_CONTAINER,
                       frozen_map({"network": "host", "image": "127.0.0.1:5000/moby/buildkit:v0.13.2-debian"}))
    assert builder_spec.differences(bc, builder_spec.parse_inspect(CONTAINER)) == ()


def test_a_driver_option_missing_from_a_node_without_options_is_a_difference():
    bare = builder_spec.parse_inspect(CONTAINER.replace(CONTAINER.splitlines()[7] + "\n", ""))
    assert bare.nodes[0].driver_opts == ()
    cfg = BuilderConfig("bc", Driver.DOCKER_CONTAINER, frozen_map({"network": "host"}))
    assert builder_spec.differences(cfg, bare) == (
        "node bc0 has driver option network=(unset), services.yaml says host",)


# --------------------------------------------------------------------------- platform_nodes


def test_pinned_nodes_build_their_platforms_and_the_first_capable_node_the_rest():
    state = builder_spec.parse_inspect(MULTINODE)
    assert builder_spec.platform_nodes(
        ("linux/arm64/v8", "linux/amd64", "linux/arm/v7", "linux/riscv64", "linux/mips"), state) == (
        ("linux/arm64/v8", "ci1"), ("linux/amd64", "ci0"), ("linux/arm/v7", "ci0"), ("linux/riscv64", "ci0"),
    )  # linux/mips: no node can build it, so none is named


def test_a_native_node_beats_an_earlier_emulating_one_and_a_pin_beats_both():
    amd = NodeState("n0", "", "running", platforms=("linux/amd64", "linux/arm64"))
    arm = NodeState("n1", "", "running", platforms=("linux/arm64", "linux/amd64"))
    assert builder_spec.platform_nodes(("linux/arm64", "linux/amd64"), BuilderState("b", "remote", (amd, arm))) == (
        ("linux/arm64", "n1"), ("linux/amd64", "n0"))
    pinned = NodeState("n2", "", "running", platforms=("linux/amd64", "linux/arm64"), pinned=("linux/arm64",))
    state = BuilderState("b", "remote", (arm, pinned))
    assert builder_spec.platform_nodes(("linux/arm64",), state) == (("linux/arm64", "n2"),)
    assert builder_spec.platform_nodes(("linux/arm64",), BuilderState("b", "remote", ())) == ()

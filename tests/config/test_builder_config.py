"""services.yaml `builder:` and `build.cache_*`: drivers, nodes, endpoints, files, cache specs and
their placeholders; each bad input is one file:line:key message. Plus what `plan` makes of them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.engine import builder_spec
from buildctl.engine.results import BuilderState, NodeState
from buildctl.errors import ConfigError
from buildctl.model import Driver
from buildctl.pipeline.plan import builder_commands, buildx_argv, make_plan

SERVICES = """\
services:
  api:
    context: api
    image: team/api
"""


def load(project: Path, head: str, *, environ: dict[str, str] | None = None):
    path = project / "services.yaml"
    path.write_text(textwrap.dedent(head) + SERVICES)
    return load_config(path, environ=environ or {"BUILDCTL_STACK_DIR": str(project / "no-stack")})


def fails(project: Path, head: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load(project, head)
    assert exc.value.message == f"{project / 'services.yaml'}{expected.removeprefix('services.yaml')}"


def test_remote_two_nodes_make_the_exact_create_commands(project_dir: Path) -> None:
    cfg = load(project_dir, """\
        builder:
          name: multi
          driver: remote
          nodes:
            - {endpoint: "tcp://10.0.0.1:1234", platforms: [linux/amd64]}
            - {endpoint: "tcp://10.0.0.2:1234", platforms: [linux/arm64/v8]}
        """)
    assert cfg.builder.driver is Driver.REMOTE
    assert builder_commands(cfg) == (
        ("docker", "buildx", "create", "--name", "multi", "--driver", "remote", "--node", "multi0",
         "--platform", "linux/amd64", "tcp://10.0.0.1:1234"),
        ("docker", "buildx", "create", "--name", "multi", "--driver", "remote", "--append", "--node", "multi1",
         "--platform", "linux/arm64", "tcp://10.0.0.2:1234"),
        ("docker", "buildx", "inspect", "--bootstrap", "multi"),
    )


def test_remote_tls_files_are_resolved_against_services_yaml(project_dir: Path) -> None:
    (project_dir / "tls").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (project_dir / "tls" / name).write_text("x")
    cfg = load(project_dir, """\
        builder:
          driver: remote
          driver_opts: {cacert: tls/ca.pem, cert: tls/cert.pem, key: tls/key.pem, servername: bk}
          nodes: [{endpoint: "tcp://bk:1234"}]
        """)
    (argv,) = builder_spec.create_commands(cfg.builder)
    tls = project_dir.resolve() / "tls"
    assert argv[argv.index("--driver-opt") + 1] == f"cacert={tls / 'ca.pem'}"
    assert f"key={tls / 'key.pem'}" in argv and "servername=bk" in argv and cfg.builder.name == "buildctl"


def test_kubernetes_per_platform_nodeselector_and_buildkitd_config(project_dir: Path) -> None:
    (project_dir / "buildkitd.toml").write_text("")
    cfg = load(project_dir, """\
        builder:
          name: k8s
          driver: kubernetes
          config: buildkitd.toml
          driver_opts: {namespace: ci, replicas: 2}
          nodes:
            - {platforms: [linux/amd64], driver_opts: {nodeselector: "kubernetes.io/arch=amd64"}}
            - {platforms: [linux/arm64], driver_opts: {nodeselector: "kubernetes.io/arch=arm64,pool=arm"}}
        """)
    first, second, _ = builder_commands(cfg)
    toml = str((project_dir / "buildkitd.toml").resolve())
    assert first == ("docker", "buildx", "create", "--name", "k8s", "--driver", "kubernetes", "--node", "k8s0",
                     "--driver-opt", "namespace=ci", "--driver-opt", "replicas=2", "--driver-opt",
                     "nodeselector=kubernetes.io/arch=amd64", "--buildkitd-config", toml, "--platform", "linux/amd64")
    # buildx reads --driver-opt as CSV: a value with a comma is quoted, or it would split
    assert '"nodeselector=kubernetes.io/arch=arm64,pool=arm"' in second and "--append" in second


def test_docker_container_defaults_to_the_stacks_buildkit_image(project_dir: Path) -> None:
    stack = project_dir / "stack"
    (stack / "buildkit").mkdir(parents=True)
    (stack / "buildkit" / "image").write_text("127.0.0.1:5000/moby/buildkit:local\n")
    head = "builder: {name: bc, driver: docker-container, driver_opts: {network: host}}\n"
    cfg = load(project_dir, head, environ={"BUILDCTL_STACK_DIR": str(stack)})
    assert dict(cfg.builder.driver_opts) == {"network": "host", "image": "127.0.0.1:5000/moby/buildkit:local"}
    without = load(project_dir, head)  # no stack image: buildx's own default
    assert dict(without.builder.driver_opts) == {"network": "host"}
    assert builder_commands(without)[0] == ("docker", "buildx", "create", "--name", "bc", "--driver",
                                            "docker-container", "--node", "bc0", "--driver-opt", "network=host")


def test_docker_driver_creates_nothing(project_dir: Path) -> None:
    assert builder_commands(load(project_dir, "")) == ()


@pytest.mark.parametrize(("head", "expected"), [
    ("builder: {driver: remote}\n", ("services.yaml:1: builder: the remote driver needs nodes: "
     "[{endpoint: tcp://HOST:PORT, platforms: [...]}]")),
    ("builder:\n  driver: remote\n  nodes:\n    - {endpoint: 'http://x:1'}\n",
     "services.yaml:4: builder.nodes[0].endpoint: invalid endpoint 'http://x:1': expected tcp://HOST:PORT or unix:///PATH"),
    ("builder:\n  driver: remote\n  nodes:\n    - {endpoint: 'tcp://x'}\n",
     "services.yaml:4: builder.nodes[0].endpoint: invalid endpoint 'tcp://x': expected tcp://HOST:PORT (port 1-65535)"),
    ("builder:\n  driver: remote\n  nodes:\n    - {platforms: [linux/amd64]}\n",
     "services.yaml:4: builder.nodes[0]: a remote node needs an endpoint, e.g. tcp://buildkit-arm64:1234"),
    ("builder:\n  driver: remote\n  nodes:\n    - {endpoint: 'tcp://a:1'}\n    - {endpoint: 'tcp://b:1'}\n",
     ("services.yaml:5: builder.nodes[1]: only one node may leave out platforms (buildx would not know which "
     "node builds what)")),
    (("builder:\n  driver: remote\n  nodes:\n    - {endpoint: 'tcp://a:1', platforms: [linux/amd64]}\n"
     "    - {endpoint: 'tcp://b:1', platforms: [linux/amd64]}\n"),
     "services.yaml:5: builder.nodes[1].platforms: platform linux/amd64 is on node 0 already: one node per platform"),
    ("builder:\n  driver: remote\n  nodes:\n    - {endpoint: 'tcp://a:1', platforms: [arm64]}\n",
     ("services.yaml:4: builder.nodes[0].platforms[0]: invalid platform 'arm64': expected os/arch[/variant], "
     "e.g. linux/arm64 or linux/arm/v7")),
    ("builder:\n  driver: remote\n  nodes:\n    - endpoint: 'tcp://a:1'\n      driver_opts: {image: x}\n",
     ("services.yaml:5: builder.nodes[0].driver_opts.image: unknown remote driver option (allowed: cacert, cert, "
     "default-load, key, servername)")),
    ("builder:\n  driver: remote\n  driver_opts: {cacert: nope.pem}\n  nodes: [{endpoint: 'tcp://a:1'}]\n",
     ("services.yaml:3: builder.driver_opts.cacert: TLS cacert 'nope.pem' does not exist (paths are relative to "
     "services.yaml)")),
    ("builder: {driver: docker, driver_opts: {image: x}}\n",
     "services.yaml:1: builder.driver_opts.image: the docker driver takes no driver options"),
    ("builder: {driver: docker, nodes: [{endpoint: 'tcp://a:1'}]}\n",
     ("services.yaml:1: builder.nodes: the docker driver has no nodes: it is the engine's own builder (use "
     "docker-container, remote or kubernetes for nodes)")),
    ("builder: {driver: remote, config: b.toml, nodes: [{endpoint: 'tcp://a:1'}]}\n",
     ("services.yaml:1: builder.config: the remote driver takes no buildkitd config (the daemon reads its own "
     "buildkitd.toml)")),
    ("builder: {driver: docker-container, config: missing.toml}\n",
     ("services.yaml:1: builder.config: buildkitd config 'missing.toml' does not exist (paths are relative to "
     "services.yaml)")),
    ("builder: {driver: swarm}\n",
     "services.yaml:1: builder.driver: must be one of docker, docker-container, remote, kubernetes, got 'swarm'"),
    ("build:\n  cache_from: ['ref=r/c,mode']\n",
     "services.yaml:2: build.cache_from[0]: invalid cache spec: expected key=value[,key=value...], got 'ref=r/c,mode'"),
    ("build:\n  cache_from: ['type=registry,ref=r/{svc}']\n",
     "services.yaml:2: build.cache_from[0]: unknown placeholder {svc} (allowed: {service}, {image}, {repository})"),
    ("build:\n  cache_to: ['type=registry']\n",
     "services.yaml:2: build.cache_to[0]: a registry cache needs ref=REGISTRY/REPOSITORY[:TAG]: 'type=registry'"),
    ("build:\n  cache_to: ['type=floppy,dest=a']\n",
     ("services.yaml:2: build.cache_to[0]: invalid cache type 'floppy' in 'type=floppy,dest=a' (one of registry, "
     "local, inline, gha, s3, azblob)")),
    ("build:\n  cache_to: ['type=local,dest=a', 'type=local,dest=b']\n",
     "services.yaml:2: build.cache_to: at most 1 item(s)"),
    ("build: {source_date_epoch: yesterday}\n",
     ("services.yaml:1: build.source_date_epoch: source_date_epoch must be auto, a Unix time in seconds, or \"\" "
     "(never), got 'yesterday'")),
])
def test_bad_builder_and_cache_input(project_dir: Path, head: str, expected: str) -> None:
    fails(project_dir, head, expected)


def test_mis_split_cache_spec_is_refused_and_the_quoted_one_is_expanded_per_service(project_dir: Path) -> None:
    # The old README's `cache_to: [type=registry,ref=...,mode=max]` is YAML for three items.
    head = "build:\n  cache_from: [type=registry,ref=reg/cache/api]\n"
    with pytest.raises(ConfigError, match=r"services.yaml:2: build.cache_from\[0\]: a registry cache needs ref") as exc:
        load(project_dir, head)
    assert "quote" in exc.value.hint
    cfg = load(project_dir, """\
        registry: reg.example
        builder: {name: bc, driver: docker-container}
        build:
          cache_from: ["type=registry,ref={repository}:buildcache", "reg.example/cache/{image}"]
          cache_to: ["type=registry,ref=reg.example/cache/{service},mode=max"]
          source_date_epoch: 1700000000
        """)
    spec = make_plan(cfg, run_id="r1").services[0].build
    assert spec.options.cache_from == ("type=registry,ref=reg.example/team/api:buildcache", "reg.example/cache/team/api")
    argv = buildx_argv(spec)
    assert argv[argv.index("--cache-to") + 1] == "type=registry,ref=reg.example/cache/api,mode=max"
    assert "SOURCE_DATE_EPOCH=1700000000" in argv
    assert argv[argv.index("--output") + 1] == "type=image,push=true,rewrite-timestamp=true,oci-mediatypes=true"


def test_docker_driver_gets_the_epoch_but_no_rewrite_timestamp(project_dir: Path) -> None:
    cfg = load(project_dir, "build: {source_date_epoch: '1700000000'}\n")
    spec = make_plan(cfg, run_id="r1").services[0].build
    argv = buildx_argv(spec)
    assert "SOURCE_DATE_EPOCH=1700000000" in argv and "--push" in argv and "--output" not in argv
    auto = make_plan(load(project_dir, ""), run_id="r1", commit_times={"api": "1690000000"}).services[0].build
    assert auto.source_date_epoch == "1690000000" and not auto.rewrite_timestamp
    never = load(project_dir, "build: {source_date_epoch: ''}\n")
    assert make_plan(never, run_id="r1", commit_times={"api": "1"}).services[0].build.source_date_epoch is None


def test_differences_name_what_changed(project_dir: Path) -> None:
    cfg = load(project_dir, """\
        builder:
          name: multi
          driver: remote
          nodes:
            - {endpoint: "tcp://10.0.0.1:1234", platforms: [linux/amd64]}
        """).builder
    node = NodeState("multi0", "tcp://10.0.0.1:1234", "running", pinned=("linux/amd64",))
    assert builder_spec.differences(cfg, BuilderState("multi", "remote", (node,))) == ()
    moved = BuilderState("multi", "remote", (NodeState("multi0", "tcp://10.0.0.9:1234", "running",
                                                       pinned=("linux/arm64",)),))
    assert builder_spec.differences(cfg, moved) == (
        "node multi0 is at tcp://10.0.0.9:1234, services.yaml says tcp://10.0.0.1:1234",
        "node multi0 is pinned to [linux/arm64], services.yaml says [linux/amd64]",
    )
    assert builder_spec.differences(cfg, BuilderState("multi", "remote", (node, node))) == (
        "it has 2 node(s), services.yaml has 1",)
    assert builder_spec.differences(cfg, BuilderState("multi", "docker-container", (node,))) == (
        "it uses the docker-container driver, services.yaml asks for remote",)

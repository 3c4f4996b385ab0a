"""Names services.yaml gives (services, build args, labels, secrets, manifests, platforms) and the
messages about them: each says what is really wrong, at the item that is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from tests.helpers.cli import named

S = "services:\n  api:\n    context: api\n    image: team/api\n"


def refused(project: Path, monkeypatch: pytest.MonkeyPatch, text: str, environ: dict[str, str] | None = None) -> str:
    monkeypatch.chdir(project)
    (project / "services.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(Path("services.yaml"), environ=environ or {})
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value.message


def load(project: Path, text: str, environ: dict[str, str] | None = None):
    (project / "services.yaml").write_text(text)
    return load_config(project / "services.yaml", environ=environ or {})


BAD = [
    # Interpolation: set-but-empty is refused as empty, not as unset.
    ("tag: ${EMPTY}\n" + S, ("services.yaml:1: tag: environment variable EMPTY is set but empty (write ${EMPTY:-default} "
     "to give a default, or ${EMPTY:-} to allow it empty)")),
    ("tag: ${UNSET_HERE}\n" + S, ("services.yaml:1: tag: environment variable UNSET_HERE is not set (write ${UNSET_HERE:-default} "
     "to give a default)")),
    # Service names: what is wrong with this one.
    ("services:\n  _x: {context: api, image: team/api}\n",
     "services.yaml:2: services._x: service names must start with a lowercase letter or a digit, not '_'"),
    ("services:\n  Vote: {context: api, image: team/api}\n", "services.yaml:2: services.Vote: service names must be lowercase: 'vote'"),
    ("services:\n  a+b: {context: api, image: team/api}\n",
     "services.yaml:2: services.'a+b': service names must be lowercase letters, digits, '.', '_' or '-', not '+'"),
    ('services:\n  "api\\n": {context: api, image: team/api}\n',
     "services.yaml:2: services.'api\\n': service names must be lowercase letters, digits, '.', '_' or '-', not '\\n'"),
    ("services:\n  " + "s" * 64 + ": {context: api, image: team/api}\n",
     "services.yaml:2: services.'" + "s" * 40 + "'…: service names are at most 63 characters, this one has 64 (a service "
     "names files, e.g. <service>.build.log)"),
    # Platforms: only the case wrong; duplicates name the second one, exact or normalised.
    ("platforms: [Linux/AMD64]\n" + S, "services.yaml:1: platforms[0]: invalid platform 'Linux/AMD64': platforms are lowercase, 'linux/amd64'"),
    ("platforms: [linux/amd64, linux/amd64]\n" + S, "services.yaml:1: platforms[1]: duplicate 'linux/amd64' (the same as item 0)"),
    ("platforms: [linux/arm64, linux/arm64/v8]\n" + S,
     "services.yaml:1: platforms[1]: duplicate 'linux/arm64/v8' (the same platform as item 0, 'linux/arm64')"),
    (S + "    platforms: [linux/amd64, linux/x86-64]\n",
     "services.yaml:5: services.api.platforms[1]: duplicate 'linux/x86-64' (the same platform as item 0, 'linux/amd64')"),
    ('platforms: ["linux/amd64\\n"]\n' + S,
     "services.yaml:1: platforms[0]: invalid platform 'linux/amd64\\n': expected os/arch[/variant], e.g. linux/arm64 or linux/arm/v7"),
    ("builder:\n  driver: remote\n  nodes: [{endpoint: 'tcp://a:1', platforms: [linux/arm64, linux/arm64/v8]}]\n" + S,
     "services.yaml:3: builder.nodes[0].platforms[1]: duplicate 'linux/arm64/v8' (the same platform as item 0, 'linux/arm64')"),
    # Build args, labels, driver options: names buildx can take.
    (S + "    build_args: {'': x}\n", ("services.yaml:5: services.api.build_args.'': invalid name '': a name must not be empty or "
     "hold '=', spaces or control characters")),
    (S + "    build_args: {'A B': x}\n", ("services.yaml:5: services.api.build_args.'A B': invalid name 'A B': a name must not be "
     "empty or hold '=', spaces or control characters")),
    (S + "    build_args: {'X=Y': x}\n", ("services.yaml:5: services.api.build_args.'X=Y': invalid name 'X=Y': a name must not be "
     "empty or hold '=', spaces or control characters")),
    ("build: {labels: {'a b': x}}\n" + S, ("services.yaml:1: build.labels.'a b': invalid name 'a b': a name must not be empty or "
     "hold '=', spaces or control characters")),
    # Secrets: ids unique and usable, env a variable name.
    (S + "    secrets: [{id: npmrc, env: A}, {id: npmrc, env: B}]\n",
     "services.yaml:5: services.api.secrets[1].id: secret id 'npmrc' is also secrets[0]: ids must differ"),
    (S + "    secrets: [{id: '', env: A}]\n",
     "services.yaml:5: services.api.secrets[0].id: invalid secret id '': not empty, without ',', '=', spaces or control characters"),
    (S + "    secrets: [{id: 'a,b', env: A}]\n",
     "services.yaml:5: services.api.secrets[0].id: invalid secret id 'a,b': not empty, without ',', '=', spaces or control characters"),
    (S + "    secrets: [{id: a, env: ''}]\n", "services.yaml:5: services.api.secrets[0].env: invalid variable name ''"),
    # Manifests: one file, however it is spelled, once per service; never outside the repository.
    (S + "    manifests: [d.yaml, ./d.yaml]\n", ("services.yaml:5: services.api.manifests[1]: manifest 'd.yaml' is also manifests[0]: "
     "list each file once")),
    (S + "    manifests: [/etc/d.yaml]\n", ("services.yaml:5: services.api.manifests[0]: manifest path '/etc/d.yaml' must be relative "
     "to the GitOps repository root, without '..'")),
    (S + "    manifests: [k8s/../../d.yaml]\n", ("services.yaml:5: services.api.manifests[0]: manifest path 'k8s/../../d.yaml' must be "
     "relative to the GitOps repository root, without '..'")),
    (S + "    manifests: [./]\n", "services.yaml:5: services.api.manifests[0]: manifest path './' names the repository root, not a file"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[f"bad{i:02d}" for i in range(len(BAD))])
def test_names_and_messages(project_dir: Path, monkeypatch, text: str, message: str) -> None:
    assert refused(project_dir, monkeypatch, text, environ={"EMPTY": ""}) == message


def test_empty_is_allowed_when_asked_for(project_dir: Path) -> None:
    cfg = load(project_dir, S + "    build_args: {A: 'x${EMPTY:-}y'}\n", environ={"EMPTY": ""})
    assert dict(named(cfg.services, "api").build_args) == {"A": "xy"}


def test_platform_aliases_the_platform_table_knows_pass_the_schema(project_dir: Path) -> None:
    cfg = load(project_dir, "platforms: [linux/x86-64, linux/aarch64]\n" + S)
    assert cfg.platforms == ("linux/x86-64", "linux/aarch64")


def test_a_service_name_of_63_characters_is_fine(project_dir: Path) -> None:
    name = "s" * 63
    assert load(project_dir, f"services:\n  {name}: {{context: api, image: team/api}}\n").services[0].name == name


def test_manifest_paths_are_normalised_so_two_services_share_one_file(project_dir: Path) -> None:
    cfg = load(project_dir, "services:\n"
                            "  api: {context: api, image: team/api, manifests: [d.yaml, {path: './k8s//web.yaml'}]}\n"
                            "  web: {context: web, image: team/web, manifests: [./d.yaml, k8s/./web.yaml]}\n")
    assert [m.path for m in named(cfg.services, "api").manifests] == ["d.yaml", "k8s/web.yaml"]
    assert [m.path for m in named(cfg.services, "web").manifests] == ["d.yaml", "k8s/web.yaml"]


def test_well_formed_names_pass(project_dir: Path) -> None:
    cfg = load(project_dir, "build: {labels: {org.opencontainers.image.source: 'https://x'}}\n" + S
               + "    build_args: {lower-case.arg: x, _A: y}\n    secrets: [{id: npm.rc, env: NPM_RC}, {id: pip, env: PIP}]\n")
    api = named(cfg.services, "api")
    assert dict(api.build_args) == {"lower-case.arg": "x", "_A": "y"}
    assert dict(api.secrets) == {"npm.rc": "NPM_RC", "pip": "PIP"}
    assert dict(cfg.build.labels) == {"org.opencontainers.image.source": "https://x"}

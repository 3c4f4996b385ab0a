"""services.yaml sections of issue #13: gitops.tag_order, manifests[].helm, sign (load_config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from buildctl.model import GitOpsFile, HelmKeys, SignConfig, TagOrder

VALID = "services:\n  api:\n    context: api\n    image: team/api\n"


def load(project_dir: Path, monkeypatch, text: str):
    monkeypatch.chdir(project_dir)
    (project_dir / "services.yaml").write_text(text)
    return load_config(Path("services.yaml"), environ={})


def test_helm_entries_tag_order_and_sign_are_read(project_dir: Path, monkeypatch) -> None:
    (project_dir / "keys").mkdir()
    (project_dir / "keys" / "cosign.key").write_text("not read by the loader\n")
    text = ("gitops: {repo: ../gitops, tag_order: semver}\nsign: {key: keys/cosign.key}\n" + VALID +
            "    manifests:\n      - {path: charts/api/values.yaml, helm: {}}\n"
            "      - {path: charts/b.yaml, helm: {tag: api.image.version, digest: api.image.digest}}\n"
            "      - k8s/api.yaml\n")
    cfg = load(project_dir, monkeypatch, text)
    assert cfg.gitops.tag_order is TagOrder.SEMVER
    assert cfg.sign == SignConfig(key=str(project_dir.resolve() / "keys" / "cosign.key"))
    assert cfg.services[0].manifests == (
        GitOpsFile("charts/api/values.yaml", (), HelmKeys()),
        GitOpsFile("charts/b.yaml", (), HelmKeys("image.repository", "api.image.version", "api.image.digest")),
        GitOpsFile("k8s/api.yaml"),
    )
    assert load(project_dir, monkeypatch, "gitops: {repo: x}\n" + VALID).gitops.tag_order is TagOrder.AUTO
    # A KMS URI is passed to cosign as it is.
    assert load(project_dir, monkeypatch, "sign: {key: 'env://COSIGN_KEY'}\n" + VALID).sign.key == "env://COSIGN_KEY"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gitops: {repo: x, tag_order: date}\n" + VALID,
         "services.yaml:1: gitops.tag_order: must be one of auto, semver, numeric, lexical, none, got 'date'"),
        ("sign: {key: nope.key}\n" + VALID, "services.yaml:1: sign.key: signing key 'nope.key' does not exist"),
        ("sign: {}\n" + VALID, "services.yaml:1: sign: missing required key 'key'"),
        ("sign: {key: k, password: hunter2}\n" + VALID, "services.yaml:1: sign: unknown key 'password' (did you mean 'password_env'?)"),
        (VALID + "    manifests: [{path: v.yaml, helm: {tag: image.tag, digest: image.tag}}]\n",
         "services.yaml:5: services.api.manifests[0].helm: the helm repository, tag and digest keys must differ"),
        (VALID + "    manifests: [{path: v.yaml, containers: [api], helm: {}}]\n",
         "services.yaml:5: services.api.manifests[0]: a Helm values file has no containers: use `helm:` keys or `containers:`, not both"),
    ],
)
def test_bad_release_sections_have_one_exact_message(project_dir: Path, monkeypatch, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(project_dir, monkeypatch, text)
    assert info.value.message == message
    assert info.value.exit_code == EXIT_BAD_INPUT

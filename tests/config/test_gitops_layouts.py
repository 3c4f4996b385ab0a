"""services.yaml for the GitOps layouts of issue #19: the Helm layouts of `helm:` (registry, image,
prefix, list indices) and gitops.render_check, read by load_config; bad combinations refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.config.loader import load_config
from buildctl.errors import EXIT_BAD_INPUT, ConfigError
from buildctl.model import HelmKeys

VALID = "services:\n  api:\n    context: api\n    image: team/api\n"


def load(project_dir: Path, monkeypatch, text: str):
    monkeypatch.chdir(project_dir)
    (project_dir / "services.yaml").write_text(text)
    return load_config(Path("services.yaml"), environ={})


def test_each_helm_layout_and_render_check_are_read(project_dir: Path, monkeypatch) -> None:
    text = ("gitops: {repo: ../gitops, render_check: false}\n" + VALID + "    manifests:\n"
            "      - {path: a.yaml, helm: {registry: img.host, repository: img.repository, tag: img.tag}}\n"
            "      - {path: b.yaml, helm: {image: worker.image}}\n"
            "      - {path: c.yaml, helm: {prefix: images.repository}}\n"
            "      - {path: d.yaml, helm: {prefix: repo, tag: version}}\n"
            "      - {path: e.yaml, helm: {repository: sidecars.0.image.repository, tag: sidecars.0.image.tag}}\n")
    cfg = load(project_dir, monkeypatch, text)
    assert not cfg.gitops.render_check
    assert [m.helm for m in cfg.services[0].manifests] == [
        HelmKeys("img.repository", "img.tag", registry="img.host"),
        HelmKeys(None, None, image="worker.image"),
        HelmKeys(None, "images.tag", prefix="images.repository"),
        HelmKeys(None, "version", prefix="repo"),
        HelmKeys("sidecars.0.image.repository", "sidecars.0.image.tag"),
    ]
    assert load(project_dir, monkeypatch, "gitops: {repo: x}\n" + VALID).gitops.render_check


@pytest.mark.parametrize(("helm", "message"), [
    ("{image: a.image, tag: a.tag}", "`helm.image` holds the whole reference: leave out `tag`"),
    ("{prefix: images.repository, digest: images.digest}",
     "`helm.prefix` is the repository of every image under it: leave out `digest`"),
    ("{registry: image.tag}", "the helm repository, tag and digest keys must differ"),
    ("{prefix: images.repository, repository: images.repository}",
     "`helm.prefix` is the repository of every image under it: leave out `repository`"),
])
def test_bad_helm_layouts_have_one_exact_message(project_dir: Path, monkeypatch, helm: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(project_dir, monkeypatch, VALID + f"    manifests: [{{path: v.yaml, helm: {helm}}}]\n")
    assert info.value.message.startswith("services.yaml:5: services.api.manifests[0].helm")
    assert info.value.message.endswith(message) and info.value.exit_code == EXIT_BAD_INPUT

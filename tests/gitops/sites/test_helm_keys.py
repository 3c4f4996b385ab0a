"""Helm layouts of real charts: a registry split from the repository (Bitnami, Grafana,
prometheus-community), one `image: repo:tag` value, a `PREFIX/<name>:TAG` chart (microservices-demo),
list indices in key paths. Byte-exact; values files shaped like the upstream ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import compute_change, drift
from buildctl.model import GitOpsFile, HelmKeys, ReleasedImage
from tests.gitops.values_edit import edit_values

R = "127.0.0.1:5000/voting-app/api"
DIGEST = "sha256:" + "ab" * 32

BITNAMI = """\
## @section Common parameters
##
## Bitnami Redis(R) image
## ref: https://hub.docker.com/r/bitnami/redis/tags/
## @param image.registry [default: REGISTRY_NAME] Redis(R) image registry
## @param image.repository [default: REPOSITORY_NAME/redis] Redis(R) image repository
##
image:
  registry: docker.io
  repository: bitnami/redis
  tag: 7.2.4-debian-12-r9
  digest: ""
  pullPolicy: IfNotPresent
  pullSecrets: []
  debug: false
"""


def test_a_split_registry_is_read_with_the_repository_for_a_registry_other_than_docker_io(loader):
    text = BITNAMI.replace("docker.io", "myacr.azurecr.io").replace("bitnami/redis", "voting-app/api")
    repo = "myacr.azurecr.io/voting-app/api"
    after, edits = edit_values(text, path="values.yaml", keys=HelmKeys(digest="image.digest"), repository=repo, tag="8.10",
                               digest=DIGEST, pin_digest=True)
    assert after == text.replace("tag: 7.2.4-debian-12-r9", 'tag: "8.10"').replace('digest: ""', f'digest: "{DIGEST}"')
    assert edits == (f"helm values image.registry/image.repository/image.tag: {repo}:7.2.4-debian-12-r9 -> "
                     f"{repo}:8.10@{DIGEST}",)


def test_a_split_registry_of_another_image_is_refused_and_an_empty_one_filled():
    with pytest.raises(ConfigError) as err:
        edit_values(BITNAMI, path="values.yaml", keys=HelmKeys(), repository=R, tag="1", digest=None, pin_digest=False)
    assert str(err.value) == (f"values.yaml:10: `image.repository` is docker.io/bitnami/redis, not the release's "
                              f"repository {R}: these values are another image's")
    text = BITNAMI.replace("docker.io", '""').replace("repository: bitnami/redis", "repository:")
    after, _ = edit_values(text, path="values.yaml", keys=HelmKeys(), repository=R, tag="42", digest=None,
                           pin_digest=False)
    assert after == text.replace('registry: ""', 'registry: "127.0.0.1:5000"').replace(
        "repository:\n", "repository: voting-app/api\n").replace("tag: 7.2.4-debian-12-r9", 'tag: "42"')


def test_a_global_image_registry_is_the_registry_the_chart_prints():
    text = "global:\n  imageRegistry: 127.0.0.1:5000   # every image\n" + BITNAMI.replace("bitnami/redis", "voting-app/api")
    after, edits = edit_values(text, path="values.yaml", keys=HelmKeys(), repository=R, tag="42", digest=None,
                               pin_digest=False)
    assert after == text.replace("tag: 7.2.4-debian-12-r9", 'tag: "42"')  # image.registry docker.io is not printed
    assert edits == (f"helm values global.imageRegistry/image.repository/image.tag: {R}:7.2.4-debian-12-r9 -> {R}:42",)
    with pytest.raises(ConfigError) as err:
        edit_values(text, path="values.yaml", keys=HelmKeys(), repository="myacr.azurecr.io/voting-app/api", tag="42",
                    digest=None, pin_digest=False)
    assert str(err.value) == ("values.yaml:2: `global.imageRegistry` is 127.0.0.1:5000: the chart prints it instead of "
                              "`image.registry` for every image, and the release is in another registry")
    empty = text.replace("imageRegistry: 127.0.0.1:5000", 'imageRegistry: ""')
    with pytest.raises(ConfigError, match="is docker.io/voting-app/api, not the release's repository"):
        edit_values(empty, path="values.yaml", keys=HelmKeys(), repository=R, tag="42", digest=None, pin_digest=False)


GRAFANA = """\
image:
  # -- The Docker registry
  registry: docker.io
  # -- Docker image repository
  repository: grafana/grafana
  # Overrides the Grafana image tag whose default is the chart appVersion
  tag: ""
  sha: ""
sidecar:
  image:
    # -- The Docker registry
    registry: quay.io
    repository: kiwigrid/k8s-sidecar
    tag: 1.28.0
    sha: ""
"""


def test_grafana_layout_sidecar_keys_with_the_registry_found_beside_them():
    keys = HelmKeys(repository="sidecar.image.repository", tag="sidecar.image.tag")
    after, _ = edit_values(GRAFANA, path="values.yaml", keys=keys, repository="quay.io/kiwigrid/k8s-sidecar",
                           tag="1.30.0", digest=None, pin_digest=False)
    assert after == GRAFANA.replace("tag: 1.28.0", "tag: 1.30.0")
    with pytest.raises(ConfigError, match=r"^values.yaml:5: `image.repository` is docker.io/grafana/grafana, not "):
        edit_values(GRAFANA, path="values.yaml", keys=HelmKeys(), repository="quay.io/kiwigrid/k8s-sidecar",
                    tag="1.30.0", digest=None, pin_digest=False)


def test_an_explicit_registry_key_and_an_empty_registry():
    text = "server:\n  image:\n    host: ''\n    repository: ''\n    tag: v2.50.0\n"
    keys = HelmKeys(repository="server.image.repository", tag="server.image.tag", registry="server.image.host")
    after, _ = edit_values(text, path="v.yaml", keys=keys, repository=R, tag="1", digest=None, pin_digest=False)
    assert after == "server:\n  image:\n    host: '127.0.0.1:5000'\n    repository: 'voting-app/api'\n    tag: \"1\"\n"


IN_HOUSE = """\
api:
  image: "127.0.0.1:5000/voting-app/api:1.4.0"   # the whole reference
  replicas: 2
worker:
  image: redis:7
"""


def test_one_image_value_holding_repo_and_tag():
    keys = HelmKeys(repository=None, tag=None, image="api.image")
    after, edits = edit_values(IN_HOUSE, path="v.yaml", keys=keys, repository=R, tag="1.5.0", digest=DIGEST,
                               pin_digest=True)
    assert after == IN_HOUSE.replace("api:1.4.0", f"api:1.5.0@{DIGEST}")
    assert edits == (f"helm values api.image: {R}:1.4.0 -> {R}:1.5.0@{DIGEST}",)
    with pytest.raises(ConfigError, match=r"^v.yaml:5: `worker.image` is redis, not the release's repository"):
        edit_values(IN_HOUSE, path="v.yaml", keys=HelmKeys(None, None, image="worker.image"), repository=R,
                    tag="1", digest=None, pin_digest=False)


SIDECARS = """\
sidecars:
- name: proxy
  image: {repository: envoyproxy/envoy, tag: v1.29.1}
- name: api
  image:
    repository: 127.0.0.1:5000/voting-app/api
    tag: '41'
"""


def test_numbers_in_a_key_path_index_lists():
    keys = HelmKeys(repository="sidecars.1.image.repository", tag="sidecars.1.image.tag")
    after, _ = edit_values(SIDECARS, path="v.yaml", keys=keys, repository=R, tag="42", digest=None, pin_digest=False)
    assert after == SIDECARS.replace("'41'", "'42'")
    with pytest.raises(ConfigError) as err:
        edit_values(SIDECARS, path="v.yaml", keys=HelmKeys("sidecars.2.image.repository", "sidecars.2.image.tag"),
                    repository=R, tag="42", digest=None, pin_digest=False)
    assert str(err.value) == "v.yaml:2: `sidecars` has 2 item(s), no item 2 (helm key sidecars.2.image.repository)"
    with pytest.raises(ConfigError, match=r"^v.yaml:2: `sidecars` is a list: name an item by its number"):
        edit_values(SIDECARS, path="v.yaml", keys=HelmKeys("sidecars.api.image.repository", "sidecars.api.image.tag"),
                    repository=R, tag="42", digest=None, pin_digest=False)


SHOP = """\
# Default values for onlineboutique.
images:
  repository: 127.0.0.1:5000/shop
  # Overrides the image tag whose default is the chart appVersion.
  tag: "0.10.1"

adService:
  create: true
  name: adservice
cartService:
  create: true
  name: cartservice
"""
PREFIX = HelmKeys(repository=None, tag="images.tag", prefix="images.repository")


def shop(tmp_path: Path, *releases: ReleasedImage, pin_digest: bool = False):
    (tmp_path / "values.yaml").write_text(SHOP)
    targets = {r.service: (GitOpsFile("values.yaml", helm=PREFIX),) for r in releases}
    return compute_change(tmp_path, list(releases), targets, pin_digest=pin_digest)


def test_a_prefix_chart_gets_one_consistent_tag_for_every_service(tmp_path: Path):
    ad = ReleasedImage("adservice", "127.0.0.1:5000/shop/adservice", "0.10.2", DIGEST)
    cart = ReleasedImage("cartservice", "127.0.0.1:5000/shop/cartservice", "0.10.2", DIGEST)
    change, services = shop(tmp_path, ad, cart, pin_digest=True)  # one tag key: no digest can be pinned there
    assert change.files[0].after == SHOP.replace('"0.10.1"', '"0.10.2"') and services == ("adservice", "cartservice")
    assert change.files[0].edits == ("helm values images.repository/images.tag: 127.0.0.1:5000/shop/adservice:0.10.1"
                                     " -> 127.0.0.1:5000/shop/adservice:0.10.2",)
    (tmp_path / "values.yaml").write_text(change.files[0].after)
    assert drift(tmp_path, [ad, cart], {"adservice": (GitOpsFile("values.yaml", helm=PREFIX),)}) == []


def test_a_prefix_chart_refuses_different_tags_and_a_repository_not_under_it(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        shop(tmp_path, ReleasedImage("adservice", "127.0.0.1:5000/shop/adservice", "2", DIGEST),
             ReleasedImage("cartservice", "127.0.0.1:5000/shop/cartservice", "3", DIGEST))
    assert str(err.value) == ("values.yaml: `images.tag` is the one tag of adservice, cartservice (helm prefix "
                              "layout), but they are released with different tags (adservice 2, cartservice 3)")
    with pytest.raises(ConfigError) as err:
        shop(tmp_path, ReleasedImage("adservice", "127.0.0.1:5000/other/adservice", "2", DIGEST))
    assert str(err.value) == ("values.yaml:3: `images.repository` is 127.0.0.1:5000/shop, and the release's "
                              "repository 127.0.0.1:5000/other/adservice is not under it: the chart would deploy "
                              "another image")
    assert (tmp_path / "values.yaml").read_text() == SHOP


@pytest.mark.parametrize("layout", ["split", "image", "prefix"])
def test_crlf_files_keep_every_line_ending(loader, layout):
    text, keys, repo = {
        "split": (BITNAMI.replace("docker.io", "127.0.0.1:5000").replace("bitnami/redis", "voting-app/api"),
                  HelmKeys(digest="image.digest"), R),
        "image": (IN_HOUSE, HelmKeys(None, None, image="api.image"), R),
        "prefix": (SHOP, PREFIX, "127.0.0.1:5000/shop/adservice"),
    }[layout]
    lf, _ = edit_values(text, path="v.yaml", keys=keys, repository=repo, tag="8.10", digest=None, pin_digest=False)
    after, edits = edit_values(text.replace("\n", "\r\n"), path="v.yaml", keys=keys, repository=repo, tag="8.10",
                               digest=None, pin_digest=False)
    assert edits and after == lf.replace("\n", "\r\n") and lf != text
    assert '"8.10"' in lf or ":8.10" in lf  # a new tag like 8.10 stays a string


# kube-prometheus-stack prints `@sha256:{{ ...image.sha }}` (Grafana too): the value is the hex alone.
KPS = """\
alertmanager:
  alertmanagerSpec:
    ## Image of Alertmanager
    ##
    image:
      registry: quay.io
      repository: prometheus/alertmanager
      tag: v0.34.0
      sha: "{hex}"
      pullPolicy: IfNotPresent
"""
KPS_KEYS = HelmKeys(repository="alertmanager.alertmanagerSpec.image.repository",
                    tag="alertmanager.alertmanagerSpec.image.tag", digest="alertmanager.alertmanagerSpec.image.sha")


def test_a_digest_key_holding_the_hex_alone_keeps_that_spelling(tmp_path: Path):
    text, repo, old = KPS.format(hex="cd" * 32), "quay.io/prometheus/alertmanager", "sha256:" + "cd" * 32
    after, edits = edit_values(text, path="v.yaml", keys=KPS_KEYS, repository=repo, tag="v0.35.0", digest=DIGEST,
                               pin_digest=True)
    assert after == text.replace("v0.34.0", "v0.35.0").replace("cd" * 32, "ab" * 32)  # never @sha256:sha256:
    at = "alertmanager.alertmanagerSpec.image"
    assert edits == (f"helm values {at}.registry/{at}.repository/{at}.tag: {repo}:v0.34.0@{old} -> "
                     f"{repo}:v0.35.0@{DIGEST}",)
    (tmp_path / "values.yaml").write_text(after)
    release = ReleasedImage("am", repo, "v0.35.0", DIGEST)
    assert drift(tmp_path, [release], {"am": (GitOpsFile("values.yaml", helm=KPS_KEYS),)}) == []
    unpinned, _ = edit_values(text, path="v.yaml", keys=KPS_KEYS, repository=repo, tag="v0.35.0", digest=None,
                              pin_digest=False)
    assert unpinned == text.replace("v0.34.0", "v0.35.0").replace("cd" * 32, "")
    # kube-state-metrics prints `@{{ .Values.image.sha }}`: a value spelled whole stays whole.
    whole, _ = edit_values(KPS.format(hex=old), path="v.yaml", keys=KPS_KEYS, repository=repo, tag="v0.35.0",
                           digest=DIGEST, pin_digest=True)
    assert whole == KPS.format(hex=DIGEST).replace("v0.34.0", "v0.35.0")


def test_check_reads_a_tag_that_is_no_tag_as_out_of_sync(tmp_path: Path):
    # Charts that pass values through `tpl` hold a template there; `--check` crashed on it (exit 3).
    (tmp_path / "values.yaml").write_text(f'image:\n  repository: {R}\n  tag: "{{{{ .Chart.AppVersion }}}}"\n')
    (tmp_path / "kustomization.yaml").write_text(f"images:\n- name: {R}\n  newTag: '{{{{.version}}}}'\n")
    release = ReleasedImage("api", R, "42", DIGEST)
    targets = {"api": (GitOpsFile("values.yaml", helm=HelmKeys()), GitOpsFile("kustomization.yaml"))}
    assert [(d.path, d.found) for d in drift(tmp_path, [release], targets)] == [
        ("values.yaml", f"{R}:{{{{ .Chart.AppVersion }}}}"), ("kustomization.yaml", f"{R}:{{{{.version}}}}")]


def test_a_prefix_chart_refuses_a_release_of_only_some_services_that_share_its_tag(tmp_path: Path):
    """The one tag key moves every service services.yaml points at it: one not in the release would
    deploy a tag never built or verified for it (microservices-demo with a partial record)."""
    (tmp_path / "values.yaml").write_text(SHOP)
    shared = (GitOpsFile("values.yaml", helm=PREFIX),)
    ad = ReleasedImage("adservice", "127.0.0.1:5000/shop/adservice", "0.10.2", DIGEST)
    with pytest.raises(ConfigError) as err:
        compute_change(tmp_path, [ad], {"adservice": shared, "cartservice": shared}, pin_digest=False)
    assert str(err.value) == ("values.yaml: `images.tag` is the one tag of adservice, cartservice (helm prefix "
                              "layout), but the release has only adservice: the chart would deploy cartservice at "
                              "0.10.2, a tag never released for it")
    assert (tmp_path / "values.yaml").read_text() == SHOP
    cart = ReleasedImage("cartservice", "127.0.0.1:5000/shop/cartservice", "0.10.2", DIGEST)
    change, services = compute_change(tmp_path, [ad, cart], {"adservice": shared, "cartservice": shared},
                                      pin_digest=False)
    assert change.files[0].after == SHOP.replace('"0.10.1"', '"0.10.2"') and services == ("adservice", "cartservice")


@pytest.mark.parametrize(("value", "carries"), [(f"{R}:1.0", "a tag (1.0)"), (f"{R}@{DIGEST}", "a digest")])
def test_a_repository_value_that_carries_a_tag_is_refused_at_its_line(value: str, carries: str):
    text = f'replicaCount: 1\nimage:\n  repository: {value}\n  tag: ""\n'  # the chart prints `image.tag` after it
    with pytest.raises(ConfigError) as err:
        edit_values(text, path="values.yaml", keys=HelmKeys(), repository=R, tag="1.1", digest=None, pin_digest=False)
    assert str(err.value) == f"values.yaml:3: `image.repository` is {value}: the repository value carries {carries}"
    assert err.value.hint == f"write `image.repository: {R}`: buildctl writes the release's tag to `image.tag`"

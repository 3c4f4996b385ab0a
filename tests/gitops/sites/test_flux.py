"""Flux HelmRelease ``spec.values`` as Helm values: in any document of a file, beside the namespace and
chart source Flux repositories keep with it. Files shaped like fluxcd/flux2-kustomize-helm-example's
apps/base/podinfo/release.yaml and infrastructure/controllers/cert-manager.yaml."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.model import HelmKeys
from tests.gitops.values_edit import edit_values

REDIS = "public.ecr.aws/docker/library/redis"
DIGEST = "sha256:" + "ab" * 32

PODINFO = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: podinfo
spec:
  interval: 50m
  releaseName: podinfo
  chart:
    spec:
      chart: podinfo
      sourceRef:
        kind: HelmRepository
        name: podinfo
  # Default values
  # https://github.com/stefanprodan/podinfo/blob/master/charts/podinfo/values.yaml
  values:
    redis:
      enabled: true
      repository: public.ecr.aws/docker/library/redis
      tag: 8.6.2
"""
CONTROLLERS = """\
---
apiVersion: v1
kind: Namespace
metadata:
  name: cert-manager
  labels:
    toolkit.fluxcd.io/tenant: sre-team
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 24h
  url: oci://quay.io/jetstack/charts/cert-manager
  ref:
    semver: "1.x"
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cert-manager
  namespace: cert-manager
spec:
  interval: 12h
  chartRef:
    kind: OCIRepository
    name: cert-manager
  values:
    image:
      repository: quay.io/jetstack/cert-manager-controller
      tag: v1.18.2
---
""" + PODINFO.replace("values:\n    redis:\n      enabled: true\n      repository", "values:\n    image:\n      repository") \
    .replace("      tag: 8.6.2", "      tag: '8.6.2'")
KEYS = HelmKeys(repository="redis.repository", tag="redis.tag")


def test_helm_keys_address_the_values_of_a_helm_release(loader):
    after, edits = edit_values(PODINFO, path="release.yaml", keys=KEYS, repository=REDIS, tag="8.10", digest=DIGEST,
                               pin_digest=True)
    assert after == PODINFO.replace("tag: 8.6.2", f"tag: 8.10@{DIGEST}")
    assert edits == (f"HelmRelease/podinfo spec.values redis.repository/redis.tag: {REDIS}:8.6.2 -> "
                     f"{REDIS}:8.10@{DIGEST}",)
    # The path from the document's root, as a one-document file always allowed.
    full = HelmKeys(repository="spec.values.redis.repository", tag="spec.values.redis.tag")
    assert edit_values(PODINFO, path="release.yaml", keys=full, repository=REDIS, tag="8.10", digest=DIGEST,
                       pin_digest=True)[0] == after


def test_the_helm_release_of_the_image_among_the_documents_of_a_file(loader):
    after, _ = edit_values(CONTROLLERS, path="controllers.yaml", keys=HelmKeys(), repository=REDIS, tag="8.10",
                           digest=None, pin_digest=False)
    assert after == CONTROLLERS.replace("'8.6.2'", "'8.10'")  # cert-manager's own image is not the release's
    with pytest.raises(ConfigError) as err:
        edit_values(CONTROLLERS, path="controllers.yaml", keys=HelmKeys(), repository="quay.io/team/other",
                    tag="1", digest=None, pin_digest=False)
    assert str(err.value).startswith("controllers.yaml:32: `image.repository` is quay.io/jetstack/cert-manager-"
                                     "controller, not the release's repository quay.io/team/other")
    with pytest.raises(ConfigError) as err:
        edit_values(CONTROLLERS, path="controllers.yaml", keys=KEYS, repository=REDIS, tag="1", digest=None,
                    pin_digest=False)
    assert str(err.value) == "controllers.yaml:20: no Flux HelmRelease here sets redis.repository in `spec.values`"


def test_two_helm_releases_of_one_image_are_refused():
    text = CONTROLLERS.replace("quay.io/jetstack/cert-manager-controller", REDIS)
    with pytest.raises(ConfigError, match=r"^controllers.yaml:53: helm key image.repository of .* is set in 2 "):
        edit_values(text, path="controllers.yaml", keys=HelmKeys(), repository=REDIS, tag="1", digest=None,
                    pin_digest=False)


def test_without_helm_keys_the_refusal_says_to_add_them():
    with pytest.raises(ConfigError) as err:
        edit_file(PODINFO, path="release.yaml", repository=REDIS, new_reference=f"{REDIS}:8.10")
    assert str(err.value) == (f"release.yaml:20: no container image of {REDIS} that buildctl edits: HelmRelease/podinfo "
                              "has it at spec.values.redis.repository, in its Helm values (give the manifest entry "
                              "`helm:` keys: they address `spec.values`)")

"""Flux HelmRelease ``spec.values`` as Helm values: in any document of a file, beside the namespace and
chart source Flux repositories keep with it. Files shaped like fluxcd/flux2-kustomize-helm-example's
apps/base/podinfo/release.yaml and infrastructure/controllers/cert-manager.yaml. A Flux Kustomization's
``spec.images`` entries, edited as kustomize ``images:`` entries are (beside its GitRepository)."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.model import HelmKeys, TagOrder
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


# A Flux Kustomization beside its GitRepository (podinfo's Flux docs), with an image automation marker:
# its spec.images are kustomize `images:` entries (https://fluxcd.io/flux/components/kustomize/kustomizations/#images).
PODINFO_SYNC = """\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 5m
  url: https://github.com/stefanprodan/podinfo
  ref:
    semver: ">=6.0.0"
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: podinfo
  namespace: flux-system
spec:
  interval: 10m
  targetNamespace: default
  sourceRef:
    kind: GitRepository
    name: podinfo
  path: "./kustomize"
  prune: true
  images:
    - name: ghcr.io/stefanprodan/podinfo
      newTag: 6.7.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
    - name: redis
      newName: public.ecr.aws/docker/library/redis
      newTag: 7.2.4
  postBuild:
    substitute:
      cluster_env: prod
"""
PODINFO_IMAGE = "ghcr.io/stefanprodan/podinfo"
SYNC = "clusters/production/podinfo.yaml"


@pytest.mark.parametrize("version", ["v1", "v1beta2", "v1beta1"])
def test_the_spec_images_of_a_flux_kustomization_are_edited_as_kustomize_entries(loader, version):
    text = PODINFO_SYNC.replace("kustomize.toolkit.fluxcd.io/v1", f"kustomize.toolkit.fluxcd.io/{version}")
    after, edits, kept = edit_file(text, path=SYNC, repository=PODINFO_IMAGE, new_reference=f"{PODINFO_IMAGE}:6.8.0")
    assert after == text.replace("newTag: 6.7.0 #", "newTag: 6.8.0 #")  # the marker comment stays
    assert edits == (f"Kustomization/podinfo image {PODINFO_IMAGE}: {PODINFO_IMAGE}:6.7.0 -> {PODINFO_IMAGE}:6.8.0",)
    pinned, _, _ = edit_file(text, path=SYNC, repository=PODINFO_IMAGE,
                             new_reference=f"{PODINFO_IMAGE}:6.8.0@{DIGEST}")
    assert pinned == after.replace("flux-system:podinfo:tag\"}\n", f"flux-system:podinfo:tag\"}}\n      digest: {DIGEST}\n")
    # matched by newName, as kustomize matches the image it produces: only the tag changes
    redis, _, _ = edit_file(text, path=SYNC, repository=REDIS, new_reference=f"{REDIS}:7.4")
    assert redis == text.replace("newTag: 7.2.4", 'newTag: "7.4"')  # a float in plain style: quoted
    assert kept == ()


def test_a_flux_kustomization_image_is_never_downgraded():
    after, edits, kept = edit_file(PODINFO_SYNC, path=SYNC, repository=PODINFO_IMAGE,
                                   new_reference=f"{PODINFO_IMAGE}:6.6.0", tag_order=TagOrder.SEMVER)
    assert (after, edits) == (PODINFO_SYNC, ())
    assert kept == (f"Kustomization/podinfo image {PODINFO_IMAGE}: keeps {PODINFO_IMAGE}:6.7.0 (newer than 6.6.0)",)


def test_an_image_of_a_flux_kustomization_outside_spec_images_is_refused_with_where_it_is():
    text = PODINFO_SYNC.replace("cluster_env: prod", "API_IMAGE: ghcr.io/acme/api:1.0")
    with pytest.raises(ConfigError) as err:
        edit_file(text, path=SYNC, repository="ghcr.io/acme/api", new_reference="ghcr.io/acme/api:1.1")
    assert str(err.value) == (f"{SYNC}:34: no container image of ghcr.io/acme/api that buildctl edits: "
                              "Kustomization/podinfo has it at spec.postBuild.substitute.API_IMAGE, not in its "
                              "`spec.images:` list (buildctl edits name/newName/newTag/digest entries there)")
    with pytest.raises(ConfigError) as err:
        edit_file(PODINFO_SYNC, path=SYNC, repository="ghcr.io/acme/api", new_reference="ghcr.io/acme/api:1.1")
    assert str(err.value) == (f"{SYNC}: no container image of ghcr.io/acme/api found: Kustomization/podinfo has no "
                              "`spec.images:` entry for it")


def test_the_api_group_tells_a_flux_kustomization_from_kustomizes_file():
    # Flux's resource in a file named kustomization.yaml: its spec.images, not a top-level `images:`
    text = PODINFO_SYNC.split("---\n")[2] + "images:\n- name: ghcr.io/stefanprodan/podinfo\n  newTag: '1'\n"
    after, _, _ = edit_file(text, path="kustomization.yaml", repository=PODINFO_IMAGE,
                            new_reference=f"{PODINFO_IMAGE}:6.8.0")
    assert after == text.replace("newTag: 6.7.0 #", "newTag: 6.8.0 #")
    # kustomize's own file keeps its `images:`, whatever spec it carries
    kustomize = text.replace("kustomize.toolkit.fluxcd.io/v1", "kustomize.config.k8s.io/v1beta1")
    after, _, _ = edit_file(kustomize, path="app.yaml", repository=PODINFO_IMAGE, new_reference=f"{PODINFO_IMAGE}:6.8.0")
    assert after == kustomize.replace("newTag: '1'", "newTag: '6.8.0'")

"""Argo CD Applications, ApplicationSet templates and Image Updater's .argocd-source files: Helm keys
by parameter name or in valuesObject, kustomize.images strings (shapes of Argo CD's Application spec
docs and Image Updater's git write-back)."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file
from buildctl.model import HelmKeys

R = "127.0.0.1:5000/voting-app/api"

APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: api
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://github.com/example/charts.git
    targetRevision: HEAD
    path: charts/api
    helm:
      parameters:
      - name: image.tag
        value: "1.4.0"
        forceString: true
      valuesObject:
        image:
          repository: 127.0.0.1:5000/voting-app/api   # set here
          tag: ignored-the-parameter-wins
  destination:
    server: https://kubernetes.default.svc
    namespace: api
"""


def edit(text: str, path: str = "apps/api.yaml", helm: HelmKeys | None = HelmKeys(), tag: str = "1.5.0"):
    return edit_file(text, path=path, repository=R, new_reference=f"{R}:{tag}", helm=helm)


def test_a_parameter_wins_over_values_object_and_is_edited_there(loader):
    after, edits, _ = edit(APP, tag="8.10")
    assert after == APP.replace('value: "1.4.0"', 'value: "8.10"')
    assert edits == (f"Application/api spec.source.helm image.repository/image.tag: {R}:1.4.0 -> {R}:8.10",)


def test_values_object_alone_and_an_application_set_template():
    text = APP.replace('''      parameters:
      - name: image.tag
        value: "1.4.0"
        forceString: true
''', "").replace("tag: ignored-the-parameter-wins", "tag: '1.4.0'")
    assert edit(text)[0] == text.replace("'1.4.0'", "'1.5.0'")
    appset = ("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata: {name: api}\nspec:\n"
              "  generators: [{list: {elements: [{env: prod}]}}]\n  template:\n    metadata: {name: 'api-{{env}}'}\n"
              "    spec:\n      sources:\n      - repoURL: https://example.com/charts\n        chart: api\n"
              "        helm:\n          parameters:\n          - {name: image.repository, value: " + R + "}\n"
              "          - {name: image.tag, value: '1.4.0'}\n")
    after, edits, _ = edit(appset)
    assert after == appset.replace("'1.4.0'", "'1.5.0'")
    assert edits[0].startswith("ApplicationSet/api spec.template.spec.sources[0].helm image.repository/image.tag:")


SOURCE = """\
helm:
  parameters:
  - name: image.name
    value: 127.0.0.1:5000/voting-app/api
    forcestring: true
  - name: image.tag
    value: 1.4.0
    forcestring: true
"""


def test_an_image_updater_source_file_is_edited_by_parameter_name():
    keys = HelmKeys(repository="image.name", tag="image.tag")
    after, _, _ = edit(SOURCE, path="apps/api/.argocd-source-api.yaml", helm=keys)
    assert after == SOURCE.replace("value: 1.4.0", "value: 1.5.0")
    with pytest.raises(ConfigError) as err:  # `helm: {}` names image.repository, which Image Updater does not write
        edit(SOURCE, path="apps/api/.argocd-source-api.yaml", helm=HelmKeys())
    assert str(err.value) == ("apps/api/.argocd-source-api.yaml:1: no Argo CD helm source here sets image.repository "
                              "(in `helm.parameters` by name or `helm.valuesObject`)")
    assert err.value.hint == ("its parameters are image.name, image.tag: name the image's in `helm:` (Image Updater "
                              "writes image.name and image.tag: helm: {repository: image.name, tag: image.tag})")


def test_a_key_only_in_a_values_string_is_refused_with_the_reason():
    text = APP[:APP.index("      parameters:")] + "      values: |\n        image:\n          tag: 1.4.0\n" + \
        APP[APP.index("  destination:"):]
    with pytest.raises(ConfigError) as err:
        edit(text)
    assert str(err.value).startswith("apps/api.yaml:13: helm key image.repository is not in `spec.source.helm.parameters` "
                                     "nor `spec.source.helm.valuesObject`, and `spec.source.helm.values` is a string")


KUSTOMIZE_APP = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    path: kustomize-guestbook
    kustomize:
      namePrefix: prod-
      images:
      - gcr.io/heptio-images/ks-guestbook-demo:0.2
      - api=127.0.0.1:5000/voting-app/api:1.4.0   # renamed
      - '127.0.0.1:5000/voting-app/api:1.4.0'
"""


def test_kustomize_images_strings_of_an_application(loader):
    after, edits, _ = edit(KUSTOMIZE_APP, helm=None)
    assert after == KUSTOMIZE_APP.replace(f"{R}:1.4.0", f"{R}:1.5.0")
    assert edits[0] == f"Application/guestbook spec.source.kustomize.images[1]: {R}:1.4.0 -> {R}:1.5.0"
    source = "kustomize:\n  images:\n  - 127.0.0.1:5000/voting-app/api:1.4.0\n"
    assert edit(source, path=".argocd-source-guestbook.yaml", helm=None)[0] == source.replace("1.4.0", "1.5.0")


def test_an_application_set_template_expression_is_not_taken_for_an_empty_value():
    text = APP.replace("repository: 127.0.0.1:5000/voting-app/api   # set here", "repository: '{{values.repo}}'")
    with pytest.raises(ConfigError) as err:
        edit(text)
    assert str(err.value) == ("apps/api.yaml:19: `image.repository` is {{values.repo}}, not the release's repository "
                              f"{R}: these values are another image's")


def test_parameters_without_helm_keys_say_where_the_image_is():
    with pytest.raises(ConfigError) as err:
        edit(APP.replace('value: "1.4.0"', f"value: {R}:1.4.0"), helm=None)
    assert str(err.value) == (f"apps/api.yaml:15: no container image of {R} that buildctl edits: Application/api has "
                              "it at spec.source.helm.parameters[0].value, not in a source's `kustomize.images` "
                              "(give the entry `helm:` keys for Helm values)")


# Argo CD's multiple-sources docs: the chart's values come from a file of another source (`ref: values`).
MULTI_SOURCE = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: prometheus
spec:
  sources:
  - repoURL: 'https://prometheus-community.github.io/helm-charts'
    chart: prometheus
    targetRevision: 15.7.1
    helm:
      valueFiles:
      - $values/charts/prometheus/values.yaml
  - repoURL: 'https://git.example.com/org/value-files.git'
    targetRevision: dev
    ref: values
"""


def test_an_application_reading_a_values_file_says_to_list_that_file():
    with pytest.raises(ConfigError) as err:
        edit(MULTI_SOURCE, path="apps/prometheus.yaml", helm=HelmKeys())
    assert str(err.value).startswith("apps/prometheus.yaml:1: no Argo CD helm source here sets image.repository")
    assert err.value.hint == ("list the values file it reads with `helm:` ($values/charts/prometheus/values.yaml; "
                              "`$values/` is the root of the source with `ref: values`)")
    with pytest.raises(ConfigError) as err:  # `valueFiles` as a string is no list of files
        edit(MULTI_SOURCE.replace("valueFiles:\n      - $values", "valueFiles: $values"), path="a.yaml", helm=HelmKeys())
    assert err.value.hint == "add it there, or list the chart's values file with `helm:` instead"

"""The release-correctness sections of services.yaml: Helm entries of ``manifests:`` and ``sign:``.

Beside loader.py like builder_config.py: the schema has checked the shape; this checks what a
schema cannot (a key file on disk, keys that must differ) and builds the model's frozen values.
"""

from __future__ import annotations

import re
from pathlib import Path

from buildctl.config import paths
from buildctl.config.yaml_source import Path_
from buildctl.model import GitOpsFile, HelmKeys, SignConfig


def manifest_entry(entry: dict, at: Path_, fail) -> GitOpsFile:
    helm = entry.get("helm")
    keys = None
    if helm is not None:
        if entry.get("containers"):
            raise fail("a Helm values file has no containers: use `helm:` keys or `containers:`, not both", at)
        keys = helm_keys(helm, (*at, "helm"), fail)
    return GitOpsFile(entry["path"], tuple(entry.get("containers", ())), keys)


def helm_keys(helm: dict, at: Path_, fail) -> HelmKeys:
    """The layout ``helm:`` names (model.HelmKeys): split keys, one ``image`` value, or a ``prefix``."""
    if "image" in helm:
        if others := [k for k in ("repository", "tag", "digest", "registry", "prefix") if k in helm]:
            raise fail(f"`helm.image` holds the whole reference: leave out `{others[0]}`", at)
        return HelmKeys(repository=None, tag=None, image=helm["image"])
    if "prefix" in helm:
        if others := [k for k in ("repository", "digest", "registry") if k in helm]:
            raise fail(f"`helm.prefix` is the repository of every image under it: leave out `{others[0]}`", at,
                       hint="one tag key serves every service under the prefix, so no digest can be pinned there")
        parent = helm["prefix"].rpartition(".")[0]
        keys = HelmKeys(repository=None, tag=helm.get("tag", f"{parent}.tag".lstrip(".")), prefix=helm["prefix"])
    else:
        keys = HelmKeys(**{k: v for k, v in helm.items() if k in ("repository", "tag", "digest", "registry")})
    if len(set(keys.named)) != len(keys.named):
        raise fail("the helm repository, tag and digest keys must differ", at)
    return keys


# cosign key references that are not files (cosign's --key: KMS providers and env://).
_KEY_URI = re.compile(r"^(env|awskms|azurekms|gcpkms|hashivault|k8s|pkcs11)://")


def sign_config(root: Path, raw: dict | None, fail) -> SignConfig | None:
    if raw is None:
        return None
    key = raw["key"]
    if not _KEY_URI.match(key):
        key = str(paths.regular_file(root, key, ("sign", "key"), fail, what="signing key",
                                     hint="generate one: COSIGN_PASSWORD=... cosign generate-key-pair"))
    return SignConfig(key=key, password_env=raw.get("password_env", "COSIGN_PASSWORD"))


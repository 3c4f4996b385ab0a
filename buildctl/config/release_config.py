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
        keys = HelmKeys(**{k: v for k, v in helm.items() if k in ("repository", "tag", "digest")})
        named = [k for k in (keys.repository, keys.tag, keys.digest) if k]
        if len(set(named)) != len(named):
            raise fail("the helm repository, tag and digest keys must differ", (*at, "helm"))
    return GitOpsFile(entry["path"], tuple(entry.get("containers", ())), keys)


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


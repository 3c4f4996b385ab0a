"""No secret in a services.yaml field: the refusal of ``${SECRET}`` interpolation (issue #24).

Every field is shown by `plan` and `plan --json`, and a build arg or tag also reaches the buildx
command line (``ps``) and the image's provenance attestation, which anyone who can pull the image
reads. So a variable that holds a secret (redaction.is_secret_variable: by its name, whatever it
is set to) may not be interpolated into any field, set or not; secrets reach a build as BuildKit
secrets, by variable name. The message names the field and the variable, never the value.
"""

from __future__ import annotations

from buildctl.errors import ConfigError


def secret_interpolation_error(name: str, *, file: str, line: int, key: str) -> ConfigError:
    return ConfigError(
        f"${{{name}}} holds a secret, and services.yaml fields are printed by `plan`, passed to buildx "
        "on its command line and stored in the image's provenance: it may not be interpolated",
        file=file, line=line, key=key or None,
        hint=f"give a build a secret as secrets: [{{id: ..., env: {name}}}] (a BuildKit secret); "
        "a variable that holds no secret needs a name that does not say it does (…TOKEN, …PASSWORD, …_KEY)",
    )  # fmt: skip

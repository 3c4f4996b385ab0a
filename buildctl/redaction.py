"""Credentials in repository URLs: detected once, removed once, for every URL buildctl shows.

Besides userinfo, a query parameter named like a credential (``?access_token=…``, GitLab's
``private_token``, an Azure SAS ``sig``, ``X-Amz-Signature``…) is one: its value is masked.

A URL is ``scheme://[userinfo@]host/...`` whatever the scheme's case (``HTTPS://`` is a URL too), or
git's scp-like ``[user@]host:path``. Userinfo with a password, or a bare user name on anything but
ssh (GitHub and Azure DevOps accept a token as the user name), is a credential. An ssh login name
(``ssh://git@host``, ``git@host:org/repo``) is not.
"""

from __future__ import annotations

import base64
import re
import threading

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# scp-like: no "/" before the first ":", which is not followed by "//"; an optional user@ in front.
# Userinfo ends at the *last* "@" of the authority (a password may hold a raw "@"), and the
# authority ends at the first "/", "?" or "#" (RFC 3986 3.2): "h?x=a@b" has no userinfo.
_SCP = re.compile(r"^(?P<user>[^@/:\s]+(?::[^/\s]*)?@)?(?P<host>[^@/:\s]+):(?!//)")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*@)", re.IGNORECASE)
_SCP_PASSWORD = re.compile(r"(?<![\w/.-])(?P<user>[^@/:\s]+):(?P<secret>[^/\s]+)@(?P<host>[^@/:\s]+):")


# A query parameter of a URL whose name says it carries a secret; its value ends at & # or space.
_SECRET_QUERY = re.compile(
    r"(?P<lead>[?&](?:access_token|private_token|token|password|passwd|pwd|secret|client_secret|sig|"
    r"signature|x-amz-signature|x-amz-credential|x-amz-security-token|api_key|apikey)=)(?P<value>[^&#\s'\"]+)",
    re.IGNORECASE,
)


def is_url(text: str) -> bool:
    """A URL or an scp-like remote (not a local path), as git decides: ``./a:b`` and ``/x`` are paths."""
    if _SCHEME.match(text):
        return True
    return not text.startswith(("/", ".")) and _SCP.match(text) is not None


def has_credentials(url: str) -> bool:
    """Userinfo that is a secret: a password anywhere, or a user name on a non-ssh URL."""
    if match := _SCHEME.match(url):
        if _SECRET_QUERY.search(url):
            return True
        userinfo = _URL_USERINFO.match(url)
        if userinfo is None:
            return False
        user = userinfo["userinfo"][:-1]
        return ":" in user or "ssh" not in match.group(0).lower()
    scp = _SCP.match(url)
    return bool(scp and scp["user"] and ":" in scp["user"])


def redact_url(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``https://u:tok@h/x`` -> ``https://h/x``),
    credential query values masked (``?access_token=***``), and the password of every scp-like remote masked (``u:tok@h:x`` -> ``u:***@h:x``)."""
    text = _URL_USERINFO.sub(lambda m: m["scheme"], text)
    text = _SECRET_QUERY.sub(lambda m: f"{m['lead']}***" if m["value"] != "***" else m[0], text)
    return _SCP_PASSWORD.sub(lambda m: f"{m['user']}:***@{m['host']}:", text)


# Secrets this process holds (registry passwords, identity and Bearer tokens), in every form they
# could be echoed in: raw, and base64 as in a Basic authorization header. ``redact`` removes them
# from any text before it is shown; secrets shorter than _MIN_SECRET would mangle ordinary words
# and are not registered.
_MIN_SECRET = 4
_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def remember_secret(value: str, *, username: str | None = None) -> None:
    """Register ``value`` (and, with ``username``, the ``username:value`` Basic form) for ``redact``."""
    if len(value) < _MIN_SECRET:
        return
    forms = {value, base64.b64encode(value.encode()).decode()}
    if username is not None:
        forms.add(base64.b64encode(f"{username}:{value}".encode()).decode())
    with _secrets_lock:
        _known_secrets.update(forms)


def redact(text: str) -> str:
    """``text`` without any registered secret (each becomes ``***``) and without URL credentials."""
    with _secrets_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)  # a longer form first: it may hold a shorter one
    for secret in secrets:
        text = text.replace(secret, "***")
    return redact_url(text)


# Environment variables known to hold a secret: the registry password, the Git tokens (Azure's
# SYSTEM_ACCESSTOKEN, GitHub's GITHUB_TOKEN), cosign's key password. tests/test_redaction.py keeps
# this in step with the names buildctl reads them from.
SECRET_VARIABLES = frozenset({"BUILDCTL_REGISTRY_PASSWORD", "BUILDCTL_GIT_TOKEN", "SYSTEM_ACCESSTOKEN",
                              "GITHUB_TOKEN", "COSIGN_PASSWORD", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"})  # fmt: skip
# ...and names that say they hold one. Azure maps `$(registryPassword)` to REGISTRYPASSWORD, so
# the words end a name with or without a "_"; KEY, PAT and PWD only as a word of their own
# (MONKEY, SPAT and the shell's PWD are not secrets).
_SECRET_NAME = re.compile(r"(TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|APIKEY|CREDENTIALS?|.+_(KEY|PAT|PWD))\Z",
                          re.IGNORECASE)


def is_secret_variable(name: str) -> bool:
    """True for an environment variable that holds a secret, by name (its value is never looked at)."""
    return name.upper() in SECRET_VARIABLES or _SECRET_NAME.search(name) is not None

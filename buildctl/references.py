"""Docker image references, per the distribution reference grammar.

https://github.com/distribution/reference/blob/main/reference.go — reproduced as regular
expressions because no well-kept Python package implements it (docker-py's parse_repository_tag
does not validate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w: ASCII only
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

DOMAIN_RE = re.compile(rf"^{_DOMAIN}\Z")  # \Z: "$" also matches before a final newline
PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z")
TAG_RE = re.compile(rf"^{_TAG}\Z")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_REFERENCE_RE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?\Z"
)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}\Z")  # an image ID (reference.go's identifier)
DEFAULT_REGISTRY = "docker.io"
_LEGACY_DEFAULT_REGISTRY = "index.docker.io"
# reference.go's RepositoryNameTotalLengthMax: the repository path, the registry not counted
# (Parse checks len(repo.path)); after normalisation, so docker.io's library/ counts.
REPOSITORY_LENGTH_MAX = 255


@dataclass(frozen=True)
class ImageReference:
    registry: str  # host[:port]
    repository: str  # path within the registry
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str | None) -> ImageReference:
        return ImageReference(self.registry, self.repository, tag, self.digest)

    def with_digest(self, digest: str | None) -> ImageReference:
        return ImageReference(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        # distribution/reference's normalize.go: the legacy Docker Hub host is docker.io, where a
        # one-part name is an official image (docker.io/nginx, index.docker.io/nginx: docker.io/library/nginx).
        first = DEFAULT_REGISTRY if first == _LEGACY_DEFAULT_REGISTRY else first
        if first == DEFAULT_REGISTRY and "/" not in rest:
            rest = f"library/{rest}"
        return first, rest
    repository = name if "/" in name else f"library/{name}"
    return DEFAULT_REGISTRY, repository


def parse_reference(text: str) -> ImageReference:
    """Parse ``text``; raise ValueError with a message saying what is wrong."""
    if not text:
        raise ValueError("empty image reference")
    if _IDENTIFIER_RE.match(text):  # normalize.go: "cannot specify 64-byte hexadecimal strings"
        raise ValueError(f"invalid image reference {text!r}: 64 hexadecimal digits are an image ID, not a "
                         "repository name (write it as registry/path, or @sha256:<digest> for a digest)")
    match = _REFERENCE_RE.match(text)
    if match is None:
        raise ValueError(f"invalid image reference {text!r}: {_why_invalid(text)}")
    digest = match.group("digest")
    if digest is not None and (problem := _digest_problem(digest)):
        raise ValueError(f"invalid image reference {text!r}: {problem}")
    registry, repository = _split_domain(match.group("name"))
    if problem := name_problem(repository):
        raise ValueError(f"invalid image reference {text[:60]!r}…: {problem}")
    return ImageReference(registry, repository, match.group("tag"), digest)


# The grammar accepts any algorithm:hex; go-digest (what docker and registries parse it with)
# knows three, each with a fixed length of lowercase hex.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


def _digest_problem(digest: str) -> str | None:
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        return f"unsupported digest algorithm {algorithm!r} (sha256, sha384 or sha512)"
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        return f"a {algorithm} digest is {length} lowercase hex characters"
    return None


TAG_RULE = "tags are 1-128 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')"


def _why_invalid(text: str) -> str:
    name, _, digest = text.partition("@")
    if digest and not re.match(rf"^{_DIGEST}\Z", digest):
        return "the digest must look like sha256:<64 hex characters>"
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG_RE.match(tag):
            return TAG_RULE
    path = name.split("/", 1)[1] if "/" in name and _split_domain(name)[0] != DEFAULT_REGISTRY else name
    if path != path.lower():
        return "repository names must be lowercase"
    return "expected [registry[:port]/]path[:tag][@sha256:digest]"


def written_name(text: str) -> str:
    """The name of the reference ``text`` as written (not normalised), without its tag and digest:
    ``team/app:41@sha256:…`` -> ``team/app``."""
    tag = parse_reference(text).tag
    return text.partition("@")[0].removesuffix(f":{tag}" if tag else "")


def is_valid_repository_path(path: str) -> bool:
    return bool(PATH_RE.match(path))


def registry_problem(host: str) -> str | None:
    """Why ``host`` is not a registry host[:port] (None when it is one)."""
    if not host:
        return "empty; expected host[:port], e.g. myacr.azurecr.io"
    if not DOMAIN_RE.match(host):
        return "expected host[:port], e.g. myacr.azurecr.io"
    port = host.rpartition(":")[2] if not host.endswith("]") and ":" in host else None
    if port is not None and not 0 < int(port) <= 65535:
        return f"port {port} is out of range (1-65535)"
    return None


def name_problem(repository: str) -> str | None:
    """Why the repository path is too long for a registry (distribution's
    RepositoryNameTotalLengthMax: the path within the registry, the registry itself not counted)."""
    if len(repository) > REPOSITORY_LENGTH_MAX:
        return (f"the repository path {repository[:40]}… is {len(repository)} characters; registries allow at most "
                f"{REPOSITORY_LENGTH_MAX} (the registry not counted)")
    return None


def is_valid_tag(tag: str) -> bool:
    return bool(TAG_RE.match(tag))

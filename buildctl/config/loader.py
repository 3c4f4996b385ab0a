"""services.yaml -> Config: schema validation with file:line errors, then semantic checks.

The JSON Schema in services.schema.json is the single source of truth for shape (it is also
what editors use); this module maps the first schema error to a line, then checks what a schema
cannot: references, paths on disk, duplicates.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from buildctl import references
from buildctl.config.builder_config import builder_config, cache_specs
from buildctl.config.release_config import manifest_entry, sign_config
from buildctl.config.yaml_source import Path_, SourceDocument, format_path, load_yaml
from buildctl.errors import ConfigError
from buildctl.redaction import has_credentials, is_url
from buildctl.model import (
    BinfmtConfig,
    BuildOptions,
    Config,
    GitOpsConfig,
    GitOpsFile,
    ServiceConfig,
    TagOrder,
    VerifyConfig,
    frozen_map,
)
from buildctl.platforms import Platform, PlatformError

DEFAULT_REGISTRY = "127.0.0.1:5000"
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_TAG = "latest"
# Build args end up in provenance attestations (docker/docs#19281): refuse secret-looking names.
_SECRET_ARG = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY", re.IGNORECASE)


@cache
def schema() -> dict[str, Any]:
    return json.loads(resources.files("buildctl.config").joinpath("services.schema.json").read_text())


def load_config(
    path: Path,
    *,
    tag: str | None = None,
    registry: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate ``path``; ``tag``/``registry`` are the CLI overrides."""
    path = path.absolute()
    doc = load_yaml(path, shown_as=_shown(path), environ=environ)
    _validate_schema(doc)
    return _build(doc, path, tag_override=tag, registry_override=registry, environ=environ)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _validate_schema(doc: SourceDocument) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(doc.data))
    if not errors:
        return
    # An unknown key first, wherever it is: a typo'd key is what makes its mapping "miss" a
    # required one, and "unknown key 'contxt' (did you mean 'context'?)" is the error to fix.
    located = [(_locate(doc, e), _unknown_key_error(e) is None) for e in errors]
    (line, key, message), _ = min(located, key=lambda item: (item[1], item[0][0] or 0, item[0][1]))
    raise ConfigError(message, file=doc.file, line=line, key=key or None)


def _unknown_key_error(error: jsonschema.ValidationError) -> jsonschema.ValidationError | None:
    """The additionalProperties: false error in ``error`` (also inside a oneOf, e.g. a manifest)."""
    if error.validator == "additionalProperties" and error.validator_value is False:
        return error
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return next((e for e in error.context or () if _unknown_key_error(e) is not None), None)
    return None


def _unknown_key(doc: SourceDocument, error: jsonschema.ValidationError) -> tuple[int | None, str, str]:
    """The mapping's first unknown key (by line), with the closest allowed key as a suggestion."""
    path: Path_ = tuple(error.absolute_path)
    allowed = sorted(error.schema.get("properties", {}))
    patterns = error.schema.get("patternProperties", {})
    unknown = [k for k in error.instance if k not in allowed and not any(re.search(p, str(k)) for p in patterns)]
    first = min(unknown, key=lambda k: doc.line_of((*path, k)) or 0)
    close = difflib.get_close_matches(str(first), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else (f" (allowed: {', '.join(allowed)})" if allowed else "")
    return doc.line_of((*path, first)), format_path(path), f"unknown key {first!r}{hint}"


def _locate(doc: SourceDocument, error: jsonschema.ValidationError) -> tuple[int | None, str, str]:
    """(line, key, message) for one schema error, worded for a person editing YAML."""
    path: Path_ = tuple(error.absolute_path)
    value = error.instance
    if (unknown := _unknown_key_error(error)) is not None:
        return _unknown_key(doc, unknown)
    if error.validator == "required":
        missing = error.message.split("'")[1]
        return doc.line_of(path), format_path(path), f"missing required key {missing!r}"
    if "propertyNames" in error.schema_path:
        return doc.line_of((*path, value)), format_path((*path, value)), (
            "service names must be lowercase letters, digits, '.', '_' or '-'"
        )
    if "x-message" in error.schema:
        return doc.line_of(path), format_path(path), error.schema["x-message"].format(value=value)
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return doc.line_of(path), format_path(path), f"expected {_article(expected)}, got {_type_name(value)} {value!r}"
    if error.validator == "enum":
        options = ", ".join(map(str, error.validator_value))
        return doc.line_of(path), format_path(path), f"must be one of {options}, got {value!r}"
    if error.validator == "oneOf" and path and path[-2:-1] == ("manifests",):
        return doc.line_of(path), format_path(path), "a manifest is a path or {path: ..., containers: [...]}"
    if error.validator == "maxItems":
        return doc.line_of(path), format_path(path), f"at most {error.validator_value} item(s)"
    if error.validator in {"minItems", "minProperties", "minLength"}:
        return doc.line_of(path), format_path(path), "must not be empty"
    if error.validator == "uniqueItems":
        return doc.line_of(path), format_path(path), "contains duplicates"
    return doc.line_of(path), format_path(path), error.message


def _article(word: str) -> str:
    names = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
             "integer": "an integer", "number": "a number"}
    return " or ".join(names.get(w.strip(), w.strip()) for w in word.split(" or "))


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _build(doc: SourceDocument, path: Path, *, tag_override: str | None, registry_override: str | None,
           environ: Mapping[str, str] | None = None) -> Config:
    data = doc.data
    root = path.parent

    def fail(message: str, at: Path_, *, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=doc.file, line=doc.line_of(at), key=format_path(at), hint=hint)

    registry = registry_override if registry_override is not None else data.get("registry", DEFAULT_REGISTRY)
    if problem := references.registry_problem(registry):
        if registry_override is not None:
            raise ConfigError(f"invalid registry {registry!r}: {problem}", key="--registry")
        raise fail(f"invalid registry {registry!r}: {problem}", ("registry",))
    tag = tag_override if tag_override is not None else str(data.get("tag", DEFAULT_TAG))
    if not references.is_valid_tag(tag):
        why = "tags are 1-128 characters of letters, digits, '_', '.', '-' (not starting with '.' or '-')"
        if tag_override is not None:
            raise ConfigError(f"invalid tag {tag!r}: {why}", key="--tag")
        raise fail(f"invalid tag {tag!r}: {why}", ("tag",))
    platforms = _platforms(data.get("platforms", DEFAULT_PLATFORMS), ("platforms",), fail)
    project = (root / data.get("project", ".")).resolve()
    if not project.is_dir():
        raise fail(f"project folder {data['project']!r} does not exist", ("project",))
    services = tuple(_service(doc, root, name, raw, platforms, fail, project=project)
                     for name, raw in data["services"].items())
    seen: dict[str, str] = {}
    for svc in services:
        if problem := references.name_problem(registry, svc.image):
            raise fail(f"image name too long: {problem}", ("services", svc.name, "image"))
        if svc.image in seen:
            raise fail(f"image {svc.image!r} is also used by service {seen[svc.image]!r}", ("services", svc.name, "image"))
        seen[svc.image] = svc.name
    builder = data.get("builder", {})
    binfmt = data.get("binfmt", {})
    build = data.get("build", {})
    return Config(
        path=path,
        registry=registry,
        tag=tag,
        platforms=platforms,
        builder=builder_config(builder, root, fail, environ=environ),
        binfmt=BinfmtConfig(**binfmt),
        build=BuildOptions(
            provenance=build.get("provenance", True),
            sbom=build.get("sbom", False),
            pull=build.get("pull", False),
            no_cache=build.get("no_cache", False),
            cache_from=cache_specs(build.get("cache_from", ()), ("build", "cache_from"), fail),
            cache_to=cache_specs(build.get("cache_to", ()), ("build", "cache_to"), fail),
            labels=_strings(build.get("labels")),
            source_date_epoch=str(build.get("source_date_epoch", "auto")),
        ),
        gitops=_gitops(doc, root, data.get("gitops"), fail),
        services=services,
        sign=sign_config(root, data.get("sign"), fail),
        verify=VerifyConfig(tuple(data.get("verify", {}).get("allow_foreign", ())),
                            float(data.get("verify", {}).get("deadline_seconds", 120.0))),
    )


def _platforms(values: list[str] | tuple[str, ...], at: Path_, fail) -> tuple[str, ...]:
    """Each platform supported (platforms.Platform.parse), and none twice once normalised."""
    seen: dict[str, int] = {}
    for i, text in enumerate(values):
        try:
            normal = str(Platform.parse(text))
        except PlatformError as exc:
            raise fail(str(exc), (*at, i)) from None
        if normal in seen:
            raise fail(f"platform {text!r} is {values[seen[normal]]!r} again", (*at, i))
        seen[normal] = i
    return tuple(values)


def _strings(raw: Mapping[str, Any] | None) -> Mapping[str, str]:
    return frozen_map({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (raw or {}).items()})


def _inside(root: Path, rel: str, project: Path) -> Path | None:
    """The absolute path of ``rel`` (relative to ``root``), or None if it escapes ``project``
    (`../..`, symlinks)."""
    candidate = (root / rel).resolve()
    return candidate if candidate.is_relative_to(project) else None


def _service(doc, root: Path, name: str, raw: dict, platforms: tuple[str, ...], fail, *,
             project: Path) -> ServiceConfig:
    at: Path_ = ("services", name)
    context = _inside(root, raw["context"], project)
    if context is None:
        raise fail(f"context {raw['context']!r} is outside the project folder {project}", (*at, "context"))
    if not context.is_dir():
        raise fail(f"context folder {raw['context']!r} does not exist", (*at, "context"))
    dockerfile_rel = raw.get("dockerfile", str(Path(raw["context"]) / "Dockerfile"))
    dockerfile = _inside(root, dockerfile_rel, project)
    dockerfile_at = (*at, "dockerfile") if "dockerfile" in raw else (*at, "context")
    if dockerfile is None:
        raise fail(f"Dockerfile {dockerfile_rel!r} is outside the project folder {project}", dockerfile_at)
    if not dockerfile.is_file():
        raise fail(f"Dockerfile {dockerfile_rel!r} does not exist", dockerfile_at)
    try:
        dockerfile.read_bytes()
    except OSError as exc:
        raise fail(f"Dockerfile {dockerfile_rel!r} cannot be read: {exc.strerror}", dockerfile_at) from None
    image = raw["image"]
    if not references.is_valid_repository_path(image):
        why = "must be lowercase" if image != image.lower() else "expected a path like voting-app/vote (lowercase, no registry, no tag)"
        raise fail(f"invalid image name {image!r}: {why}", (*at, "image"))
    build_args = _strings(raw.get("build_args"))
    for arg in build_args:
        if _SECRET_ARG.search(arg):
            raise fail(
                f"build arg {arg!r} looks like a secret; build args are stored in provenance attestations",
                (*at, "build_args", arg),
                hint="pass it as a BuildKit secret: secrets: [{id: ..., env: ...}] (docker/docs#19281)",
            )
    manifests = []
    for i, entry in enumerate(raw.get("manifests", ())):
        target = GitOpsFile(entry, ()) if isinstance(entry, str) else manifest_entry(entry, (*at, "manifests", i), fail)
        rel = Path(target.path)
        if rel.is_absolute() or ".." in rel.parts:
            raise fail(f"manifest path {target.path!r} must be relative to the GitOps repository root, without '..'", (*at, "manifests", i))
        manifests.append(target)
    return ServiceConfig(
        name=name,
        context=context,
        dockerfile=dockerfile,
        image=image,
        platforms=_platforms(raw["platforms"], (*at, "platforms"), fail) if "platforms" in raw else platforms,
        build_args=build_args,
        secrets=frozen_map({s["id"]: s["env"] for s in raw.get("secrets", ())}),
        target=raw.get("target"),
        manifests=tuple(manifests),
        smoke=tuple(raw.get("smoke", ())),
        line=doc.line_of(at),
        allow_foreign=tuple(raw.get("verify", {}).get("allow_foreign", ())),
    )


def _gitops(doc, root: Path, raw: dict | None, fail) -> GitOpsConfig | None:
    if raw is None:
        return None
    repo = raw["repo"]
    if has_credentials(repo):
        raise fail("the repository URL contains credentials; remove them and set BUILDCTL_GIT_TOKEN instead", ("gitops", "repo"))
    if not is_url(repo):
        repo = str((root / repo).resolve())
    author = raw.get("author", {})
    defaults = GitOpsConfig(repo=repo)
    return replace(
        defaults,
        branch=raw.get("branch", defaults.branch),
        pin_digest=raw.get("pin_digest", defaults.pin_digest),
        message=raw.get("message", defaults.message),
        author_name=author.get("name", defaults.author_name),
        author_email=author.get("email", defaults.author_email),
        push_branch=raw.get("push_branch"),
        push_retries=raw.get("push_retries", defaults.push_retries),
        tag_order=TagOrder(raw.get("tag_order", defaults.tag_order)),
    )


def select_services(config: Config, names: tuple[str, ...] | list[str]) -> Config:
    """Config restricted to ``names`` (all when empty); unknown names are a usage error."""
    if not names:
        return config
    known = {s.name for s in config.services}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown service {unknown[0]!r} (services: {', '.join(sorted(known))})", key="SERVICE"
        )
    return replace(config, services=tuple(s for s in config.services if s.name in names))

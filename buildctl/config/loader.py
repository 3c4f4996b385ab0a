"""services.yaml -> Config: schema validation (schema.py) with file:line errors, then semantic checks.

The JSON Schema in services.schema.json is the single source of truth for shape; this module
checks what a schema cannot: references, paths on disk, duplicates.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from buildctl import references
from buildctl.config import builder_name, paths
from buildctl.config.builder_config import builder_config, cache_specs
from buildctl.config.release_config import manifest_entry, sign_config
from buildctl.config.schema import TextFields, matches, validate
from buildctl.config.yaml_hints import azure_macro_hint
from buildctl.config.yaml_source import Path_, SourceDocument, format_path, load_yaml
from buildctl.errors import ConfigError
from buildctl.model import (
    BaseImagePolicy,
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
from buildctl.redaction import has_credentials, is_url

DEFAULT_REGISTRY = "127.0.0.1:5000"
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_TAG = "latest"
# Build args end up in provenance attestations (docker/docs#19281): refuse secret-looking names.
_SECRET_ARG = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|KEY", re.IGNORECASE)


def load_config(
    path: Path,
    *,
    tag: str | None = None,
    registry: str | None = None,
    builder: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate ``path``; ``tag``/``registry``/``builder`` (its name) are the CLI overrides."""
    path = path.absolute()
    doc = load_yaml(path, shown_as=_shown(path), environ=environ, wants_text=TextFields())
    validate(doc)
    config = _build(doc, path, tag_override=tag, registry_override=registry, environ=environ)
    if builder is None:
        return config
    if not matches(builder_name.pattern(), builder):
        raise ConfigError(f"invalid builder name {builder!r}: letters, digits, '_', '.', '-' "
                          "(starting with a letter or a digit)", key="--builder")
    return replace(config, builder=replace(config.builder, name=builder))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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
        raise fail(f"invalid registry {registry!r}: {problem}", ("registry",), hint=azure_macro_hint(registry))
    tag = tag_override if tag_override is not None else str(data.get("tag", DEFAULT_TAG))
    if not references.is_valid_tag(tag):
        why = references.TAG_RULE
        if tag_override is not None:
            raise ConfigError(f"invalid tag {tag!r}: {why}", key="--tag")
        raise fail(f"invalid tag {tag!r}: {why}", ("tag",), hint=azure_macro_hint(tag))
    platforms = _platforms(data.get("platforms", DEFAULT_PLATFORMS), ("platforms",), fail)
    project = paths.folder(root, data.get("project", "."), ("project",), fail, what="project")
    services = tuple(_service(doc, root, name, raw, platforms, fail, project=project)
                     for name, raw in data["services"].items())
    seen: dict[str, str] = {}
    for svc in services:
        if problem := references.name_problem(svc.image):
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
                            float(data.get("verify", {}).get("deadline_seconds", 120.0)),
                            str(data.get("verify", {}).get("page_size", "4k")),
                            bool(data.get("verify", {}).get("attest", True))),
        base_images=BaseImagePolicy(tuple(data.get("policy", {}).get("base_images", {}).get("registries", ())),
                                    data.get("policy", {}).get("base_images", {}).get("require_digest", False)),
    )


def _platforms(values: list[str] | tuple[str, ...], at: Path_, fail) -> tuple[str, ...]:
    """Each platform supported (platforms.Platform.parse), and none twice once normalised."""
    seen: dict[str, int] = {}
    for i, text in enumerate(values):
        try:
            normal = str(Platform.parse(text))
        except PlatformError as exc:
            raise fail(str(exc), (*at, i)) from None
        if normal in seen:  # the schema words an exact repeat the same way
            j = seen[normal]
            raise fail(f"duplicate {text!r} (the same platform as item {j}, {values[j]!r})", (*at, i))
        seen[normal] = i
    return tuple(values)


def _strings(raw: Mapping[str, Any] | None) -> Mapping[str, str]:
    return frozen_map({k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (raw or {}).items()})


def _inside(root: Path, rel: str, project: Path, at: Path_, fail, *, what: str) -> Path | None:
    """The absolute path of ``rel`` (relative to ``root``), or None if it escapes ``project``
    (`../..`, symlinks)."""
    candidate = paths.resolve(root, rel, at, fail, what=what)
    return candidate if candidate.is_relative_to(project) else None


def _service(doc, root: Path, name: str, raw: dict, platforms: tuple[str, ...], fail, *,
             project: Path) -> ServiceConfig:
    at: Path_ = ("services", name)
    context = _inside(root, raw["context"], project, (*at, "context"), fail, what="context")
    if context is None:
        raise fail(f"context {raw['context']!r} is outside the project folder {project}", (*at, "context"))
    paths.folder(root, raw["context"], (*at, "context"), fail, what="context", resolved=context)
    dockerfile_rel = raw.get("dockerfile", str(Path(raw["context"]) / "Dockerfile"))
    dockerfile_at = (*at, "dockerfile") if "dockerfile" in raw else (*at, "context")
    dockerfile = _inside(root, dockerfile_rel, project, dockerfile_at, fail, what="Dockerfile")
    if dockerfile is None:
        raise fail(f"Dockerfile {dockerfile_rel!r} is outside the project folder {project}", dockerfile_at)
    paths.regular_file(root, dockerfile_rel, dockerfile_at, fail, what="Dockerfile", resolved=dockerfile)
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
    manifests: list[GitOpsFile] = []
    for i, entry in enumerate(raw.get("manifests", ())):
        target = _manifest(entry, (*at, "manifests", i), fail)
        if (j := next((j for j, m in enumerate(manifests) if m.path == target.path), None)) is not None:
            raise fail(f"manifest {target.path!r} is also manifests[{j}]: list each file once", (*at, "manifests", i))
        manifests.append(target)
    secrets: dict[str, str] = {}
    for i, secret in enumerate(raw.get("secrets", ())):
        if secret["id"] in secrets:
            first = next(j for j, s in enumerate(raw["secrets"]) if s["id"] == secret["id"])
            raise fail(f"secret id {secret['id']!r} is also secrets[{first}]: ids must differ", (*at, "secrets", i, "id"))
        secrets[secret["id"]] = secret["env"]
    return ServiceConfig(
        name=name,
        context=context,
        dockerfile=dockerfile,
        image=image,
        platforms=_platforms(raw["platforms"], (*at, "platforms"), fail) if "platforms" in raw else platforms,
        build_args=build_args,
        secrets=frozen_map(secrets),
        target=raw.get("target"),
        manifests=tuple(manifests),
        smoke=tuple(raw.get("smoke", ())),
        line=doc.line_of(at),
        allow_foreign=tuple(raw.get("verify", {}).get("allow_foreign", ())),
    )


def _manifest(entry: str | dict, at: Path_, fail) -> GitOpsFile:
    """One manifests: entry, its path normalised (``./d.yaml`` and ``d.yaml`` are one file: two
    services editing it must see each other's edits)."""
    target = GitOpsFile(entry, ()) if isinstance(entry, str) else manifest_entry(entry, at, fail)
    if target.path.startswith("/") or ".." in target.path.split("/"):
        raise fail(f"manifest path {target.path!r} must be relative to the GitOps repository root, without '..'", at)
    normal = posixpath.normpath(target.path)
    if normal == ".":
        raise fail(f"manifest path {target.path!r} names the repository root, not a file", at)
    return replace(target, path=normal)


def _gitops(doc, root: Path, raw: dict | None, fail) -> GitOpsConfig | None:
    if raw is None:
        return None
    repo = raw["repo"]
    if has_credentials(repo):
        raise fail("the repository URL contains credentials; remove them and set BUILDCTL_GIT_TOKEN instead", ("gitops", "repo"))
    if not is_url(repo):
        repo = str(paths.resolve(root, repo, ("gitops", "repo"), fail, what="GitOps repository"))
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
        render_check=raw.get("render_check", defaults.render_check),
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

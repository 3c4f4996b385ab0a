"""The buildx builder a services.yaml names, and the rules for that name: what the loader applies
(config/loader.py, config/builder_config.py) and what the CLI reads before the release's imports.

On an agent with no builder check remembered, the CLI starts `buildx inspect` of that builder
before its ~0.3 s of imports and the loading of services.yaml, which it then runs beside (the
builds wait for that check: engine/early_info.py, issue #20). Read that early, the name is a
guess: a document that does not read plainly here gives none, and the answer is taken only for
the very name the loaded configuration says (engine/docker.py inspect_builder).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from buildctl import jsonsafe, workdir
from buildctl.config.schema import matches, schema

_MAX_BYTES = 1 << 20  # a services.yaml past this is read by the loader alone


def pattern() -> str:
    """The one rule for builder names: the schema's (builder.name)."""
    return schema()["properties"]["builder"]["properties"]["name"]["pattern"]


def default_name(driver: str) -> str:
    """The name of a builder services.yaml does not name: the engine's own, or buildctl's."""
    return "default" if driver == "docker" else "buildctl"


def to_inspect_early(path: Path, *, override: str | None, recreate: bool) -> str | None:
    """The builder whose `buildx inspect` the CLI starts before its imports: the one ``path``
    names, on an agent that remembers no builder check at all (a fresh CI agent: its release
    must check the builder before it builds). None otherwise: a remembered builder is not
    inspected at all, and one about to be recreated is inspected once it is."""
    if recreate or workdir.has_marks(workdir.USABLE_BUILDERS):
        return None
    return named_in(path, override=override)


def named_in(path: Path, *, override: str | None = None) -> str | None:
    """The builder ``path`` names (``override``: the command line's --builder), or None when that
    cannot be read plainly: a file that is not there, too large, not YAML, or a name the schema
    refuses (never an argument to buildx that could read as an option)."""
    name = override if override is not None else _read(path)
    return name if isinstance(name, str) and matches(pattern(), name) else None


def _read(path: Path) -> object:
    try:
        data = yaml.load(jsonsafe.read_file(path, max_bytes=_MAX_BYTES),
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return None
    builder = data.get("builder", {}) if isinstance(data, dict) else None
    if not isinstance(builder, dict):
        return None
    driver = builder.get("driver", "docker")
    return builder.get("name", default_name(driver)) if isinstance(driver, str) else None

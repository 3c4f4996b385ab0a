"""`buildctl schema`: the services.yaml JSON Schema, the one the loader validates with."""

from __future__ import annotations

from typing import Any

from buildctl.config import schema as config_schema


def schema() -> dict[str, Any]:
    return config_schema.schema()

"""`buildctl schema`: the services.yaml JSON Schema, the one the loader validates with."""

from __future__ import annotations

from typing import Any

from buildctl.config import loader


def schema() -> dict[str, Any]:
    return loader.schema()

"""services.yaml -> Config: loading, file:line errors, interpolation, JSON Schema."""

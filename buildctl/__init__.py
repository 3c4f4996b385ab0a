"""buildctl: safe, fast multi-architecture container releases."""

# The one place the version is written: pyproject.toml reads it (dynamic version), `buildctl
# --version` prints it, and tests hold the pins in ci/*.yml and README "Install" to it.
__version__ = "0.1.0"

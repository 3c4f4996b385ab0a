"""buildctl: safe, fast multi-architecture container releases."""

__version__ = "0.1.0"

"""buildctl: safe, fast multi-architecture container releases."""

# The one place the version is written: pyproject.toml reads it (dynamic version), `buildctl
# --version` prints it, and tests hold the pins in ci/*.yml and README "Install" to it.
__version__ = "0.1.0"

# httpx's __init__ imports its command-line client (click, rich.progress, pygments: ~30 ms of every
# start that talks to a registry) whenever click is installed, and buildctl never runs it. A None
# in sys.modules makes that import fail as it does without click, and httpx keeps its stand-in
# `main` (https://github.com/encode/httpx/pull/3547 moves the import out of __init__ upstream).
__import__("sys").modules.setdefault("httpx._main", None)

"""docker-py's ``.dockerignore`` rules (``docker.utils.build``) without the docker package's import.

``import docker.utils.build`` first runs ``docker/__init__.py``, which imports the whole API client
with requests and urllib3: ~0.05-0.1 s of a reused release that takes 0.5 s (issue #20), for two
files that need only the standard library and docker's constants. Those files are loaded here from
the installed package itself, under a private package name (``PRIVATE``), so the rules are exactly
the installed docker-py's and nothing else sees a half-initialised ``docker`` in ``sys.modules``.
If docker-py ever moves them, or the package was already imported, the plain import is used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from functools import cache
from types import ModuleType

PRIVATE = "_buildctl_dockerpy"  # docker/ as a package whose __init__ never runs


@cache
def build_module() -> ModuleType:
    """``docker.utils.build``: its ``exclude_paths`` and ``PatternMatcher``."""
    if "docker.utils.build" in sys.modules:
        return sys.modules["docker.utils.build"]
    try:
        return _without_package_init()
    except ImportError:
        import docker.utils.build as plain

        return plain


def _without_package_init() -> ModuleType:
    spec = importlib.util.find_spec("docker")  # found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("docker-py is not installed as a package")
    folder = list(spec.submodule_search_locations)[0]
    _hollow_package(PRIVATE, folder)
    _hollow_package(f"{PRIVATE}.utils", f"{folder}/utils")
    try:
        module = importlib.import_module(f"{PRIVATE}.utils.build")
    except ImportError:
        for name in [n for n in sys.modules if n == PRIVATE or n.startswith(f"{PRIVATE}.")]:
            del sys.modules[name]
        raise
    if not (hasattr(module, "exclude_paths") and hasattr(module, "PatternMatcher")):
        raise ImportError("docker.utils.build has no exclude_paths/PatternMatcher")
    return module


def _hollow_package(name: str, folder: str) -> None:
    """A package ``name`` whose submodules are found in ``folder``, its own ``__init__`` not run."""
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [folder]
    sys.modules[name] = importlib.util.module_from_spec(spec)

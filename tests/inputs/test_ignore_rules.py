"""docker-py's .dockerignore rules loaded without the docker package (inputs/ignore_rules.py): the
same answers as ``docker.utils.build`` itself, and the API client (requests, urllib3) not imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PATTERNS = ["**/__pycache__", "**/*.py[cod]", "docs", "!docs/keep.md", "build/*", "*.log", "!important.log", "a?c"]


def _tree(root: Path) -> Path:
    for name in ("app.py", "app.pyc", "x.log", "important.log", "abc", "abbc", "docs/readme.md",
                 "docs/keep.md", "build/out/bin", "src/__pycache__/m.pyc", "src/m.py", "Dockerfile"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    os.symlink("src", root / "linked")
    return root


def _in_fresh_interpreter(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    return json.loads(out.stdout)


def test_the_rules_answer_as_docker_py_and_the_api_client_is_not_imported(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    ours = _in_fresh_interpreter(
        "import json, sys\n"
        "from buildctl.inputs.ignore_rules import build_module\n"
        "m = build_module()\n"
        f"paths = sorted(m.exclude_paths({str(root)!r}, {PATTERNS!r}, dockerfile='Dockerfile'))\n"
        "loaded = sorted(n for n in ('docker', 'docker.api', 'requests', 'urllib3') if n in sys.modules)\n"
        "print(json.dumps({'paths': paths, 'loaded': loaded, 'file': m.__file__}))\n")
    plain = _in_fresh_interpreter(
        "import json\n"
        "import docker.utils.build as m\n"
        f"print(json.dumps({{'paths': sorted(m.exclude_paths({str(root)!r}, {PATTERNS!r}, dockerfile='Dockerfile')),"
        " 'file': m.__file__}))\n")
    assert ours["loaded"] == []
    assert ours["file"] == plain["file"]  # the installed docker-py's own file, not a copy
    assert ours["paths"] == plain["paths"]
    assert "app.pyc" not in ours["paths"] and "docs/keep.md" in ours["paths"] and "important.log" in ours["paths"]


def test_an_already_imported_docker_package_is_used_as_it_is() -> None:
    answer = _in_fresh_interpreter(
        "import json, sys\n"
        "import docker.utils.build\n"
        "from buildctl.inputs.ignore_rules import build_module\n"
        "print(json.dumps({'same': build_module() is docker.utils.build,"
        " 'private': any(n.startswith('_buildctl_dockerpy') for n in sys.modules)}))\n")
    assert answer == {"same": True, "private": False}

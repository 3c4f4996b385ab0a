"""The house rules of the package (README "Development"), checked on its source: imports only go
down the floors, there are no import cycles, one module imports python-on-whales, one runs git,
and no module is much longer than 300 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "buildctl"
# Higher floors may import lower ones, never the reverse; one floor's packages may use each other.
FLOOR = {"cli": 5, "cli_options": 5, "cli_examples": 5, "cli_completion": 5, "error_handler": 5, "__main__": 5,
         "commands": 4, "output": 4, "pipeline": 3, "inputs": 2,
         "engine": 2, "registry": 2, "inspect": 2, "gitops": 2, "config": 2, "signing": 2}
GROUND = 1  # model, errors, platforms, references, redaction, interrupts, jsonsafe, workdir, __init__


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def floor(module: str) -> int:
    return FLOOR.get(module.split(".")[1], GROUND) if "." in module else GROUND


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The buildctl modules ``path`` imports (``from buildctl.x import y`` counts y if it is a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "buildctl":
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "buildctl")
    return {m for m in out if m in known and m != "buildctl"}


def third_party(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
    return names


KNOWN = modules()
GRAPH = {name: imports(path, KNOWN) for name, path in KNOWN.items()}


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_imports_only_go_down(module: str) -> None:
    upward = sorted(dep for dep in GRAPH[module] if floor(dep) > floor(module))
    assert not upward, f"{module} (floor {floor(module)}) imports {upward} from above it"


def test_no_import_cycles() -> None:
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        for dep in GRAPH[node]:
            assert dep not in stack, "import cycle: " + " -> ".join([*stack[stack.index(dep):], dep])
            if dep not in done:
                visit(dep, [*stack, dep])
        done.add(node)

    for name in GRAPH:
        visit(name, [name])


def test_one_module_per_outside_tool() -> None:
    pow_users = sorted(m for m, p in KNOWN.items() if "python_on_whales" in third_party(p))
    assert pow_users == ["buildctl.engine.docker"]
    # Each program has one wrapper: git runs only in gitops/git.py (its environment, token, redaction).
    git_runners = sorted(m for m, p in KNOWN.items() if re.search(r'run_program\(\s*\[\s*"git"|argv = \["git"', p.read_text()))
    assert git_runners == ["buildctl.gitops.git"]
    # One subprocess path (timeouts, process groups, errors): programs.py; python-on-whales runs docker.
    subprocess_users = sorted(m for m, p in KNOWN.items() if "subprocess" in third_party(p))
    assert subprocess_users == ["buildctl.programs"]
    # JSON is parsed through jsonsafe (depth and digits bounded: json.loads raises RecursionError on
    # a deep document, a crash rather than an answer); only buildctl's own documents are exempt.
    own_json = {"buildctl.config.schema", "buildctl.output.agents"}  # the packaged schema, our own output
    json_users = sorted(m for m, p in KNOWN.items() if re.search(r"\bjson\.loads?\(", p.read_text()))
    assert sorted(set(json_users) - own_json) == ["buildctl.jsonsafe"]


@pytest.mark.parametrize("module", sorted(KNOWN))
def test_modules_stay_small(module: str) -> None:
    assert len(KNOWN[module].read_text().splitlines()) <= 310, f"{module} has grown past ~300 lines: split it"

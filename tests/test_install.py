"""The wheel, installed as a user installs it: built from this checkout, installed into a fresh
venv outside it by the templates' own install step, then run from a scratch project that holds
only the sample services (issue #18: "installs anywhere").

Offline after the first run: the build requirements and dependencies are downloaded once into a
wheelhouse keyed by what pyproject.toml asks for; the build and the install then use
`--no-index --find-links`, so every dependency comes from the wheel's own metadata, never from
this checkout's .venv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import buildctl
from tests.helpers.ci_templates import GITHUB, install_step, load, script_of
from tests.helpers.cli import PROJECT

pytestmark = pytest.mark.slow
SAMPLE = ("services.yaml", "vote", "result", "worker")
PIP_TIMEOUT = 600


def _pip(*args: str, python: Path | str = sys.executable, env: dict[str, str] | None = None) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                          text=True, timeout=PIP_TIMEOUT, env=env)
    assert proc.returncode == 0, f"pip {' '.join(args)}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"


def _requirements() -> list[str]:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    return [*project["build-system"]["requires"], *project["project"]["dependencies"], "pip"]


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """What the wheel needs to build and run, downloaded once (the first run needs PyPI)."""
    requirements = _requirements()
    key = hashlib.sha256("\n".join([sys.version, sysconfig.get_platform(), *requirements]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "buildctl-tests" / "wheelhouse"
    house = cache / key
    if not house.is_dir():
        partial = cache / f"{key}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        _pip("download", "--quiet", "--dest", str(partial), *requirements)
        try:
            partial.rename(house)  # whole or not at all; a concurrent run may have won
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
    return house


def _offline(wheelhouse: Path, *more: Path) -> dict[str, str]:
    """pip reads these from the environment: no index, only our folders (the machine's own
    pip configuration, e.g. extra indexes, cannot add anything)."""
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": " ".join(str(p) for p in (*more, wheelhouse)),
            "PIP_CONFIG_FILE": os.devnull}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    # From a copy of what the build reads: setuptools builds in the source tree, and its build/
    # keeps files of modules since deleted, which a wheel built there would ship.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    shutil.copytree(PROJECT / "buildctl", source / "buildctl", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    # Build isolation on: the build-system requirements of pyproject.toml are all it gets.
    _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(dist), str(source), env={**os.environ, **_offline(wheelhouse)})
    (built,) = dist.glob("buildctl-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path, wheel: Path) -> Path:
    """A fresh venv, outside the checkout, with buildctl installed by the GitHub template's own
    "Install buildctl" step (the Azure templates run the same script: test_ci_templates)."""
    venv = tmp_path_factory.mktemp("venv") / "buildctl"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    # The venv gets pip from the wheelhouse (ensurepip is slow), through this pip: `pip --python`.
    _pip("--python", str(venv / "bin" / "python"), "install", "--quiet", "pip", env={**os.environ, **_offline(wheelhouse)})
    proc = subprocess.run(["bash", "-c", script_of(install_step(load(GITHUB)))], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT, env={**_user_env(venv), **_offline(wheelhouse, wheel.parent),
                                                    "BUILDCTL_VERSION": buildctl.__version__})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"buildctl {buildctl.__version__}"
    return venv


def _user_env(venv: Path) -> dict[str, str]:
    """A user's shell with the venv first on PATH: nothing that points into this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "BUILDCTL_"))}
    path = [str(venv / "bin"), *(p for p in env["PATH"].split(os.pathsep) if not Path(p).is_relative_to(PROJECT))]
    return {**env, "PATH": os.pathsep.join(path), "COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with only the sample services: no scripts/, no k8s-specifications/, no buildctl/."""
    root = tmp_path_factory.mktemp("scratch")
    for name in SAMPLE:
        (shutil.copytree if (PROJECT / name).is_dir() else shutil.copy2)(PROJECT / name, root / name)
    return root


def _buildctl(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "buildctl"), *args], cwd=cwd, env=_user_env(venv),
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_holds_the_package_and_its_data(wheel: Path) -> None:
    assert wheel.name == f"buildctl-{buildctl.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "buildctl/config/services.schema.json" in names
    # Every file the package ships beside its code (data read at run time) is in the wheel.
    data = {p.relative_to(PROJECT).as_posix() for p in (PROJECT / "buildctl").rglob("*")
            if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts}
    assert data <= set(names), data - set(names)
    assert {n.split("/", 1)[0] for n in names} == {"buildctl", f"buildctl-{buildctl.__version__}.dist-info"}
    metadata = zipfile.ZipFile(wheel).read(f"buildctl-{buildctl.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {buildctl.__version__}\n" in metadata


def test_installed_buildctl_runs_from_the_venv(installed: Path, scratch: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import buildctl; print(buildctl.__file__)"],
                           cwd=scratch, env=_user_env(installed), capture_output=True, text=True, timeout=60)
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout + where.stderr
    result = _buildctl(installed, scratch, "--help")
    assert result.returncode == 0, result.stderr
    verbs = set(re.findall(r"^  ([a-z][\w-]*)\s", result.stdout.split("Commands:", 1)[-1], re.MULTILINE))
    assert {"plan", "doctor", "build", "run", "verify", "update-manifests", "schema", "completion"} <= verbs, result.stdout
    version = _buildctl(installed, scratch, "--version")
    assert (version.returncode, version.stdout) == (0, f"buildctl {buildctl.__version__}\n")
    # The unambiguous form README "CLI" gives for CI, where BuildKit's buildctl may come first on PATH.
    module = subprocess.run([str(installed / "bin" / "python"), "-m", "buildctl", "--version"], cwd=scratch,
                            env=_user_env(installed), capture_output=True, text=True, timeout=60)
    assert (module.returncode, module.stdout) == (0, f"buildctl {buildctl.__version__}\n"), module.stderr


def test_installed_schema_is_the_packaged_one(installed: Path, scratch: Path) -> None:
    result = _buildctl(installed, scratch, "schema")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((PROJECT / "buildctl/config/services.schema.json").read_text())


def test_installed_plan_of_the_sample(installed: Path, scratch: Path) -> None:
    result = _buildctl(installed, scratch, "plan", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    services = {s["name"]: s for s in plan["services"]}
    assert sorted(services) == ["result", "vote", "worker"]
    assert all(Path(s["context"]).is_relative_to(scratch) for s in services.values()), services
    assert services["vote"]["release_ref"] == "127.0.0.1:5000/voting-app/vote:dev"
    # What the embedded default needs from a checkout (the GitOps repository quickstart.sh seeds)
    # is missing here: one clear message and exit 2, not a traceback.
    diff = _buildctl(installed, scratch, "plan", "--diff")
    assert diff.returncode == 2, diff.stdout + diff.stderr
    first = diff.stderr.splitlines()[0]
    assert first.startswith("buildctl: error: gitops.repo: ") and f"{scratch}/.buildctl/gitops.git" in first, diff.stderr
    assert "Traceback" not in diff.stdout + diff.stderr


def test_installed_completion(installed: Path, scratch: Path) -> None:
    script = _buildctl(installed, scratch, "completion", "bash")
    assert script.returncode == 0 and "_BUILDCTL_COMPLETE=complete_bash" in script.stdout, script.stdout + script.stderr
    # What the script asks buildctl when the user presses Tab after `buildctl pl`.
    answer = subprocess.run([str(installed / "bin" / "buildctl")], cwd=scratch, capture_output=True, text=True,
                            timeout=60, env={**_user_env(installed), "_BUILDCTL_COMPLETE": "complete_bash",
                                             "COMP_WORDS": "buildctl pl", "COMP_CWORD": "1"})
    assert answer.returncode == 0 and "plan" in answer.stdout.split(), answer.stdout + answer.stderr
    assert "run" not in answer.stdout.split()


def test_readme_install_pins_this_release() -> None:
    text = (PROJECT / "README.md").read_text()
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    pins = re.findall(r"buildctl==([\w.]+)|buildctl-([\w.]+)-py3-none-any\.whl|buildctl\.git@v([\w.]+)|buildctl ([\d.]+)$",
                      section, re.MULTILINE)
    assert {v for match in pins for v in match if v} == {buildctl.__version__}, pins
    assert len(pins) >= 5  # pipx, pip, --version, the wheel, the git tag

"""Text from outside reaches a CI log as data only (issue #24): the real CLI in a subprocess under
Azure Pipelines (TF_BUILD=True) and GitHub Actions (GITHUB_ACTIONS=true), fed payloads through
every source named there — a GitOps manifest's comments in a diff, an image's ENTRYPOINT, a
registry's error message, refusals that echo a tag, service name, manifest path or record field.

Each run: no line either agent would act on carries a payload (tests/output/agents.py models the
agents), the payload is still shown (escaped, not dropped), and JSON decodes to the raw data.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers.cli import REGISTRY, CliResult, run_cli
from tests.helpers.gitops import make_remote
from tests.output import agents
from tests.output.crafted_image import push_image

CI = pytest.mark.parametrize("ci", sorted(agents.ENVIRONMENTS))
NOTE = "\n".join(f"              {p}" for p in (agents.GITHUB, agents.GITHUB_ENV, agents.AZURE_FORMAT))
MANIFEST = f"""\
# {agents.AZURE}
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api}}
spec:
  template:
    spec:
      containers:
        - name: api
          args:
            - |
{NOTE}
          image: 127.0.0.1:5000/scratch/api:41  # {agents.AZURE} {agents.AZURE_FORMAT}
"""
RELEASE = {"name": "api", "repository": "127.0.0.1:5000/scratch/api", "tag": "42",
           "index_digest": "sha256:" + "a" * 64, "verified": True, "tagged": True}


def services_yaml(*, service: str = "api", manifest: str = "deploy/api.yaml", tag: str = "42") -> str:
    return (f"registry: 127.0.0.1:5000\ntag: {json.dumps(tag)}\ngitops: {{repo: gitops.git, branch: main}}\n"
            f"services:\n  {json.dumps(service)}:\n    context: api\n    image: scratch/api\n"
            f"    build_args: {{NOTE: {json.dumps(agents.AZURE)}}}\n"
            f"    manifests: [{{path: {json.dumps(manifest)}, containers: [api]}}]\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    remote = make_remote(tmp_path / "remote", {"deploy/api.yaml": MANIFEST})
    (tmp_path / "gitops.git").symlink_to(remote)
    (tmp_path / "services.yaml").write_text(services_yaml())
    (tmp_path / "release.json").write_text(json.dumps({"services": [RELEASE]}))
    return tmp_path


def assert_inert(result: CliResult, *, shown: int = 1) -> None:
    """No payload is a live command on stdout or stderr, and at least ``shown`` payloads are visible."""
    for stream in (result.stdout, result.stderr):
        assert agents.injected(stream) == [], stream
    assert result.output.lower().count("pwned") >= shown, result.output


def ci_run(ci: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> CliResult:
    return run_cli(*args, cwd=cwd, env={**agents.ENVIRONMENTS[ci], **(env or {})}, timeout=120)


@CI
@pytest.mark.parametrize("args", [("plan", "--diff"), ("run", "--dry-run"),
                                  ("update-manifests", "--dry-run", "--record", "release.json")],
                         ids=["plan-diff", "run-dry-run", "update-manifests-dry-run"])
def test_a_manifest_diff_is_data(project: Path, ci: str, args: tuple[str, ...]) -> None:
    human = ci_run(ci, *args, cwd=project)
    assert human.code == 0, human.output
    assert_inert(human, shown=3)  # the changed line and its context: the comment, ::set-output, ::add-mask
    as_json = ci_run(ci, *args, "--json", cwd=project)
    assert as_json.code == 0, as_json.output
    assert_inert(as_json, shown=3)
    document = json.loads(as_json.stdout)
    diff = (document.get("gitops_dry_run") or document)["diff"]
    for payload in agents.ALL:
        assert payload in diff  # decodes to exactly the repository's text


REFUSALS = [
    (("plan", "--tag", agents.AZURE), {}, "--tag: invalid tag"),
    (("plan", agents.AZURE), {}, "unknown service"),
    (("plan",), {"services.yaml": services_yaml(service=agents.AZURE)}, "services"),
    (("plan", "--diff"), {"services.yaml": services_yaml(manifest=f"deploy/{agents.AZURE}.yaml")}, "deploy/"),
    (("update-manifests", "--dry-run", "--record", "bad.json"),
     {"bad.json": json.dumps({"services": [{**RELEASE, "name": agents.AZURE, "verified": False}]})}, "not verified"),
    (("update-manifests", "--dry-run", "--record", "bad.json"),
     {"bad.json": json.dumps({"services": [{**RELEASE, "tag": agents.AZURE}]})}, "invalid tag"),
    ((agents.AZURE,), {}, "No such command"),
]
REFUSAL_IDS = ["tag", "service-argument", "service-name", "manifest-path", "record-name", "record-tag", "click-usage"]


# Each refusal under one CI, taking turns: the writer is the same for both (test_ci_stream), the
# sources are what differ.
@pytest.mark.parametrize(("ci", "args", "files", "echoed"),
                         [(sorted(agents.ENVIRONMENTS)[i % 2], *case) for i, case in enumerate(REFUSALS)],
                         ids=REFUSAL_IDS)
def test_a_refusal_echoes_data(project: Path, ci: str, args: tuple[str, ...], files: dict[str, str],
                               echoed: str) -> None:
    for name, text in files.items():
        (project / name).write_text(text)
    result = ci_run(ci, *args, cwd=project)
    assert result.code == 2, result.output
    assert echoed in result.stderr
    assert_inert(result)


class _Denying(BaseHTTPRequestHandler):
    """A registry whose every answer but /v2/ is HTTP 400 with the payloads as its error message."""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status, body = (200, b"{}") if self.path.rstrip("/") == "/v2" else \
            (400, json.dumps({"errors": [{"code": "DENIED", "message": "\n".join(agents.ALL)}]}).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET


@pytest.fixture
def denying_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Denying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@CI
@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["human", "json"])
def test_a_registry_error_message_is_data(tmp_path: Path, denying_registry: str, ci: str,
                                          json_flag: tuple[str, ...]) -> None:
    result = ci_run(ci, "--debug", "verify", *json_flag, f"{denying_registry}/x/y:1", cwd=tmp_path)
    assert result.code == 1, result.output
    assert "answered HTTP 400" in result.stderr
    assert_inert(result, shown=4)


@pytest.fixture(scope="module")
def crafted() -> str:
    return push_image(REGISTRY, "buildctl-test-output/entrypoint", "1",
                      entrypoint=[f"/opt/{agents.AZURE}", agents.GITHUB])


@pytest.mark.engine
@CI
@pytest.mark.parametrize("json_flag", [(), ("--json",)], ids=["human", "json"])
def test_an_entrypoint_is_data(tmp_path: Path, crafted: str, ci: str, json_flag: tuple[str, ...]) -> None:
    result = ci_run(ci, "verify", *json_flag, crafted, cwd=tmp_path)
    assert result.code == 1, result.output  # /opt does not exist: a failed check, reported in full
    assert_inert(result, shown=2)
    if json_flag:
        details = [c["detail"] for v in json.loads(result.stdout) for c in v["checks"] if c["name"] == "elf"]
        assert details and all(f'"/opt/{agents.AZURE}"' in d for d in details)


@pytest.mark.engine
def test_an_entrypoint_that_looks_like_markup_is_reported_whole(tmp_path: Path) -> None:
    """Issue #24: ``/opt/x[/bold]y`` made verify exit 3 (MarkupError) half-way through its report."""
    ref = push_image(REGISTRY, "buildctl-test-output/markup", "1", entrypoint=["/opt/x[/bold]y", "[red]:warning:"])
    result = run_cli("verify", ref, cwd=tmp_path, timeout=120)
    assert result.code == 1, result.output  # a failed check, not a bug
    failed = [line for line in result.stdout.splitlines() if " elf " in line]
    assert len(failed) == 2 and all(line.endswith('cannot start "/opt/x[/bold]y": /opt does not exist '
                                                  "(resolving /opt/x[/bold]y)") for line in failed), result.stdout
    assert result.stdout.splitlines()[-1].lstrip().startswith("pass linux/arm64")  # the report ran to its end


REJECTING_HOOK = ("#!/bin/sh\nprintf '\\033]0;pwned-title\\007\\033[2K\\033[1Alooks fine\\n' >&2\n"
                  f"printf '%s\\n' '{agents.AZURE}' '{agents.GITHUB}' >&2\nexit 1\n")


@pytest.mark.parametrize("ci", [None, *sorted(agents.ENVIRONMENTS)])
def test_a_git_remotes_rejection_is_data(project: Path, ci: str | None) -> None:
    """A pre-receive hook's message (relayed by git as ``remote: …``) is quoted in the push error:
    its ESC and BEL reached the terminal raw (a window title set, the line above erased)."""
    hook = (project / "gitops.git").resolve() / "hooks" / "pre-receive"
    hook.write_text(REJECTING_HOOK)
    hook.chmod(0o755)
    env = agents.ENVIRONMENTS[ci] if ci else {}
    result = run_cli("update-manifests", "--record", "release.json", cwd=project, env=env, timeout=120)
    assert result.code == 1, result.output
    assert "remote: \\x1b]0;pwned-title\\x07\\x1b[2K\\x1b[1Alooks fine" in result.stderr, result.stderr
    assert not [c for c in result.output if c in "\x1b\x07"]
    if ci:
        assert_inert(result, shown=2)

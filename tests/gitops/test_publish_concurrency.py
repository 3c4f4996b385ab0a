"""Concurrent releases through an HTTP(S) GitOps remote (smart HTTP with the token, as Azure Repos
and GitHub serve it), different services editing the same file (issue #23): every push that loses
the race rebases onto the winner's commit and re-applies only its own edit, so no edit is lost and
each service's container changes exactly once."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from buildctl.gitops.publish import publish
from buildctl.model import GitOpsConfig, GitOpsFile, ReleasedImage
from tests.helpers.gitops import REG, deployment, git, log, make_remote, serve_http, show

TOKEN = "concurrency-token-0123456789"
NAMES = [f"svc{i}" for i in range(6)]
SHARED = "apps/all.yaml"  # one file, a Deployment per service (a common layout: one file per app)


def test_concurrent_releases_over_http_editing_one_file_all_land_once(tmp_path: Path) -> None:
    documents = "---\n".join(deployment(name) for name in NAMES)
    bare = make_remote(tmp_path, {SHARED: documents})
    with serve_http(bare.parent, TOKEN) as (base, app):
        cfg = dataclasses.replace(GitOpsConfig(repo=f"{base}/{bare.name}"), push_retries=10)

        def one(name: str):
            release = ReleasedImage(name, f"{REG}/{name}", "42", "sha256:" + "ef" * 32)
            return publish(cfg, releases=[release], targets={name: (GitOpsFile(SHARED, (name,)),)},
                           dry_run=False, token=TOKEN)

        with ThreadPoolExecutor(max_workers=len(NAMES)) as pool:
            results = list(pool.map(one, NAMES))
    assert all(r.pushed for r in results)
    assert len(log(bare)) == len(NAMES) + 1  # the seed and exactly one commit per release
    # Every service's own container moved to 42, once; no other line changed (the toolbox sidecars
    # stay at 41): the final file is the seed with exactly those edits.
    expected = "---\n".join(deployment(name).replace(f"{REG}/{name}:41", f"{REG}/{name}:42") for name in NAMES)
    assert show(bare, "main", SHARED).decode() == expected
    assert {r.commit for r in results} == set(git("rev-list", "main", cwd=bare).split()[:-1])
    # The race really happened over HTTP: some pushes were rejected and retried, all authenticated.
    print("attempts", sorted(r.attempts for r in results))
    assert max(r.attempts for r in results) > 1, [r.attempts for r in results]
    pushes = [(ok, path) for method, path, ok in app.requests if method == "POST" and "git-receive-pack" in path]
    assert len(pushes) >= len(NAMES) and all(ok for ok, _ in pushes)

"""One service's release tag cannot be written, for good, while the others' can (issue #23): a
repository that refuses the tag's PUT after its staging push worked — a quota, a lock, a policy.

What a user gets: exit 1 with one error line (the failed write) and a hint that lists exactly the
release tags that exist now; the record says the same per service; no GitOps commit; the tags this
run created are removed where the registry deletes tags alone (Distribution 2.x, this stack's
registry, cannot: never by deleting a manifest another tag needs) and no service counts as
released; the rerun after the fault clears completes the release with one commit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.gitops import git
from tests.helpers.reliability import gitops_remote, record, resolve, scratch_service, tip, unique_tag, write_services

pytestmark = pytest.mark.engine

SERVICES = {"alpha": "buildctl-tagfail/alpha", "beta": "buildctl-tagfail/beta"}


def test_a_tag_refused_for_good_leaves_a_clear_state_and_the_rerun_completes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for name in SERVICES:
        scratch_service(project, name, nonce=unique_tag("n"))
    tag = unique_tag("tagfail")
    with FaultProxy() as proxy:
        remote = gitops_remote(tmp_path / "git", {n: f"{proxy.address}/{i}" for n, i in SERVICES.items()})
        write_services(project, SERVICES, gitops_repo=str(remote))
        before = tip(remote)
        # beta's repository refuses its release tag, every time (403: not a fault worth retrying)
        refusal = proxy.fail(403, times=1000, method="PUT", path=rf"/buildctl-tagfail/beta/manifests/{tag}$")
        first = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", tag, "--record", "rec.json", cwd=project)
        assert first.code == 1, first.output
        errors = [line for line in first.stderr.splitlines() if line.startswith("buildctl: error: ")]
        assert len(errors) == 1 and errors[0].startswith(
            f"buildctl: error: cannot tag {proxy.address}/buildctl-tagfail/beta:{tag}: "), first.stderr
        alpha_ref = f"{proxy.address}/buildctl-tagfail/alpha:{tag}"
        # Distribution 2.x keeps alpha's new tag (it deletes by digest only): the hint says it exists
        assert (f"release tags that exist now: {alpha_ref} ({alpha_ref}: this run's verified index, left because "
                "the registry cannot delete a tag alone") in first.stderr
        assert resolve(proxy.address, SERVICES["beta"], tag) is None
        rec = record(project / "rec.json")
        by_name = {s["name"]: s for s in rec["services"]}
        assert rec["gate"] == "passed" and rec["gitops"] is None and rec["tag_failure"]
        assert by_name["beta"]["tag_error"].startswith(f"cannot tag {proxy.address}/buildctl-tagfail/beta:{tag}")
        assert by_name["beta"]["tag_left"] == "untouched" and not by_name["beta"]["tagged"]
        assert by_name["alpha"]["tag_error"] is None and not by_name["alpha"]["tagged"]  # not released
        assert by_name["alpha"]["tag_left"] == "still exists: the registry cannot delete a tag alone"
        assert resolve(proxy.address, SERVICES["alpha"], tag) == by_name["alpha"]["index_digest"]
        assert tip(remote) == before  # no GitOps commit
        # update-manifests refuses the record: nothing in it was released
        refused = run_cli("update-manifests", "--record", "rec.json", cwd=project)
        assert refused.code != 0 and tip(remote) == before, refused.output

        refusal.times = 0  # the quota was raised
        rerun = run_cli("run", "--rebuild", "--registry", proxy.address, "--tag", tag, "--record", "rerun.json", cwd=project)
        assert rerun.code == 0, rerun.output
        again = {s["name"]: s for s in record(project / "rerun.json")["services"]}
        assert again["alpha"]["release"] == "already released, identical"  # the kept tag, not moved
        assert again["alpha"]["index_digest"] == by_name["alpha"]["index_digest"]
        assert all(resolve(proxy.address, image, tag) == again[name]["index_digest"]
                   for name, image in SERVICES.items())
        assert len(git("rev-list", f"{before}..main", cwd=remote).split()) == 1

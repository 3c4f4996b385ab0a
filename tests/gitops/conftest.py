"""Fixtures the GitOps tests share."""

from __future__ import annotations

import pytest

from buildctl.gitops import yaml_nodes


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request, monkeypatch):
    """Run the test with each of yaml_nodes' YAML loaders (they must agree on marks and errors)."""
    if request.param == "pure-python":
        monkeypatch.setattr(yaml_nodes, "_FAST_LOADER", None)
    return request.param

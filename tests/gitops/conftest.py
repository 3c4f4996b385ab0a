"""Fixtures the GitOps tests share."""

from __future__ import annotations

import pytest

from buildctl.gitops import image_fields


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request, monkeypatch):
    """Run the test with each of image_fields' YAML loaders (they must agree on marks and errors)."""
    if request.param == "pure-python":
        monkeypatch.setattr(image_fields, "_FAST_LOADER", None)
    return request.param

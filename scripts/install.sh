#!/usr/bin/env bash
# Create .venv and install buildctl with its test extra (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# compat: the checkout on sys.path through a plain .pth line, as an installed wheel costs; the
# default editable finder is a module every start imports (~10 ms of a 0.4 s release, issue #20).
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
# An editable install leaves buildctl as sources, and with PYTHONDONTWRITEBYTECODE (set on CI
# agents, and here) every start compiled each module again (~0.15 s of a 0.5 s release, issue #20).
.venv/bin/python -m compileall -q buildctl >/dev/null
echo "installed: $(.venv/bin/buildctl --version 2>/dev/null || echo buildctl)"

#!/usr/bin/env bash
# Create .venv and install buildctl with its test extra (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
# An editable install leaves buildctl as sources, and with PYTHONDONTWRITEBYTECODE (set on CI
# agents, and here) every start compiled each module again (~0.15 s of a 0.5 s release, issue #20).
.venv/bin/python -m compileall -q buildctl >/dev/null
echo "installed: $(.venv/bin/buildctl --version 2>/dev/null || echo buildctl)"

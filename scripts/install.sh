#!/usr/bin/env bash
# Create .venv and install buildctl with its test extra (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "installed: $(.venv/bin/buildctl --version 2>/dev/null || echo buildctl)"

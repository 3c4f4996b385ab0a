#!/usr/bin/env bash
# Set up the real stack and run the whole test suite against it (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/stack.sh up --buildkit  # the tests run every builder kind (README: Builders)
bash scripts/stack.sh test-packages  # redis-server and PostgreSQL for the sample apps' tests
bash scripts/install.sh >/dev/null
exec .venv/bin/pytest "$@"

#!/usr/bin/env bash
# Runs the whole test suite: unit tests, store tests on SQLite and PostgreSQL,
# and end-to-end tests against a real Rasa server and action server.
# PostgreSQL and Redis need not run: the tests start throw-away ones when they do not answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh
bash scripts/install-mail-servers.sh
bash scripts/install-test-services.sh
exec .venv/bin/python -m pytest "$@"

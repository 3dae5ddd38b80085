#!/usr/bin/env bash
# Debian packages the tests drive for real: Chromium (tests/web drive /usr/bin/chromium with Playwright;
# Playwright's own browser download cannot work here: never run `playwright install`), ffmpeg (test feeds,
# stream copy checks) and GStreamer's RTSP server on Debian's python3-gi (scripts/rtsp_camera.py: a real
# RTSP camera for the live-video tests).
set -euo pipefail

PACKAGES=(chromium ffmpeg python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0
          gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
          gstreamer1.0-plugins-ugly gstreamer1.0-libav)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "Debian packages present (chromium, ffmpeg, GStreamer RTSP server)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "==> installing Debian packages: ${missing[*]}"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" | { grep -E "^(Setting up|E:)" || true; }
echo "installed: $(chromium --version), $(ffmpeg -version | head -1)"

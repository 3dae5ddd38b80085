#!/usr/bin/env bash
# Stop the demo's `corb serve` (started by scripts/demo.sh): SIGTERM, then wait for running work. Its live
# camera (scripts/demo-camera.sh) is stopped first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/demo-camera.sh --stop || true  # the demo's live RTSP camera, if scripts/demo-camera.sh started it
PID_FILE="${CORB_DATA_DIR:-$PWD/var}/serve.pid"
if [ ! -f "$PID_FILE" ] || ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  echo "corb serve is not running."
  rm -f "$PID_FILE"
  exit 0
fi
PID=$(cat "$PID_FILE")
kill -TERM "$PID"
for _ in $(seq 60); do
  kill -0 "$PID" 2>/dev/null || { rm -f "$PID_FILE"; echo "corb serve stopped."; exit 0; }
  sleep 0.5
done
echo "corb serve (pid $PID) is still finishing work after 30 s; it will stop when done."

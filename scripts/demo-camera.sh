#!/usr/bin/env bash
# The demo's live lobby camera: a real RTSP server on 127.0.0.1 playing the shipped clip with empty
# stretches between, over and over (a camera whose stream restarts, as after a reboot).
#   URL=$(scripts/demo-camera.sh)      start it (or reuse the running one); prints only its RTSP URL
#   scripts/demo-camera.sh --stop      stop it (scripts/demo-stop.sh does)
# The feed is made once with scripts/camera_feed.py (720p, 15 fps, a keyframe every 2 s, no B-frames, as
# IP cameras send it) and kept under $CORB_DATA_DIR/demo-camera/ with the server's pid and log. Needs
# Debian's ffmpeg and GStreamer's RTSP server for /usr/bin/python3 (see scripts/rtsp_camera.py).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${CORB_DATA_DIR:-$PWD/var}/demo-camera"
PID_FILE="$DIR/camera.pid"
LOG_FILE="$DIR/camera.log"
FEED="$DIR/lobby-feed.mkv"
SCENES=${CORB_DEMO_SCENES:-"empty:30 people:15"}
REPEAT=${CORB_DEMO_REPEAT:-4}

running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

if [ "${1:-}" = "--stop" ]; then
  if running; then
    kill -TERM "$(cat "$PID_FILE")"
    for _ in $(seq 20); do running || break; sleep 0.25; done
    echo "demo camera stopped." >&2
  fi
  rm -f "$PID_FILE"
  exit 0
fi

if running; then
  echo "==> the demo camera is already running (pid $(cat "$PID_FILE"))" >&2
  sed -n 's/^serving \(rtsp:[^ ]*\)$/\1/p' "$LOG_FILE" | head -1
  exit 0
fi

command -v ffmpeg >/dev/null || { echo "the demo camera needs ffmpeg (apt-get install ffmpeg)" >&2; exit 3; }
if ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null; then
  echo "the demo camera needs GStreamer's RTSP server for /usr/bin/python3: apt-get install python3-gi" \
       "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good" \
       "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav" >&2
  exit 3
fi

mkdir -p "$DIR"
if [ ! -f "$FEED" ] || [ ! -f "${FEED%.mkv}.json" ]; then
  echo "==> making the demo camera's feed once ($SCENES, x$REPEAT)" >&2
  PY=python3; [ -x .venv/bin/python ] && PY=.venv/bin/python
  "$PY" scripts/camera_feed.py "$FEED" --scenes "$SCENES" --repeat "$REPEAT" >&2
fi

echo "==> starting the demo camera (log: $LOG_FILE)" >&2
nohup /usr/bin/python3 scripts/rtsp_camera.py "$FEED" --path /lobby >"$LOG_FILE" 2>&1 &
echo $! >"$PID_FILE"
for _ in $(seq 60); do
  URL=$(sed -n 's/^serving \(rtsp:[^ ]*\)$/\1/p' "$LOG_FILE" | head -1)
  [ -n "$URL" ] && { echo "$URL"; exit 0; }
  running || break
  sleep 0.25
done
cat "$LOG_FILE" >&2
echo "the demo camera did not start" >&2
rm -f "$PID_FILE"
exit 1

#!/usr/bin/env bash
# Corb end to end on this machine, no accounts: the README's first command.
#   scripts/demo.sh        (or: make demo)      stop it with scripts/demo-stop.sh (or: make stop)
#   CORB_PORT=8010 scripts/demo.sh              another port, when 8000 is taken
# Needs only Python 3.11+. Creates .venv, installs Corb, migrates the SQLite database under var/, adds
# demo people, cameras and an admin account, starts `corb serve` in the background (log appended to
# var/serve.log, its address in var/serve.json), starts a live RTSP lobby camera on 127.0.0.1 (the shipped
# clip with empty stretches between, scripts/demo-camera.sh) that corb serve's camera agent records, waits
# until the camera has seen people and Max's alert is queued, and prints what to try (scripts/demo-try.txt,
# which the README quotes). Where the live camera cannot run (no ffmpeg/GStreamer and not root to install
# them), it uploads the clip as the lobby camera would instead.
# Safe to run again: everything is an upsert, and a server already running is reused.
# Each step is one function; main() lists them in order, so a step is added with one line there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/pip-install.sh

PY=${PYTHON:-python3}
export CORB_DATA_DIR=${CORB_DATA_DIR:-$PWD/var}
export CORB_PORT=${CORB_PORT:-8000}
PID_FILE="$CORB_DATA_DIR/serve.pid"
LOG_FILE="$CORB_DATA_DIR/serve.log"
ADMIN=+15550000001 MEMBER=+15550000002 CLEANER=+15550000003
ADMIN_LOGIN=ada
CLIP=tests/data/vtest-clip.mkv
SIGN_IN=""

install() {
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
  fi
  . .venv/bin/activate
  echo "==> installing Corb (requirements.txt; the first time takes a few minutes)"
  pip_install -r requirements.txt -e .
}

database() {
  echo "==> database"
  corb db upgrade
}

people_and_cameras() {
  echo "==> demo people, cameras and admin account"
  corb users add "$ADMIN" --name "Ada Admin" --role admin
  corb users add "$MEMBER" --name "Max Member" --role member
  corb users add "$CLEANER" --name "Cleo Cleaner" --role cleaner
  corb cameras add lobby --name Lobby --area lobby
  corb cameras add kitchen --name Kitchen --area kitchen
  if corb admin list | grep -q "^$ADMIN_LOGIN\b"; then
    SIGN_IN="  user $ADMIN_LOGIN, with the password the first demo run printed
  (forgotten? corb admin create $ADMIN_LOGIN --reset prints a new one)"
  else
    local password
    password=$(corb admin create "$ADMIN_LOGIN" | tail -1)
    SIGN_IN="  user $ADMIN_LOGIN, password $password   (shown only now: note it;
  corb admin create $ADMIN_LOGIN --reset prints a new one)"
  fi
}

live_camera() {
  LIVE_URL=""
  if ! command -v ffmpeg >/dev/null \
     || ! /usr/bin/python3 -c 'import gi; gi.require_version("GstRtspServer", "1.0")' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "==> installing ffmpeg and GStreamer's RTSP server (Debian packages) for the live camera"
      DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg python3-gi \
        gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
        gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav | { grep -E "^E:" || true; }
    fi
  fi
  echo "==> the live lobby camera (a real RTSP server on 127.0.0.1 playing the shipped clip)"
  if LIVE_URL=$(scripts/demo-camera.sh); then
    corb cameras add lobby --name Lobby --area lobby --stream "$LIVE_URL"
  else
    LIVE_URL=""
    echo "    no live camera here: the lobby camera's clip is uploaded instead"
  fi
}

wait_for_live_alert() {
  echo "==> waiting for the live lobby camera to see people and alert Max (its feed: 30 s empty, then people)"
  python - "$MEMBER" "$LOG_FILE" <<'PY'
import sys, time
from sqlalchemy import func, select
from bot.models import Camera, Detection, Message
from bot.services import services

member, log, deadline = sys.argv[1], sys.argv[2], time.monotonic() + 300
with services().sessions() as s:
    before = s.scalar(select(func.max(Message.id))) or 0
shown = set()
while time.monotonic() < deadline:
    with services().sessions() as s:
        rows = s.scalars(select(Detection).join(Camera, Detection.camera_id == Camera.id)
                         .where(Camera.slug == "lobby").order_by(Detection.id.desc()).limit(5)).all()
        alert = s.scalars(select(Message).where(Message.id > before, Message.to_number == member,
                                                Message.direction == "out", Message.media_key.is_not(None))
                          .order_by(Message.id).limit(1)).first()
    for d in reversed(rows):
        if d.id not in shown:
            shown.add(d.id)
            print(f"    segment {d.segment_key.rsplit('/', 1)[-1]}: peak {d.peak} people")
    if alert is not None:
        print(f"    Max's alert is queued: {alert.body}")
        break
    time.sleep(1)
else:
    sys.exit(f"no alert after 300 s: see {log} (corb cameras list shows the camera's state)")
PY
}

server_url() {  # the running server of this data directory, or nothing
  python -c 'from bot.server_info import find; from cloud.config import load_config; print(find(load_config()) or "")'
}

port_taken() {
  python - "$CORB_PORT" <<'PY'
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

start_server() {
  mkdir -p "$CORB_DATA_DIR"
  if [ -n "$(server_url)" ]; then
    echo "==> corb serve is already running for $CORB_DATA_DIR at $(server_url)"
    return
  fi
  if port_taken; then
    echo "Port $CORB_PORT is already in use by another program. Start the demo on a free port, e.g.:"
    echo "  CORB_PORT=8010 scripts/demo.sh"
    exit 1
  fi
  echo "==> starting corb serve on port $CORB_PORT (log: $LOG_FILE)"
  echo "---- $(date -u '+%Y-%m-%d %H:%M:%S') UTC: scripts/demo.sh starts corb serve" >>"$LOG_FILE"
  nohup corb serve --port "$CORB_PORT" >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 120); do
    [ -n "$(server_url)" ] && return
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { tail -20 "$LOG_FILE"; echo "corb serve failed to start"; exit 1; }
    sleep 0.5
  done
  tail -20 "$LOG_FILE"; echo "corb serve did not start in 60 s"; exit 1
}

follow_lobby() {
  echo "==> $MEMBER follows the lobby camera"
  corb sms "$MEMBER" "subscribe lobby"
}

upload_clip() {
  echo "==> the lobby camera uploads a segment ($CLIP)"
  KEY=$(corb ingest "$CLIP" --camera lobby | sed -n 's/^Stored .* as \(cameras\/[^ ]*\) .*/\1/p')
  echo "    $KEY"
  echo "==> waiting for the detector to analyse it"
  python - "$KEY" "$LOG_FILE" <<'PY'
import sys, time
from sqlalchemy import select
from bot.models import Detection
from bot.services import services

key, log, deadline = sys.argv[1], sys.argv[2], time.monotonic() + 300
while time.monotonic() < deadline:
    with services().sessions() as s:
        d = s.scalars(select(Detection).where(Detection.segment_key == key)).first()
    if d is not None:
        print(f"    analysed: peak {d.peak} people, mean {d.mean:.1f}, {d.unique_people} different people "
              f"({d.model})")
        break
    time.sleep(1)
else:
    sys.exit(f"not analysed after 300 s: see {log} (corb replay lists failures)")
PY
}

summary() {
  local url env=""
  url=$(server_url)
  [ "$CORB_DATA_DIR" = "$PWD/var" ] || env="CORB_DATA_DIR=$CORB_DATA_DIR"
  echo
  echo "Corb is running at $url (log: $LOG_FILE; stop: ${env:+$env }scripts/demo-stop.sh)."
  echo "Open it in a browser for the admin pages and the phone simulator. Sign in with"
  echo "$SIGN_IN"
  echo
  if [ -n "$LIVE_URL" ]; then
    echo "The lobby camera is live ($LIVE_URL): people walk in every 45 s; alerts to a follower"
    echo "come at most once per cooldown (Settings page; 10 minutes by default)."
    echo
  fi
  echo "Your phone is the terminal. Try, in this order:"
  [ -z "$env" ] || echo "  export $env"
  sed 's/^/  /' scripts/demo-try.txt
}

main() {
  install
  database
  people_and_cameras
  live_camera
  start_server
  follow_lobby
  if [ -n "$LIVE_URL" ]; then wait_for_live_alert; else upload_clip; fi
  summary
}

# Run when executed; when sourced (the tests call single steps), only define the steps.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi

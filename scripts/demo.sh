#!/usr/bin/env bash
# Corb end to end on this machine, no accounts: the README's first command.
#   scripts/demo.sh        (or: make demo)      stop it with scripts/demo-stop.sh (or: make stop)
#   CORB_PORT=8010 scripts/demo.sh              another port, when 8000 is taken
# Needs only Python 3.11+. Creates .venv, installs Corb, migrates the SQLite database under var/, adds
# demo people, cameras and an admin account, starts `corb serve` in the background (log appended to
# var/serve.log, its address in var/serve.json), uploads a real camera clip as the lobby camera would,
# waits until it is analysed and prints what to try (scripts/demo-try.txt, which the README quotes).
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
  echo "Your phone is the terminal. Try, in this order:"
  [ -z "$env" ] || echo "  export $env"
  sed 's/^/  /' scripts/demo-try.txt
}

main() {
  install
  database
  people_and_cameras
  start_server
  follow_lobby
  upload_clip
  summary
}

# Run when executed; when sourced (the tests call single steps), only define the steps.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi

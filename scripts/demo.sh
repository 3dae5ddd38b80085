#!/usr/bin/env bash
# Corb end to end on this machine, no accounts: the README's first command.
#   scripts/demo.sh        (or: make demo)      stop it with scripts/demo-stop.sh (or: make stop)
# Needs only Python 3.11+. Creates .venv, installs Corb, migrates the SQLite database under var/, adds
# demo people and cameras, starts `corb serve` in the background (var/serve.log, var/serve.pid),
# uploads a real camera clip as the lobby camera would and waits until it is analysed.
# Safe to run again: everything is an upsert, and a server already running is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
export CORB_DATA_DIR=${CORB_DATA_DIR:-$PWD/var}
export CORB_PORT=${CORB_PORT:-8000}
PID_FILE="$CORB_DATA_DIR/serve.pid"
LOG_FILE="$CORB_DATA_DIR/serve.log"
ADMIN=+15550000001 MEMBER=+15550000002 CLEANER=+15550000003
CLIP=tests/data/vtest-clip.mkv

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
echo "==> installing Corb (requirements.txt)"
python -m pip install -q --disable-pip-version-check -r requirements.txt -e . 2>&1 \
  | { grep -v "^WARNING: Location" || true; }

echo "==> database"
corb db upgrade
echo "==> demo people and cameras"
corb users add "$ADMIN" --name "Ada Admin" --role admin
corb users add "$MEMBER" --name "Max Member" --role member
corb users add "$CLEANER" --name "Cleo Cleaner" --role cleaner
corb cameras add lobby --name Lobby --area lobby
corb cameras add kitchen --name Kitchen --area kitchen

mkdir -p "$CORB_DATA_DIR"
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  echo "==> corb serve is already running (pid $(cat "$PID_FILE"))"
else
  echo "==> starting corb serve (log: $LOG_FILE)"
  nohup corb serve --port "$CORB_PORT" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 120); do
    grep -q "running at" "$LOG_FILE" 2>/dev/null && break
    kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { cat "$LOG_FILE"; echo "corb serve failed to start"; exit 1; }
    sleep 0.5
  done
  grep -q "running at" "$LOG_FILE" || { cat "$LOG_FILE"; echo "corb serve did not start in 60 s"; exit 1; }
fi

echo "==> $MEMBER follows the lobby camera"
corb sms "$MEMBER" "subscribe lobby" --wait 5

echo "==> the lobby camera uploads a segment ($CLIP)"
KEY=$(corb ingest "$CLIP" --camera lobby | sed -n 's/^Stored .* as \(cameras\/[^ ]*\) .*/\1/p')
echo "    $KEY"
echo "==> waiting for the detector to analyse it"
python - "$KEY" <<'PY'
import sys, time
from sqlalchemy import select
from bot.models import Detection
from bot.services import services

key, deadline = sys.argv[1], time.monotonic() + 300
while time.monotonic() < deadline:
    with services().sessions() as s:
        d = s.scalars(select(Detection).where(Detection.segment_key == key)).first()
    if d is not None:
        print(f"    analysed: peak {d.peak} people, mean {d.mean:.1f}, {d.unique_people} different people "
              f"({d.model})")
        break
    time.sleep(1)
else:
    sys.exit("not analysed after 300 s: see var/serve.log (corb replay lists failures)")
PY

URL=$(sed -n 's/.*running at \(http[^ ]*\).*/\1/p' "$LOG_FILE" | head -1)
cat <<EOF2

Corb is running at $URL (log: $LOG_FILE; stop: scripts/demo-stop.sh).
Your phone is the terminal. First:  . .venv/bin/activate
  corb outbox                                          # the alert $MEMBER got, with a picture link
  corb sms $MEMBER "status lobby"
  corb sms $MEMBER "snapshot lobby"                    # an MMS: open its link in a browser
  corb sms $MEMBER "pls request cleaning in the kitchen - coffee spilled"
  corb sms $CLEANER "done 1"                           # the cleaner closes request 1
  corb sms $MEMBER "help"
  corb sms +15559999999 "status"                       # an unknown number is politely refused
  corb ingest tests/data/empty-scene.mkv --camera kitchen
EOF2

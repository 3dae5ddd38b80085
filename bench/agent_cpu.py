"""The camera agent's CPU per camera: ``corb cameras run`` against a live 720p 15 fps RTSP camera.

    python bench/agent_cpu.py [--seconds 60] [--cameras 1] [--size 1280x720] [--gop 30] [--sub]

It makes a feed with ``scripts/camera_feed.py`` (empty stretches and people walking in, H.264 without
B-frames, a keyframe every ``--gop`` frames), serves it with ``scripts/rtsp_camera.py`` (GStreamer's RTSP
server, a subprocess on Debian's Python), runs ``corb cameras run --config`` with a folder bucket for
``--seconds`` after a 5-s warm-up, and reads the agent process's user+system CPU time from
``/proc/PID/stat``. It prints CPU-seconds per wall-second, per camera (target: under 0.03, i.e. 3% of one
core, per 720p15 camera) and the segments made. Each camera reads the same server (a shared media, as when
several agents watch one camera), so the server's own cost is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.agent.live import RtspCamera  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--gop", type=int, default=30, help="frames between keyframes (30 = 2 s at 15 fps)")
    parser.add_argument("--bitrate", default="2M")
    parser.add_argument("--sub", action="store_true", help="also a 640x360 sub-stream per camera")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        feed = tmp / "feed.mkv"
        cmd = [sys.executable, str(ROOT / "scripts/camera_feed.py"), str(feed), "--scenes",
               "empty:20 people:10", "--repeat", "3", "--size", args.size, "--gop", str(args.gop),
               "--bitrate", args.bitrate]
        if args.sub:
            cmd += ["--sub-size", "640x360"]
        subprocess.run(cmd, check=True, capture_output=True)
        camera = RtspCamera(feed, sub=args.sub)
        try:
            sub = {"substream": camera.url(sub=True)} if args.sub else {}
            cams = [{"slug": f"cam{i}", "stream": camera.url(), **sub} for i in range(args.cameras)]
            config = tmp / "agent.json"
            config.write_text(json.dumps({"spool": str(tmp / "spool"), "cameras": cams}))
            env = {**os.environ, "CORB_DATA_DIR": str(tmp / "data"), "CORB_BUCKET": "folder"}
            corb = [sys.executable, "-c", "from bot.cli import main; main()"]
            agent = subprocess.Popen([*corb, "cameras", "run", "--config", str(config)], env=env,
                                     stderr=subprocess.DEVNULL)
            time.sleep(5.0)  # connect, first keyframes
            c0, t0 = cpu_seconds(agent.pid), time.monotonic()
            time.sleep(args.seconds)
            c1, t1 = cpu_seconds(agent.pid), time.monotonic()
            agent.send_signal(signal.SIGTERM)
            agent.wait(30)
        finally:
            camera.stop()
        segments = sorted((tmp / "data" / "bucket").rglob("*.mkv"))
        per_camera = (c1 - c0) / (t1 - t0) / args.cameras
        print(f"{args.cameras} camera(s) {args.size} 15 fps, keyframe every {args.gop} frames"
              f"{', with sub-stream' if args.sub else ''}: {c1 - c0:.2f} CPU-s in {t1 - t0:.1f} s wall: "
              f"{per_camera * 100:.2f}% of one core per camera; {len(segments)} segments")
    return 0 if per_camera < 0.03 else 1


if __name__ == "__main__":
    sys.exit(main())

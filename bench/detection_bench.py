"""Benchmark the whole detection CLI: speed, memory, cold start and accuracy, one fresh process per figure.

Usage::

    python bench/detection_bench.py [VIDEO] [--gt GT.txt] [--source-fps 7] [--fps 2] [--model NAME]
        [--threads N] [--json]

Every figure comes from a child process, as a Lambda or a user would run it:

- ``every-frame``: ``python -m detection VIDEO --every-frame --mot-out F --json``; its MOT rows are scored
  against ``--gt`` with ``bench/mot_eval.py`` (AP50, recall, precision, count error at score 0.5).
- ``every-frame, zone``: the same with ``--zone``, the camera's counting zone. By default (``--zone auto``)
  it is the ground area the ground truth annotates (``bench/pets_zone.py``), so that people the ground truth
  leaves out on purpose (far away, beyond its tracking area) are not counted against the detector.
- ``default``: ``python -m detection VIDEO --json`` (sampling + motion gating).
- ``decode``: decoding alone (every frame, BGR), frames per second.
- ``cold start``: a fresh ``python -m detection`` on a one-frame video cut from VIDEO: interpreter, imports,
  model load, one detection, snapshot: the time to a first result.

Wall times include the interpreter's start. Peak memory is the child's own ``ru_maxrss`` (``os.wait4``).
Real-time factor = video seconds / wall seconds, where video seconds = frames / ``--source-fps`` (vtest.avi
was recorded at 7 fps although its header says 10: 795 frames are 113.6 s); without ``--source-fps`` the
container's timestamps are used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VTEST = Path("/tmp/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi")
GT = Path("/work/shared/eval/pets09-s2l1-gt.txt")


@dataclass
class Run:
    mode: str
    wall_s: float
    maxrss_mb: float
    returncode: int
    output: dict = field(default_factory=dict)
    stderr_tail: str = ""


def run_child(mode: str, args: list[str], timeout: float) -> Run:
    """Run ``python ARGS`` in a fresh process; wall time and the child's own peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=err, cwd=ROOT, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace").strip()
        tail = err.read().decode(errors="replace")[-2000:]
    try:
        parsed = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        parsed = {"stdout": text[-2000:]}
    return Run(mode, wall, usage.ru_maxrss / 1024.0, proc.returncode, parsed, tail)


def decode_only(video: str) -> None:
    """Child mode: decode every frame to BGR, print frames and seconds as JSON."""
    from detection.video import VideoReader

    t0 = time.perf_counter()
    reader = VideoReader(video, every_frame=True)
    n = sum(1 for _ in reader)
    print(json.dumps({"frames": n, "seconds": time.perf_counter() - t0}))


def one_frame_clip(video: Path, out: Path) -> Path:
    """A one-frame MKV cut from ``video``: the smallest honest input for a cold start."""
    import cv2

    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit(f"cannot read a frame from {video}")
    h, w = frame.shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"XVID"), 7.0, (w, h))
    writer.write(frame)
    writer.release()
    return out


def _video_size(video: Path) -> tuple[int, int]:
    import cv2

    cap = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Benchmark python -m detection (speed, memory, accuracy).")
    p.add_argument("video", nargs="?", type=Path, default=VTEST)
    p.add_argument("--gt", type=Path, default=GT if GT.exists() else None, help="MOTChallenge ground truth")
    p.add_argument("--source-fps", type=float, default=7.0,
                   help="the recording's real frame rate for real-time factors (0: use the container's)")
    p.add_argument("--fps", type=float, help="analysis rate of the default mode (default: the CLI's)")
    p.add_argument("--model")
    p.add_argument("--threads", type=int)
    p.add_argument("--zone", default="auto",
                   help="counting zone of the extra every-frame run: 'auto' (from --gt's world coordinates, "
                        "bench/pets_zone.py), 'none' (no extra run) or corners 'x,y x,y ...'")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per child process")
    p.add_argument("--json", action="store_true")
    p.add_argument("--decode-only", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.decode_only:
        decode_only(args.decode_only)
        return 0
    if not args.video.is_file():
        print(f"error: {args.video}: not found (/work/shared/eval/README.md says where vtest.avi is)",
              file=sys.stderr)
        return 2

    extra = (["--model", args.model] if args.model else []) + (["--threads", str(args.threads)]
                                                               if args.threads else [])
    zone = None
    if args.zone == "auto" and args.gt:
        from bench.mot_eval import _read_rows
        from bench.pets_zone import annotated_zone
        from cloud.camera_settings import format_zone

        width, height = _video_size(args.video)
        try:
            zone = format_zone(annotated_zone(_read_rows(args.gt), width, height))
        except ValueError as exc:
            print(f"note: no zone run ({exc})", file=sys.stderr)
    elif args.zone not in ("auto", "none"):
        zone = args.zone
    with tempfile.TemporaryDirectory() as tmp:
        mot = Path(tmp) / "mot.txt"
        clip = one_frame_clip(args.video, Path(tmp) / "one-frame.mkv")
        cold = run_child("cold start", ["-m", "detection", str(clip), "--json", *extra], args.timeout)
        dec = run_child("decode", [str(Path(__file__).resolve()), "--decode-only", str(args.video)],
                        args.timeout)
        every = run_child("every-frame", ["-m", "detection", str(args.video), "--every-frame", "--json",
                                          "--mot-out", str(mot), *extra], args.timeout)
        rate = ["--fps", str(args.fps)] if args.fps else []
        default = run_child("default", ["-m", "detection", str(args.video), "--json", *rate, *extra],
                            args.timeout)
        zoned = None
        mot_zone = Path(tmp) / "mot-zone.txt"
        if zone:
            zoned = run_child("every-frame, zone",
                              ["-m", "detection", str(args.video), "--every-frame", "--json",
                               "--mot-out", str(mot_zone), "--zone", zone, *extra], args.timeout)
        accuracy = accuracy_zone = None
        if args.gt and every.returncode == 0:
            from bench.mot_eval import evaluate, load_det, load_gt

            accuracy = evaluate(load_gt(args.gt), load_det(mot), threshold=0.5).to_dict()
            if zoned is not None and zoned.returncode == 0:
                accuracy_zone = evaluate(load_gt(args.gt), load_det(mot_zone), threshold=0.5).to_dict()

    failed = [r for r in (cold, dec, every, default, zoned) if r is not None and r.returncode != 0]
    for r in failed:
        print(f"error: {r.mode} exited {r.returncode}: {r.stderr_tail.strip()[-500:]}", file=sys.stderr)
    if failed:
        return 1

    def video_seconds(run: Run) -> float:
        frames = run.output["frames_decoded"]
        return frames / args.source_fps if args.source_fps else float(run.output["duration_s"])

    rows = []
    for r in (every, default):
        o = r.output
        vs = video_seconds(r)
        rows.append({
            "mode": r.mode,
            "frames": o["frames_decoded"],
            "analysed": o["frames_analysed"],
            "detected": o["frames_detected"],
            "wall_s": round(r.wall_s, 2),
            "ms_per_frame": round(1000 * r.wall_s / o["frames_decoded"], 1),
            "detect_ms_per_run": round(o["timings_ms"]["detect"] / max(1, o["frames_detected"]), 1),
            "realtime_x": round(vs / r.wall_s, 2),
            "peak_mb": round(r.maxrss_mb, 1),
            "model": o["model"],
        })
    report = {
        "video": str(args.video),
        "source_fps": args.source_fps or None,
        "runs": rows,
        "decode": {"frames": dec.output["frames"],
                   "fps": round(dec.output["frames"] / dec.output["seconds"], 1),
                   "wall_s": round(dec.wall_s, 2), "peak_mb": round(dec.maxrss_mb, 1)},
        "cold_start": {"wall_s": round(cold.wall_s, 3), "peak_mb": round(cold.maxrss_mb, 1)},
        "accuracy": accuracy,
        "zone": zone,
        "accuracy_in_zone": accuracy_zone,
        "every_frame_summary": {k: every.output[k] for k in ("peak", "mean", "unique_people")},
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.video}  (real time counted at {args.source_fps or 'container'} fps)")
    print(f"{'mode':<12} {'frames':>6} {'analysed':>8} {'detector':>8} {'wall s':>7} {'ms/frame':>8} "
          f"{'det ms':>7} {'x real':>7} {'peak MB':>8}")
    for r in rows:
        print(f"{r['mode']:<12} {r['frames']:>6} {r['analysed']:>8} {r['detected']:>8} {r['wall_s']:>7.2f} "
              f"{r['ms_per_frame']:>8.1f} {r['detect_ms_per_run']:>7.1f} {r['realtime_x']:>7.2f} "
              f"{r['peak_mb']:>8.1f}")
    d = report["decode"]
    print(f"decode only: {d['fps']:.0f} frames/s ({d['frames']} frames, peak {d['peak_mb']:.0f} MB)")
    print(f"cold start (fresh process, one-frame video, to result): {cold.wall_s:.2f} s")
    if accuracy:
        a = accuracy
        aware = a.get("count_error_ignore_aware")
        print(f"every-frame accuracy: AP50 {a['ap50']:.3f}  recall {a['recall']:.3f}  precision "
              f"{a['precision']:.3f}  count error {a['count_error']:.3f}/frame"
              + (f" ({aware:.3f} ignore-aware)" if aware is not None else "") + " at score >= 0.5")
    if accuracy_zone:
        a = accuracy_zone
        print(f"every-frame accuracy, counting zone {zone}:\n"
              f"  AP50 {a['ap50']:.3f}  recall {a['recall']:.3f}  precision {a['precision']:.3f}  "
              f"count error {a['count_error']:.3f}/frame at score >= 0.5")
    s = report["every_frame_summary"]
    print(f"people (every frame): peak {s['peak']}, mean {s['mean']:.2f}, unique {s['unique_people']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

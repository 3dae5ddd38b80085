"""``python -m detection VIDEO``: analyse one segment from the command line.

Prints a human summary (or ``--json``), optionally writes the annotated snapshot and MOTChallenge rows.
Exit status 2 with a one-line error for bad input (not a video, missing file, unknown model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from detection.video import DEFAULT_ANALYSIS_FPS


class _ProgressBar:
    """A one-line bar on a terminal; silent when stderr is not one (logs, pipes, CI)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.1:
            return
        self._last = now
        if total > 0:
            frac = min(1.0, done / total)
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r[{bar:<30}] {done}/{total} frames")
        else:
            self.stream.write(f"\r{done} frames")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m detection", description="Find the people in a video segment.")
    p.add_argument("video", type=Path, help="video file (.mkv, .mp4, .avi)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--every-frame", action="store_true",
                      help="analyse every frame (no sampling, no motion gating)")
    rate.add_argument("--fps", type=float, default=DEFAULT_ANALYSIS_FPS,
                      help=f"frames analysed per second of video (default {DEFAULT_ANALYSIS_FPS:g})")
    p.add_argument("--mot-out", type=Path, help="write MOTChallenge rows (frame,-1,x,y,w,h,score,-1,-1,-1)")
    p.add_argument("--snapshot", type=Path, help="write the annotated best frame (JPEG) here")
    p.add_argument("--model", help="shipped model name, .tflite file or SavedModel directory")
    p.add_argument("--camera", help="camera name for the snapshot's caption (default: the file's name)")
    p.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    p.add_argument("--zone", default="", metavar="'X,Y X,Y X,Y ...'",
                   help="count only people standing in this polygon: corners as fractions of the frame's "
                        "width and height (0,0 top left); default the whole frame")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def _human(summary: dict, video: Path, snapshot: Path | None) -> str:
    s = summary
    rate = "every frame" if s["analysis_fps"] is None else f"{s['analysis_fps']:g} fps"
    t = s["timings_ms"]
    lines = [
        f"{video.name}: {s['frames_decoded']} frames, {s['duration_s']:.1f} s at {s['container_fps']:g} fps "
        f"({s['width']}x{s['height']}); analysed {s['frames_analysed']} ({rate}), "
        f"detector ran on {s['frames_detected']} [{s['model']}]",
        f"people: peak {s['peak']}, mean {s['mean']:.2f}, unique {s['unique_people']}"
        + (f" (counted in zone {s['zone']})" if s.get("zone") else ""),
        f"best frame: #{s['best_frame']['index']} at {s['best_frame']['time_s']:.2f} s, "
        f"{s['best_frame']['count']} people" + (f" -> {snapshot}" if snapshot else ""),
        f"time: {t['total'] / 1000:.2f} s (decode {t['decode'] / 1000:.2f}, detect {t['detect'] / 1000:.2f}, "
        f"track {t['track'] / 1000:.2f})",
    ]
    if s["capped"]:
        lines.append(f"warning: stopped early at the {s['capped']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.fps <= 0:
        print("error: --fps must be positive", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("error: --threads must be at least 1", file=sys.stderr)
        return 2
    from cloud.camera_settings import ZoneError, parse_zone

    try:
        zone = parse_zone(args.zone)
    except ZoneError as exc:
        print(f"error: --zone: {exc}", file=sys.stderr)
        return 2
    # Imported here so that `--help` and argument errors answer instantly.
    from detection.pipeline import analyse, default_detector, start_time_from_name
    from detection.video import VideoError

    bar = _ProgressBar(sys.stderr)
    try:
        if not args.video.is_file():
            raise VideoError(f"{args.video}: not found or not a file")
        detector = default_detector(args.model, args.threads)
        mtime = datetime.fromtimestamp(args.video.stat().st_mtime, UTC)
        result = analyse(args.video, camera=args.camera or args.video.stem, detector=detector, fps=args.fps,
                         every_frame=args.every_frame, progress=bar,
                         start_time=start_time_from_name(args.video.name), end_time=mtime, zone=zone)
    except (ValueError, FileNotFoundError, ImportError) as exc:  # VideoError is a ValueError
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    if args.snapshot:
        args.snapshot.write_bytes(result.snapshot_jpeg)
    if args.mot_out:
        lines = result.mot_lines()
        args.mot_out.write_text("\n".join(lines) + ("\n" if lines else ""))
    summary = result.summary()
    print(json.dumps(summary) if args.json else _human(summary, args.video, args.snapshot))
    return 0

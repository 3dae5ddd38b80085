#!/usr/bin/env python3
"""Make a camera feed: real footage cut into scenes and encoded as an IP camera sends it.

    python scripts/camera_feed.py OUT.mkv --scenes "empty:15 people:7 empty:15" [--repeat N]
        [--size 1280x720] [--fps 15] [--gop 30] [--bitrate 2M] [--sub-size 640x360 --sub-bitrate 400k]
        [--codec h264|h265]

Scenes come from the shipped clips: ``people`` is ``tests/data/vtest-clip.mkv`` (6-7 people walking, from
its first frame), ``empty`` is ``tests/data/empty-scene.mkv`` (the same plaza, nobody in it, sensor noise);
``--people`` and ``--empty`` take other files. The output is H.264 without B-frames, with a fixed GOP (a
keyframe every ``--gop`` frames), constant-ish bitrate, in Matroska (``--codec h265``: H.265, as many newer
cameras send by default): what ``scripts/rtsp_camera.py`` serves.
``--sub-size`` also writes ``OUT.sub.mkv``, the camera's low-resolution sub-stream of the same scenes.

Beside it, ``OUT.json`` is the ground truth: each scene's kind and its start and end in seconds from the
feed's first frame (a ``people`` scene's start is the first frame with a person). Needs Debian's ffmpeg.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = {"people": ROOT / "tests/data/vtest-clip.mkv", "empty": ROOT / "tests/data/empty-scene.mkv"}


def light_clip(out: Path, seconds: float = 30.0) -> Path:
    """The empty scene with a lighting change (motion without anyone): over the first 40% of ``seconds`` it
    dims by 0.3, stays dim until 22/30 of it, then the light is back at once. Made once; returns ``out``."""
    if not out.exists():
        dim, back = seconds * 12 / 30, seconds * 22 / 30
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-t", f"{seconds:g}", "-i",
                        str(DEFAULT_SOURCES["empty"]), "-vf",
                        f"eq=brightness='if(lt(t,{dim:g}),-0.3*t/{dim:g},if(lt(t,{back:g}),-0.3,0))'"
                        ":eval=frame", "-c:v", "libx264", "-qp", "10", "-an", str(out)], check=True)
    return out


def parse_scenes(text: str, repeat: int = 1) -> list[tuple[str, float]]:
    """``"empty:15 people:7"`` -> ``[("empty", 15.0), ("people", 7.0)]``, repeated."""
    scenes = []
    for item in text.split():
        kind, _, seconds = item.partition(":")
        if kind not in DEFAULT_SOURCES or not seconds:
            kinds = ", ".join(sorted(DEFAULT_SOURCES))
            raise ValueError(f"bad scene {item!r}: use KIND:SECONDS with KIND one of {kinds}")
        if float(seconds) <= 0:
            raise ValueError(f"bad scene {item!r}: SECONDS must be positive")
        scenes.append((kind, float(seconds)))
    if not scenes:
        raise ValueError("no scenes")
    return scenes * repeat


ENCODERS = {  # what IP cameras send: no B-frames, a fixed GOP, the parameter sets with every keyframe
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0"],
    "h265": ["-c:v", "libx265", "-preset", "veryfast",
             "-x265-params", "bframes=0:repeat-headers=1:log-level=error", "-tag:v", "hvc1"],
}


def _encode(out: Path, scenes: list[tuple[str, float]], sources: dict[str, Path], size: str, fps: float,
            gop: int, bitrate: str, codec: str = "h264") -> None:
    width, height = size.lower().split("x")
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for kind, seconds in scenes:
        cmd += ["-stream_loop", "-1", "-t", f"{seconds:.3f}", "-i", str(sources[kind])]
    # Each input is resampled to the output rate and size first, so every scene lasts exactly its seconds.
    chains = [f"[{i}:v]fps={fps},scale={width}:{height},setsar=1,format=yuv420p[s{i}]"
              for i in range(len(scenes))]
    joined = "".join(f"[s{i}]" for i in range(len(scenes)))
    graph = ";".join(chains) + f";{joined}concat=n={len(scenes)}:v=1:a=0[v]"
    cmd += ["-filter_complex", graph, "-map", "[v]", *ENCODERS[codec], "-g", str(gop),
            "-keyint_min", str(gop), "-sc_threshold", "0", "-b:v", bitrate, "-maxrate", bitrate,
            "-bufsize", bitrate, "-an", str(out)]
    subprocess.run(cmd, check=True)


def make_feed(out: Path, scenes: list[tuple[str, float]], *, size: str = "1280x720", fps: float = 15.0,
              gop: int = 30, bitrate: str = "2M", sub_size: str | None = None, sub_bitrate: str = "400k",
              sources: dict[str, Path] | None = None, codec: str = "h264") -> dict:
    """Write ``out`` (and ``out.sub.mkv`` with ``sub_size``) and ``out.json``; return the ground truth."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed (Debian: apt-get install ffmpeg)")
    sources = {**DEFAULT_SOURCES, **(sources or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    _encode(out, scenes, sources, size, fps, gop, bitrate, codec)
    truth: dict = {"feed": out.name, "codec": codec, "size": size, "fps": fps, "gop": gop, "bitrate": bitrate,
                   "scenes": []}
    if sub_size:
        sub = out.with_suffix(".sub.mkv")
        _encode(sub, scenes, sources, sub_size, fps, gop, sub_bitrate, codec)
        truth["sub_feed"], truth["sub_size"] = sub.name, sub_size
    start = 0.0
    for kind, seconds in scenes:
        truth["scenes"].append({"kind": kind, "start_s": round(start, 3), "end_s": round(start + seconds, 3)})
        start += seconds
    truth["duration_s"] = round(start, 3)
    out.with_suffix(".json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--scenes", default="empty:15 people:7", help='e.g. "empty:15 people:7"')
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--gop", type=int, default=30, help="frames between keyframes")
    parser.add_argument("--bitrate", default="2M")
    parser.add_argument("--codec", choices=sorted(ENCODERS), default="h264")
    parser.add_argument("--sub-size", help="also write OUT.sub.mkv at this size (e.g. 640x360)")
    parser.add_argument("--sub-bitrate", default="400k")
    parser.add_argument("--people", type=Path, help="footage with people (default: the shipped clip)")
    parser.add_argument("--empty", type=Path, help="footage of the empty scene")
    args = parser.parse_args()
    try:
        scenes = parse_scenes(args.scenes, args.repeat)
    except ValueError as exc:
        parser.error(str(exc))
    sources = {k: v for k, v in (("people", args.people), ("empty", args.empty)) if v is not None}
    truth = make_feed(args.out, scenes, size=args.size, fps=args.fps, gop=args.gop, bitrate=args.bitrate,
                      sub_size=args.sub_size, sub_bitrate=args.sub_bitrate, sources=sources, codec=args.codec)
    print(f"wrote {args.out} ({truth['duration_s']} s, {len(scenes)} scenes), "
          f"ground truth {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

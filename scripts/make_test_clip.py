"""Cut the detection test clips from OpenCV's vtest.avi (PETS 2009 S2.L1) and renumber their ground truth.

    python scripts/make_test_clip.py [--source vtest.avi] [--gt GT.txt] [--start 250] [--frames 50]

Writes into tests/data/:
- ``vtest-clip.mkv``: frames start..start+frames-1 re-encoded as MPEG-4 part 2 (``XVID``) in Matroska at the
  recording's real 7 fps (OpenCV here has no H.264 encoder; MPEG-4 muxes into MKV and decodes back).
- ``vtest-clip-gt.txt``: the MOTChallenge rows of those frames, renumbered so the clip's first frame is 1.
- ``empty-scene.mkv``: the same plaza with nobody in it, 21 frames: the per-pixel temporal median of the
  whole video (walkers move on, the background stays) plus a little sensor noise, so it looks real.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

VTEST = Path("/tmp/opencv-doc/usr/share/doc/opencv-doc/examples/data/vtest.avi")
GT = Path("/work/shared/eval/pets09-s2l1-gt.txt")
OUT = Path(__file__).resolve().parent.parent / "tests" / "data"
FPS = 7.0  # PETS 2009 was recorded at 7 fps; vtest.avi's header says 10


def read_frames(source: Path, start: int, count: int, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(source), cv2.CAP_FFMPEG)
    frames = []
    index = 0
    while len(frames) < count and cap.grab():
        if index >= start and (index - start) % step == 0:
            ok, frame = cap.retrieve()
            if not ok:
                raise SystemExit(f"cannot decode frame {index} of {source}")
            frames.append(frame)
        index += 1
    cap.release()
    if len(frames) < count:
        raise SystemExit(f"{source} has too few frames for start={start} count={count}")
    return frames


def write_mkv(path: Path, frames: list[np.ndarray]) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"XVID"), FPS, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"cannot open a video writer for {path}")
    for frame in frames:
        writer.write(frame)
    writer.release()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    if n != len(frames):
        raise SystemExit(f"{path}: wrote {len(frames)} frames, read back {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=VTEST)
    ap.add_argument("--gt", type=Path, default=GT)
    ap.add_argument("--start", type=int, default=250,
                    help="first frame, 0-based (250: 6-7 people, none ignored)")
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    write_mkv(args.out / "vtest-clip.mkv", read_frames(args.source, args.start, args.frames))
    rows = []
    for line in args.gt.read_text().splitlines():
        fields = line.split(",")
        frame = int(fields[0]) - 1  # GT frame f is video index f-1
        if args.start <= frame < args.start + args.frames:
            rows.append(",".join([str(frame - args.start + 1), *fields[1:]]))
    rows.sort(key=lambda r: (int(r.split(",")[0]), int(r.split(",")[1])))
    (args.out / "vtest-clip-gt.txt").write_text("\n".join(rows) + "\n")

    background = np.median(np.stack(read_frames(args.source, 0, 159, step=5)), axis=0).astype(np.float32)
    rng = np.random.default_rng(2009)
    noisy = (background + rng.normal(0, 2.0, background.shape) for _ in range(21))
    empty = [np.clip(frame, 0, 255).astype(np.uint8) for frame in noisy]
    write_mkv(args.out / "empty-scene.mkv", empty)
    for name in ("vtest-clip.mkv", "vtest-clip-gt.txt", "empty-scene.mkv"):
        print(f"{args.out / name}: {(args.out / name).stat().st_size} bytes")


if __name__ == "__main__":
    main()

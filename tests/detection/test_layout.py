"""The channels-last rewrite of the shipped graph: the same outputs, without the converter's transposes."""

from __future__ import annotations

import numpy as np
import pytest

from detection.detectors.base import DEFAULT_MODEL, MODELS_DIR
from detection.detectors.layout import channels_last
from detection.detectors.nanodet import resized_model

MODEL = (MODELS_DIR / f"{DEFAULT_MODEL}.tflite").read_bytes()


def interpreter(content: bytes):  # noqa: ANN201 - LiteRT's Interpreter
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content, num_threads=1)
    it.allocate_tensors()
    return it


def run(it, x: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:  # noqa: ANN001
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {tuple(int(v) for v in d["shape"]): it.get_tensor(d["index"]).copy()
            for d in it.get_output_details()}


def operators(content: bytes) -> list[str]:
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return [names[max(graph.operatorCodes[op.opcodeIndex].builtinCode,
                      graph.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)]
            for op in graph.subgraphs[0].operators]


@pytest.mark.parametrize("height", [None, 256])
def test_the_rewritten_graph_gives_the_same_outputs(height: int | None) -> None:
    original = MODEL if height is None else resized_model(MODEL, height)
    before, after = interpreter(original), interpreter(channels_last(original))
    n, c, h, w = (int(v) for v in before.get_input_details()[0]["shape"])
    assert tuple(int(v) for v in after.get_input_details()[0]["shape"]) == (n, h, w, c)
    x = np.random.default_rng(3).normal(0, 1, (n, c, h, w)).astype(np.float32)
    want, got = run(before, x), run(after, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    assert sorted(want) == sorted(got) and len(want) == 6
    for shape, value in want.items():
        np.testing.assert_allclose(got[shape], value, rtol=0, atol=1e-5)


def test_the_transposes_around_every_convolution_are_gone() -> None:
    ops = operators(MODEL)
    rewritten = operators(channels_last(MODEL))
    assert ops.count("TRANSPOSE") == 76 and rewritten.count("TRANSPOSE") == 0
    assert rewritten.count("CONV_2D") == ops.count("CONV_2D") == 34


def test_a_graph_it_does_not_know_is_refused() -> None:
    once = channels_last(MODEL)
    with pytest.raises(ValueError, match="NCHW"):
        channels_last(once)  # already channels-last: its input is (1, H, W, 3)


def test_the_prepared_graph_is_kept_for_the_next_process(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from detection.detectors import nanodet
    from detection.detectors.base import MODELS_DIR

    monkeypatch.setenv("CORB_CACHE_DIR", str(tmp_path / "cache"))
    path = MODELS_DIR / f"{DEFAULT_MODEL}.tflite"
    first = nanodet.prepared_model(path, 256)
    assert first == channels_last(resized_model(MODEL, 256))
    (kept,) = (tmp_path / "cache").glob("*.tflite")
    assert kept.read_bytes() == first and "-256-nhwc" in kept.name

    def refuse(_content: bytes) -> bytes:
        raise AssertionError("prepared again")

    monkeypatch.setattr(nanodet, "channels_last", refuse)
    assert nanodet.prepared_model(path, 256) == first  # read back, not redone
    monkeypatch.setenv("CORB_CACHE_DIR", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a directory")
    monkeypatch.setattr(nanodet, "channels_last", channels_last)
    assert nanodet.prepared_model(path) == channels_last(MODEL)  # nowhere to keep it: still prepared

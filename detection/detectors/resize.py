"""OpenCV's INTER_LINEAR resize of a uint8 frame, run by LiteRT in a four-operation model built here.

The detector was measured with OpenCV's INTER_LINEAR letterbox: each output pixel interpolates the 2 x 2
source pixels nearest to where its centre falls, edges replicated, no antialiasing (Pillow's ``resize``
antialiases, which cost count accuracy on PETS). Without OpenCV in the package, Pillow's affine transform
sampled the same way but took 2.7 - 3.6 ms a frame against OpenCV's 0.5; numpy and swscale were slower or not
the same sampling. TFLite's ``RESIZE_BILINEAR`` with half-pixel centres is that sampling, and LiteRT (the
detector's own runtime, already loaded) runs it with XNNPACK in 0.6 - 1.0 ms.

The model: ``CAST`` (uint8 to float32), ``RESIZE_BILINEAR`` (half-pixel centres), ``ADD`` 0.5 and ``CAST``
back to uint8, which rounds half up as OpenCV's fixed-point arithmetic does: the result is within one grey
level of ``cv2.resize`` (tests compare them). One model per (frame size, output size), built with LiteRT's
own flatbuffer schema in about a millisecond and kept for the process (a camera's frames keep their size).
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np


def linear_resize_model(width: int, height: int, channels: int, out_width: int, out_height: int) -> bytes:
    """The .tflite bytes of the resize from ``width`` x ``height`` to ``out_width`` x ``out_height``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    ops = (schema.BuiltinOperator.CAST, schema.BuiltinOperator.RESIZE_BILINEAR, schema.BuiltinOperator.ADD)
    codes = []
    for code in ops:
        c = schema.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
        codes.append(c)
    buffers = [schema.BufferT() for _ in range(3)]  # 0: none (activations); 1: the output size; 2: 0.5
    buffers[1].data = np.array([out_height, out_width], dtype="<i4").view(np.uint8)
    buffers[2].data = np.array([0.5], dtype="<f4").view(np.uint8)

    def tensor(name: bytes, shape: list[int], kind: int, buffer: int = 0) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.array(shape, np.int32), kind, buffer
        return t

    u8, f32 = schema.TensorType.UINT8, schema.TensorType.FLOAT32
    src, dst = [1, height, width, channels], [1, out_height, out_width, channels]
    tensors = [tensor(b"frame", src, u8), tensor(b"frame_f", src, f32),
               tensor(b"size", [2], schema.TensorType.INT32, 1), tensor(b"resized", dst, f32),
               tensor(b"half", [1], f32, 2), tensor(b"rounded", dst, f32), tensor(b"out", dst, u8)]

    def operator(code: int, inputs: list[int], outputs: list[int], kind: int = 0,
                 options: object = None) -> schema.OperatorT:
        o = schema.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, np.array(inputs, np.int32), np.array(outputs, np.int32)
        o.builtinOptionsType, o.builtinOptions = kind, options
        return o

    sampling = schema.ResizeBilinearOptionsT()
    sampling.alignCorners, sampling.halfPixelCenters = False, True
    graph = schema.SubGraphT()
    graph.tensors = tensors
    graph.operators = [operator(0, [0], [1]),
                       operator(1, [1, 2], [3], schema.BuiltinOptions.ResizeBilinearOptions, sampling),
                       operator(2, [3, 4], [5], schema.BuiltinOptions.AddOptions, schema.AddOptionsT()),
                       operator(0, [5], [6])]
    graph.inputs, graph.outputs = np.array([0], np.int32), np.array([6], np.int32)
    model = schema.ModelT()
    model.version, model.description = 3, b"corb: OpenCV INTER_LINEAR resize"
    model.operatorCodes, model.buffers, model.subgraphs = codes, buffers, [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class _Resizer:
    def __init__(self, width: int, height: int, channels: int, out_width: int, out_height: int) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(
            model_content=linear_resize_model(width, height, channels, out_width, out_height), num_threads=1)
        self.interpreter.allocate_tensors()
        self.source = self.interpreter.get_input_details()[0]["index"]
        self.result = self.interpreter.get_output_details()[0]["index"]
        self.lock = threading.Lock()  # one interpreter, one set of buffers: calls take turns


@lru_cache(maxsize=4)  # a 1080p one holds ~31 MB of buffers; cameras share few sizes
def _resizer(width: int, height: int, channels: int, out_width: int, out_height: int) -> _Resizer:
    return _Resizer(width, height, channels, out_width, out_height)


def resize_linear(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``frame`` (uint8, H x W or H x W x C) resized to ``size`` (w, h) as OpenCV's INTER_LINEAR does."""
    picture = frame if frame.ndim == 3 else frame[:, :, None]
    h, w, c = picture.shape
    resizer = _resizer(w, h, c, int(size[0]), int(size[1]))
    with resizer.lock:
        resizer.interpreter.set_tensor(resizer.source, np.ascontiguousarray(picture, dtype=np.uint8)[None])
        resizer.interpreter.invoke()
        out = resizer.interpreter.get_tensor(resizer.result)[0]
    return out if frame.ndim == 3 else out[:, :, 0]

"""The shipped NanoDet graph rewritten channels-last: the same arithmetic without 76 transposes.

The model came from PyTorch through ONNX, which is channels-first (NCHW), while LiteRT's convolutions are
channels-last (NHWC): the converter wrapped every convolution in a TRANSPOSE to NHWC and one back, and kept
the PADs, activations and concatenations between them in NCHW. Each TRANSPOSE copies a whole feature map. This
pass keeps every tensor of that NCHW region channels-last instead, so those TRANSPOSEs become no-ops and go:
PADs get their paddings in NHWC order, channel concatenations and splits their axis (1 -> 3), and each head
output's ``RESHAPE [1, C, -1]`` + ``TRANSPOSE [0, 2, 1]`` becomes one ``RESHAPE [1, -1, C]`` (the same
element order). The input becomes (1, H, W, 3): a letterboxed HWC picture is normalised in place, no planes.

Only data movement changes, so the outputs are the same numbers (a test holds them equal to the original
graph's). A graph this pass does not recognise is refused with ``ValueError`` rather than guessed at.
"""

from __future__ import annotations

import numpy as np

TO_NHWC, TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def channels_last(model: bytes) -> bytes:
    """``model`` (a NanoDet .tflite's bytes, NCHW input) with its NCHW region made NHWC."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    ops = schema.BuiltinOperator
    try:
        graph = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises struct.error, IndexError, ...
        raise ValueError(f"not a readable TFLite model: {exc}") from exc
    sub = graph.subgraphs[0]
    tensors, buffers = sub.tensors, graph.buffers

    def code(op: schema.OperatorT) -> int:
        c = graph.operatorCodes[op.opcodeIndex]
        return max(c.builtinCode, c.deprecatedBuiltinCode)

    def const(index: int) -> np.ndarray | None:
        data = buffers[tensors[index].buffer].data
        return None if data is None else np.frombuffer(bytes(bytearray(data)), dtype="<i4")

    def new_const(values: list[int], shape: list[int]) -> int:
        buffer = schema.BufferT()
        buffer.data = np.array(values, dtype="<i4").view(np.uint8)
        buffers.append(buffer)
        t = schema.TensorT()
        t.name, t.type, t.buffer = b"corb_nhwc_const", schema.TensorType.INT32, len(buffers) - 1
        t.shape = np.array(shape, np.int32)
        tensors.append(t)
        return len(tensors) - 1

    def to_nhwc_shape(index: int) -> None:
        shape = tensors[index].shape
        tensors[index].shape = np.array([shape[0], shape[2], shape[3], shape[1]], np.int32)
        if tensors[index].shapeSignature is not None and len(tensors[index].shapeSignature) == 4:
            sig = tensors[index].shapeSignature
            tensors[index].shapeSignature = np.array([sig[0], sig[2], sig[3], sig[1]], np.int32)

    (source,) = (int(i) for i in sub.inputs)
    if len(tensors[source].shape) != 4 or int(tensors[source].shape[1]) != 3:
        raise ValueError("not an NCHW NanoDet graph: expected a (1, 3, H, W) input")
    to_nhwc_shape(source)
    logical_nchw = {source}  # tensors the graph treats as NCHW; all of them are now stored NHWC
    flattened: set[int] = set()  # head reshapes that now write (1, HW, C) directly
    physical: dict[int, int] = {}  # output of a removed transpose -> the tensor holding its data
    keep = []
    for op in sub.operators:
        original = [int(i) for i in op.inputs]
        op.inputs = np.array([physical.get(i, i) for i in original], np.int32)
        kind, out = code(op), [int(o) for o in op.outputs]
        region = bool(original) and original[0] in logical_nchw
        if kind == ops.TRANSPOSE and len(original) == 2:
            perm = const(original[1])
            perm = None if perm is None else perm.tolist()
            if region and perm == TO_NHWC:  # to channels-last: it already is
                physical[out[0]] = int(op.inputs[0])
                continue
            if not region and perm == TO_NCHW and len(tensors[original[0]].shape) == 4:
                physical[out[0]] = int(op.inputs[0])  # back to channels-first: it stays channels-last
                logical_nchw.add(out[0])
                continue
            if original[0] in flattened and perm == [0, 2, 1]:  # the reshape wrote this order already
                physical[out[0]] = int(op.inputs[0])
                continue
            if region:
                raise ValueError(f"unexpected TRANSPOSE {perm} of an NCHW tensor")
        elif region:
            if kind in (ops.PAD, ops.PADV2):
                pads = const(original[1])
                if pads is None or pads.size != 8:
                    raise ValueError("a PAD without constant 4-D paddings")
                op.inputs[1] = new_const(pads.reshape(4, 2)[TO_NHWC].ravel().tolist(), [4, 2])
            elif kind in (ops.LEAKY_RELU, ops.LOGISTIC, ops.RELU):
                pass
            elif kind == ops.CONCATENATION:
                if op.builtinOptions.axis != 1 or any(i not in logical_nchw for i in original):
                    raise ValueError("a concatenation off the channel axis or mixing layouts")
                op.builtinOptions.axis = 3
            elif kind == ops.SPLIT_V:
                axis = const(original[2])
                if axis is None or axis.tolist() != [1]:
                    raise ValueError("a split off the channel axis")
                op.inputs[2] = new_const([3], [])
            elif kind == ops.RESHAPE:
                shape = const(original[1])
                if shape is None or len(shape) != 3 or shape[0] != 1 or shape[2] != -1:
                    raise ValueError("a reshape other than [1, C, -1]")
                channels = int(shape[1])
                op.inputs[1] = new_const([1, -1, channels], [3])
                if getattr(op.builtinOptions, "newShape", None) is not None:
                    op.builtinOptions.newShape = np.array([1, -1, channels], np.int32)
                t = tensors[out[0]]
                t.shape = np.array([1, int(t.shape[2]), channels], np.int32)
                if t.shapeSignature is not None and len(t.shapeSignature) == 3:
                    t.shapeSignature = t.shape.copy()
                flattened.add(out[0])
                keep.append(op)
                continue
            else:
                raise ValueError(f"an NCHW tensor reaches an operator this pass does not know ({kind})")
            for o in out:
                logical_nchw.add(o)
                to_nhwc_shape(o)
        keep.append(op)
    if not physical:
        raise ValueError("no NCHW region found")
    sub.operators = keep
    sub.outputs = np.array([physical.get(int(o), int(o)) for o in sub.outputs], np.int32)
    builder = flatbuffers.Builder(len(model) + 65536)
    builder.Finish(graph.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())

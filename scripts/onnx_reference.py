#!/usr/bin/env python3
"""Run an ONNX model with the reference executor its format calls for, for the Rust tests and
for users who want to check `accelforge run` themselves:

    python3 scripts/onnx_reference.py MODEL.onnx X.npy Y.npy [--limit N]

QONNX graphs (any node in the qonnx/finn custom-op domains) run in the `qonnx` package's
executor after its `cleanup_model`; standard ONNX (e.g. QCDQ: QuantizeLinear/DequantizeLinear)
runs in onnxruntime with graph optimizations off, so every node computes as the spec says.
X is float32 with the batch first; Y is float32, one row per input. The whole batch runs in one
call: the graph's batch axis is set to len(X) (files keep batch 1, as exporters write them).
"""

import argparse
import sys

import numpy as np
import onnx

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "finn")


def is_qonnx(model):
    return any(n.domain in QONNX_DOMAINS or n.domain.startswith("qonnx") for n in model.graph.node)


def run_reference(model, x):
    """The model's outputs for every row of x (float32)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for v in (model.graph.input[0], model.graph.output[0]):
        v.type.tensor_type.shape.dim[0].dim_value = len(x)
    if not is_qonnx(model):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return sess.run(None, {model.graph.input[0].name: x})[0].astype(np.float32)
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    mw = cleanup_model(ModelWrapper(model))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    return execute_onnx(mw, {iname: x})[oname].astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("x")
    ap.add_argument("y")
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args()
    x = np.load(a.x)
    if x.dtype != np.float32:
        sys.exit(f"{a.x}: expected float32, got {x.dtype}")
    if a.limit is not None:
        x = x[: a.limit]
    y = run_reference(onnx.load(a.model), x)
    np.save(a.y, y.reshape(len(x), -1))


if __name__ == "__main__":
    main()

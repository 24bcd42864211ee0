#!/usr/bin/env python3
"""Train small quantized networks on scikit-learn's bundled 8x8 digits and write them as QONNX
(and one QCDQ) files, with the inputs and the reference executors' outputs, for the Rust tests of
accelforge-models (which then need no Python).

    python3 scripts/make_model_fixtures.py [--out models/tests/fixtures]

Needs numpy, scikit-learn, onnx, qonnx, onnxruntime (the committed fixtures were made with
numpy 2.4.6, scikit-learn 1.9.1, onnx 1.23.2, qonnx 1.0.0, onnxruntime 1.32.0; a rerun with
those reproduces every file byte for byte). The Rust tests need none of them. Deterministic (fixed seeds); the training is
plain numpy SGD with straight-through fake quantization, so no torch/Brevitas is needed, but the
graphs are laid out the way Brevitas exports them (Quant nodes on float weight initializers,
Transpose of a weight, a Shape->Gather->Unsqueeze->Concat->Reshape chain, BatchNormalization
between a layer and its activation quantizer, input preprocessing by a constant Mul).

Outputs (in --out):
  digits_x.npy        float32 (N, 1, 8, 8), pixel values 0..16 as the data set has them
  digits_y.npy        int64 (N,) labels
  <model>.onnx        the model (batch 1, as Brevitas exports)
  <model>.ref.npy     float32 (N, 10): the reference executor's output for every input
  manifest.json       per model: bits, scale kind, format, accuracy on the held-out split
The first N_TRAIN samples are the training split, the rest the held-out split.
"""

import argparse
import json
import os

import numpy as np
import onnx

import onnx_reference
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits

N_TRAIN = 1200
QONNX_DOMAIN = "qonnx.custom_op.general"
BN_EPS = 1e-5


# ---------------------------------------------------------------- fake quantization (training)
def qrange(bits, signed, narrow):
    if signed:
        lo = -(2 ** (bits - 1)) + (1 if narrow else 0)
        hi = 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    return lo, hi


def fq(x, scale, bits, signed, narrow=False):
    """Quant as qonnx computes it (round half to even, clip), forward only."""
    lo, hi = qrange(bits, signed, narrow)
    return (np.clip(np.round(x / scale), lo, hi) * scale).astype(np.float32)


def pow2_scale(maxabs, qmax):
    return np.float32(2.0 ** np.ceil(np.log2(max(maxabs, 1e-8) / qmax)))


def weight_scale(w, bits, kind):
    """Per-tensor power-of-two scale or per-output-channel float scale (axis 0)."""
    qmax = 2 ** (bits - 1) - 1
    # Below 8 bits the range is clipped (3 std at 4 bit, 1.2 std at 2 bit, ternary): clipping
    # the outliers keeps most weights off zero, which max scaling would not.
    k = {8: None, 4: 3.0, 2: 1.2}[bits]
    if kind == "pow2":
        m = np.abs(w).max() if k is None else min(np.abs(w).max(), k * w.std())
        return pow2_scale(m, qmax)
    w2 = w.reshape(w.shape[0], -1)
    m = np.abs(w2).max(axis=1)
    if k is not None:
        m = np.minimum(m, k * w2.std(axis=1))
    return (np.maximum(m, 1e-8) / qmax).astype(np.float32)


def bcast(scale, ndim):
    """A per-channel scale (axis 0 of a weight) shaped to broadcast against the weight."""
    s = np.asarray(scale, dtype=np.float32)
    return s.reshape((-1,) + (1,) * (ndim - 1)) if s.ndim == 1 else s


# ---------------------------------------------------------------- the networks (numpy)
def im2col(x, k=3, pad=1):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, k, k, h, w), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i : i + h, j : j + w]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * h * w, c * k * k)


class Net:
    """MLP: 64 -> H (BN, ReLU) -> 10.  CNN: conv3x3 1->C (BN, ReLU), maxpool 2, 128 -> H (ReLU) -> 10.
    Trained with fake-quantized weights and activations (straight-through estimator)."""

    def __init__(self, arch, bits, kind, rng):
        self.arch, self.bits, self.kind = arch, bits, kind
        self.hidden = 32
        if arch == "mlp":
            self.p = {
                "w1": rng.normal(0, 1 / 8, (self.hidden, 64)).astype(np.float32),
                "b1": np.zeros(self.hidden, np.float32),
                "w2": rng.normal(0, 1 / np.sqrt(self.hidden), (10, self.hidden)).astype(np.float32),
                "b2": np.zeros(10, np.float32),
            }
            bn_c = self.hidden
        else:
            self.ch = 8
            self.p = {
                "wc": rng.normal(0, 1 / 3, (self.ch, 1, 3, 3)).astype(np.float32),
                "bc": np.zeros(self.ch, np.float32),
                "w1": rng.normal(0, 1 / np.sqrt(128), (self.hidden, 128)).astype(np.float32),
                "b1": np.zeros(self.hidden, np.float32),
                "w2": rng.normal(0, 1 / np.sqrt(self.hidden), (10, self.hidden)).astype(np.float32),
                "b2": np.zeros(10, np.float32),
            }
            bn_c = self.ch
        # BN trained as a plain per-channel affine; real statistics are folded in at export.
        self.p["g"] = np.ones(bn_c, np.float32)
        self.p["be"] = np.zeros(bn_c, np.float32)
        self.in_scale = np.float32(2.0**-7)  # x/16 in [0, 1]: unsigned 8 bit, 2^-7 LSB
        self.act_scale = {}  # set by calibrate()

    def wq(self, name):
        w = self.p[name]
        if self.bits is None:
            return w
        return fq(w, bcast(weight_scale(w, self.bits, self.kind), w.ndim), self.bits, True, narrow=True)

    def aq(self, name, x):
        if self.bits is None or name not in self.act_scale:
            return x
        return fq(x, self.act_scale[name], self.bits, False)

    def forward(self, x, cache=None):
        c = {} if cache is None else cache
        xin = x / np.float32(16.0)
        if self.bits is not None:
            xin = fq(xin, self.in_scale, 8, False)
        if self.arch == "mlp":
            h0 = xin.reshape(len(x), 64)
            z = h0 @ self.wq("w1").T + self.p["b1"]
            zn = z * self.p["g"] + self.p["be"]
            r = np.maximum(zn, 0)
            a = self.aq("a1", r)
            c.update(h0=h0, z=z, zn=zn, a=a)
            o = a @ self.wq("w2").T + self.p["b2"]
            return o
        n = len(x)
        cols = im2col(xin)  # (n*64, 9)
        wc = self.wq("wc").reshape(self.ch, 9)
        z = (cols @ wc.T + self.p["bc"]).reshape(n, 8, 8, self.ch).transpose(0, 3, 1, 2)
        zn = z * self.p["g"][None, :, None, None] + self.p["be"][None, :, None, None]
        r = np.maximum(zn, 0)
        a0 = self.aq("a0", r)
        pooled = a0.reshape(n, self.ch, 4, 2, 4, 2).max(axis=(3, 5))
        f = pooled.reshape(n, 128)
        z1 = f @ self.wq("w1").T + self.p["b1"]
        r1 = np.maximum(z1, 0)
        a1 = self.aq("a1", r1)
        c.update(cols=cols, z=z, zn=zn, a0=a0, pooled=pooled, f=f, z1=z1, a1=a1)
        return a1 @ self.wq("w2").T + self.p["b2"]

    def calibrate(self, x):
        """Activation scales from the training data: power of two, or a float from the max."""
        if self.bits is None:
            return
        qmax = 2**self.bits - 1
        names = ["a1"] if self.arch == "mlp" else ["a0", "a1"]
        for name in names:
            saved = dict(self.act_scale)
            self.act_scale.pop(name, None)
            c = {}
            self.forward(x, c)
            pre = np.maximum(c["zn"] if (self.arch == "mlp" or name == "a0") else c["z1"], 0)
            m = float(np.percentile(pre, 99.9))
            self.act_scale = saved
            self.act_scale[name] = pow2_scale(m, qmax) if self.kind == "pow2" else np.float32(m / qmax)

    def step(self, x, y, lr):
        c = {}
        o = self.forward(x, c)
        n = len(x)
        e = np.exp(o - o.max(axis=1, keepdims=True))
        pr = e / e.sum(axis=1, keepdims=True)
        d = pr
        d[np.arange(n), y] -= 1
        d /= n
        g = {}
        if self.arch == "mlp":
            g["w2"] = d.T @ c["a"]
            g["b2"] = d.sum(0)
            da = d @ self.wq("w2")
            dzn = da * (c["zn"] > 0)
            g["g"] = (dzn * c["z"]).sum(0)
            g["be"] = dzn.sum(0)
            dz = dzn * self.p["g"]
            g["w1"] = dz.T @ c["h0"]
            g["b1"] = dz.sum(0)
        else:
            g["w2"] = d.T @ c["a1"]
            g["b2"] = d.sum(0)
            da1 = d @ self.wq("w2")
            dz1 = da1 * (c["z1"] > 0)
            g["w1"] = dz1.T @ c["f"]
            g["b1"] = dz1.sum(0)
            dpool = (dz1 @ self.wq("w1")).reshape(n, self.ch, 4, 4)
            a0 = c["a0"]
            # The gradient goes to one max per window (quantized activations tie often).
            win = a0.reshape(n, self.ch, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, self.ch, 4, 4, 4)
            onehot = np.eye(4, dtype=np.float32)[win.argmax(-1)] * dpool[..., None]
            da0 = onehot.reshape(n, self.ch, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, self.ch, 8, 8)
            dzn = da0 * (c["zn"] > 0)
            g["g"] = (dzn * c["z"]).sum((0, 2, 3))
            g["be"] = dzn.sum((0, 2, 3))
            dz = dzn * self.p["g"][None, :, None, None]
            dzf = dz.transpose(0, 2, 3, 1).reshape(n * 64, self.ch)
            g["wc"] = (dzf.T @ c["cols"]).reshape(self.ch, 1, 3, 3)
            g["bc"] = dzf.sum(0)
        for k, v in g.items():
            self.p[k] -= (lr * v).astype(np.float32)

    def train(self, x, y, rng, epochs, lr=0.1, batch=32):
        for ep in range(epochs):
            if self.bits is not None:  # every epoch: stale ranges clip and the STE then diverges
                self.calibrate(x)
            idx = rng.permutation(len(x))
            for i in range(0, len(x), batch):
                b = idx[i : i + batch]
                self.step(x[b], y[b], lr * (0.5 if ep > epochs * 0.7 else 1.0))
        self.calibrate(x)


# ---------------------------------------------------------------- ONNX export
class G:
    def __init__(self, qcdq):
        self.nodes, self.inits, self.n, self.qcdq = [], [], 0, qcdq

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, base, arr):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def node(self, op, inputs, base, domain=None, **attrs):
        out = self.name(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.name(op), domain=domain, **attrs))
        return out

    def quant(self, x, scale, bits, signed, narrow=False, axis=None, zp=0):
        """A Quant node (QONNX) or a QuantizeLinear/DequantizeLinear pair (QCDQ, 8 bit only,
        optionally with a nonzero zero point)."""
        scale = np.asarray(scale, np.float32)
        if self.qcdq:
            assert bits == 8, "QCDQ fixtures are int8"
            zp = np.full(scale.shape, zp, np.int8 if signed else np.uint8)
            s, z = self.const("scale", scale), self.const("zp", zp)
            kw = {"axis": axis} if axis is not None else {}
            q = self.node("QuantizeLinear", [x, s, z], "q", **kw)
            return self.node("DequantizeLinear", [q, s, z], "dq", **kw)
        s = self.const("scale", scale)
        z = self.const("zeropt", np.float32(0))
        b = self.const("bitwidth", np.float32(bits))
        return self.node("Quant", [x, s, z, b], "quant", domain=QONNX_DOMAIN, signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def qweight(self, w, scale, bits):
        """A weight as an exporter writes it: float initializer -> Quant (QONNX), or the integer
        tensor -> DequantizeLinear (QCDQ)."""
        s = bcast(scale, w.ndim)
        if self.qcdq:
            q = np.clip(np.round(w / s), -127, 127).astype(np.int8)
            sc = self.const("w_scale", np.asarray(scale, np.float32))
            zp = self.const("w_zp", np.zeros(np.shape(scale), np.int8))
            kw = {"axis": 0} if np.ndim(scale) == 1 else {}
            return self.node("DequantizeLinear", [self.const("w_int", q), sc, zp], "w", **kw)
        sc = np.asarray(scale, np.float32)
        if sc.ndim == 1:
            sc = sc.reshape(s.shape)
        s_n = self.const("scale", sc)
        z = self.const("zeropt", np.float32(0))
        b = self.const("bitwidth", np.float32(bits))
        return self.node("Quant", [self.const("w", w), s_n, z, b], "wq", domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")


def bn_stats(net, x):
    """Real BatchNormalization parameters equal to the trained affine, with the pre-BN statistics
    of the training data as mean/var (what a trained BN layer holds)."""
    c = {}
    net.forward(x, c)
    z = c["z"]
    axes = (0,) if z.ndim == 2 else (0, 2, 3)
    mean = z.mean(axis=axes).astype(np.float32)
    var = z.var(axis=axes).astype(np.float32)
    sd = np.sqrt(var + BN_EPS)
    gamma = (net.p["g"] * sd).astype(np.float32)
    beta = (net.p["be"] + net.p["g"] * mean).astype(np.float32)
    return gamma, beta, mean, var


def export(net, xtrain, qcdq=False, float_input=False, asym=False):
    """`asym` (QCDQ only): uint8 quantizers with nonzero zero points, as ONNX Runtime's static
    quantization writes them: the input (scale 1/240, zero point 10, so padding reads 10) and
    the logits (uint8 around zero point 128)."""
    g = G(qcdq)
    bits, kind = net.bits, net.kind
    x = "global_in"
    h = x
    if not float_input:
        h = g.node("Mul", [h, g.const("inv16", np.float32(1 / 16))], "pre")
        if asym:
            h = g.quant(h, np.float32(1 / 240), 8, False, zp=10)
        else:
            h = g.quant(h, net.in_scale, 8, False)
    ws = {k: weight_scale(net.p[k], bits, kind) for k in ("w1", "w2", "wc") if k in net.p}
    gamma, beta, mean, var = bn_stats(net, xtrain)
    # Float input (no input quantizer): the first layer sees the raw pixels, so its weights are
    # the trained ones divided by 16 (same function) with the matching scale.
    if net.arch == "mlp":
        shp = g.node("Shape", [h], "shape")
        n = g.node("Gather", [shp, g.const("idx0", np.int64(0))], "n", axis=0)
        n1 = g.node("Unsqueeze", [n, g.const("axes0", np.array([0], np.int64))], "n1")
        tgt = g.node("Concat", [n1, g.const("c64", np.array([64], np.int64))], "tgt", axis=0)
        h = g.node("Reshape", [h, tgt], "flat")
        w1 = net.p["w1"]
        s1 = ws["w1"]
        if float_input:
            w1, s1 = w1 / np.float32(16), (np.asarray(s1) / np.float32(16)).astype(np.float32)
        wq = g.qweight(w1, s1, bits)
        wt = g.node("Transpose", [wq], "wT", perm=[1, 0])
        h = g.node("MatMul", [h, wt], "mm")
        h = g.node("Add", [h, g.const("b1", net.p["b1"])], "bias")
        h = g.node("BatchNormalization", [h, g.const("bn_g", gamma), g.const("bn_b", beta), g.const("bn_m", mean), g.const("bn_v", var)], "bn", epsilon=BN_EPS)
        h = g.node("Relu", [h], "relu")
        h = g.quant(h, net.act_scale["a1"], bits, False)
    else:
        wc = net.p["wc"]
        sc = ws["wc"]
        if float_input:
            wc, sc = wc / np.float32(16), (np.asarray(sc) / np.float32(16)).astype(np.float32)
        wq = g.qweight(wc, sc, bits)
        h = g.node("Conv", [h, wq, g.const("bc", net.p["bc"])], "conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        h = g.node("BatchNormalization", [h, g.const("bn_g", gamma), g.const("bn_b", beta), g.const("bn_m", mean), g.const("bn_v", var)], "bn", epsilon=BN_EPS)
        h = g.node("Relu", [h], "relu")
        h = g.quant(h, net.act_scale["a0"], bits, False)
        h = g.node("MaxPool", [h], "pool", kernel_shape=[2, 2], strides=[2, 2])
        h = g.node("Flatten", [h], "flat", axis=1)
        wq = g.qweight(net.p["w1"], ws["w1"], bits)
        h = g.node("Gemm", [h, wq, g.const("b1", net.p["b1"])], "fc1", transB=1)
        h = g.node("Relu", [h], "relu")
        h = g.quant(h, net.act_scale["a1"], bits, False)
    wq = g.qweight(net.p["w2"], ws["w2"], bits)
    h = g.node("Gemm", [h, wq, g.const("b2", net.p["b2"])], "fc2", transB=1)
    # Output quantizer: 8 bit signed, power of two or float from the logits' range.
    c = {}
    logits = net.forward(xtrain, c)
    m = float(np.abs(logits).max())
    out_scale = pow2_scale(m, 127) if kind == "pow2" else np.float32(m / 127)
    if asym:
        h = g.quant(h, np.float32(2 * m / 255), 8, False, zp=128)
    else:
        h = g.quant(h, out_scale, 8, True)
    g.nodes[-1].output[0] = "global_out"
    inp = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 1, 8, 8])
    out = helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph(g.nodes, "digits_" + net.arch, [inp], [out], g.inits)
    opsets = [helper.make_opsetid("", 13)]
    if not qcdq:
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="accelforge-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_gap(net, xtrain, rng):
    """The CNN with GlobalAveragePool (then a quantizer) in place of max pooling and Flatten,
    and a new, untrained 8 -> 32 first dense layer (seeded): an exactness fixture for the
    pooling path, not a classifier worth its accuracy."""
    g = G(False)
    bits = net.bits
    gamma, beta, mean, var = bn_stats(net, xtrain)
    c = {}
    net.forward(xtrain, c)
    gap = c["a0"].mean(axis=(2, 3))
    gap_scale = pow2_scale(float(gap.max()), 2**bits - 1)
    gap_q = fq(gap, gap_scale, bits, False)
    w1 = rng.normal(0, 0.5, (net.hidden, net.ch)).astype(np.float32)
    s1 = weight_scale(w1, bits, "pow2")
    r1 = np.maximum(gap_q @ fq(w1, s1, bits, True, narrow=True).T, 0)
    a1_scale = pow2_scale(float(np.percentile(r1, 99.9)), 2**bits - 1)
    a1 = fq(r1, a1_scale, bits, False)
    s2 = weight_scale(net.p["w2"], bits, "pow2")
    logits = a1 @ fq(net.p["w2"], s2, bits, True, narrow=True).T + net.p["b2"]
    out_scale = pow2_scale(float(np.abs(logits).max()), 127)

    h = g.node("Mul", ["global_in", g.const("inv16", np.float32(1 / 16))], "pre")
    h = g.quant(h, net.in_scale, 8, False)
    wq = g.qweight(net.p["wc"], weight_scale(net.p["wc"], bits, "pow2"), bits)
    h = g.node("Conv", [h, wq, g.const("bc", net.p["bc"])], "conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    h = g.node("BatchNormalization", [h, g.const("bn_g", gamma), g.const("bn_b", beta), g.const("bn_m", mean), g.const("bn_v", var)], "bn", epsilon=BN_EPS)
    h = g.node("Relu", [h], "relu")
    h = g.quant(h, net.act_scale["a0"], bits, False)
    h = g.node("GlobalAveragePool", [h], "gap")
    h = g.quant(h, gap_scale, bits, False)
    h = g.node("Flatten", [h], "flat", axis=1)
    h = g.node("Gemm", [h, g.qweight(w1, s1, bits)], "fc1", transB=1)
    h = g.node("Relu", [h], "relu")
    h = g.quant(h, a1_scale, bits, False)
    h = g.node("Gemm", [h, g.qweight(net.p["w2"], s2, bits), g.const("b2", net.p["b2"])], "fc2", transB=1)
    h = g.quant(h, out_scale, 8, True)
    return finish(g, h, "digits_cnn_gap", False)


def export_bipolar(net, xtrain):
    """The MLP with binary weights: each weight tensor through a QONNX BipolarQuant (+1 for
    w >= 0, else -1, times the tensor's mean |w|), 8-bit activations."""
    g = G(False)

    def bipolar(w):
        scale = np.float32(np.abs(w).mean())
        wb = np.where(w >= 0, 1.0, -1.0).astype(np.float32) * scale
        node = g.node("BipolarQuant", [g.const("w", w), g.const("scale", scale)], "wb", domain=QONNX_DOMAIN)
        return node, wb

    gamma, beta, mean, var = bn_stats(net, xtrain)
    x = fq(xtrain / np.float32(16.0), net.in_scale, 8, False).reshape(len(xtrain), 64)
    w1n, w1b = bipolar(net.p["w1"])
    z = x @ w1b.T + net.p["b1"]
    zn = (z - mean) / np.sqrt(var + BN_EPS) * gamma + beta
    r = np.maximum(zn, 0)
    a1_scale = pow2_scale(float(np.percentile(r, 99.9)), 255)
    a1 = fq(r, a1_scale, 8, False)
    w2n, w2b = bipolar(net.p["w2"])
    logits = a1 @ w2b.T + net.p["b2"]
    out_scale = pow2_scale(float(np.abs(logits).max()), 127)

    h = g.node("Mul", ["global_in", g.const("inv16", np.float32(1 / 16))], "pre")
    h = g.quant(h, net.in_scale, 8, False)
    h = g.node("Flatten", [h], "flat", axis=1)
    h = g.node("Gemm", [h, w1n, g.const("b1", net.p["b1"])], "fc1", transB=1)
    h = g.node("BatchNormalization", [h, g.const("bn_g", gamma), g.const("bn_b", beta), g.const("bn_m", mean), g.const("bn_v", var)], "bn", epsilon=BN_EPS)
    h = g.node("Relu", [h], "relu")
    h = g.quant(h, a1_scale, 8, False)
    h = g.node("Gemm", [h, w2n, g.const("b2", net.p["b2"])], "fc2", transB=1)
    h = g.quant(h, out_scale, 8, True)
    return finish(g, h, "digits_mlp_bipolar", False)


def finish(g, h, name, qcdq):
    """Names the graph's output, wraps the nodes into a checked model (batch 1)."""
    g.nodes[-1].output[0] = "global_out"
    inp = helper.make_tensor_value_info("global_in", TensorProto.FLOAT, [1, 1, 8, 8])
    out = helper.make_tensor_value_info("global_out", TensorProto.FLOAT, [1, 10])
    graph = helper.make_graph(g.nodes, name, [inp], [out], g.inits)
    opsets = [helper.make_opsetid("", 13)]
    if not qcdq:
        opsets.append(helper.make_opsetid(QONNX_DOMAIN, 1))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="accelforge-fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- reference execution
def run_reference(model, x, qcdq):
    """The reference executor's outputs (scripts/onnx_reference.py picks qonnx or onnxruntime
    from the graph itself; `qcdq` is kept for the callers' readability)."""
    out = onnx_reference.run_reference(model, x)
    assert onnx_reference.is_qonnx(model) != qcdq
    return out


def error_fixtures(out):
    """Models the Rust reader must refuse with a clear error: an op it does not support (the
    MLP's Relu replaced by Elu) and a non-batch axis with a symbolic size."""
    m = onnx.load(os.path.join(out, "mlp_w8a8_pow2.onnx"))
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Elu"
    onnx.save(m, os.path.join(out, "err_unknown_op.onnx"))
    m = onnx.load(os.path.join(out, "mlp_w8a8_pow2.onnx"))
    d = m.graph.input[0].type.tensor_type.shape.dim[2]
    d.ClearField("dim_value")
    d.dim_param = "H"
    onnx.save(m, os.path.join(out, "err_dynamic.onnx"))
    # Not an error: a symbolic batch axis (torch.onnx dynamic_axes); same outputs as the MLP.
    m = onnx.load(os.path.join(out, "mlp_w8a8_pow2.onnx"))
    for v in (m.graph.input[0], m.graph.output[0]):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_value")
        d.dim_param = "N"
    onnx.save(m, os.path.join(out, "mlp_w8a8_pow2_dynbatch.onnx"))
    # Flatten on an axis beyond the rank (must be an error, not a crash).
    m = onnx.load(os.path.join(out, "cnn_w8a8_pow2.onnx"))
    for n in m.graph.node:
        if n.op_type == "Flatten":
            n.attribute[0].i = 7
    onnx.save(m, os.path.join(out, "err_flatten_axis.onnx"))
    # A 20-bit activation quantizer (a million requantization levels).
    m = onnx.load(os.path.join(out, "mlp_w8a8_pow2.onnx"))
    relu = next(n for n in m.graph.node if n.op_type == "Relu")
    q = next(n for n in m.graph.node if n.op_type == "Quant" and n.input[0] == relu.output[0])
    for t in m.graph.initializer:
        if t.name == q.input[3]:
            t.CopyFrom(numpy_helper.from_array(np.float32(20), t.name))
    onnx.save(m, os.path.join(out, "err_wide_activation.onnx"))


def softmax_fixtures(out, x, manifest):
    """Classifiers that end in a Softmax, as exporters often write them: the 8-bit QONNX MLP and
    the QCDQ CNN with a Softmax over the logits appended. Their outputs are floats that the
    references compute with their own vectorised expf, so the tests report the last-bit
    differences instead of asserting equality."""
    yte = np.load(os.path.join(out, "digits_y.npy"))[N_TRAIN:]
    for base, qcdq in (("mlp_w8a8_pow2", False), ("cnn_int8_qcdq", True)):
        m = onnx.load(os.path.join(out, base + ".onnx"))
        last = m.graph.node[-1]
        last.output[0] = "logits"
        m.graph.node.append(helper.make_node("Softmax", ["logits"], ["global_out"], name="softmax", axis=-1))
        onnx.checker.check_model(m)
        name = base + "_softmax"
        onnx.save(m, os.path.join(out, name + ".onnx"))
        ref = run_reference(m, x, qcdq)
        np.save(os.path.join(out, name + ".ref.npy"), ref)
        acc = float((ref[N_TRAIN:].argmax(1) == yte).mean())
        info = dict(manifest["models"][base])
        info.update(accuracy=acc, output="softmax")
        manifest["models"][name] = info
        print(f"{name}: {acc:.4f}")
    # A Softmax in the middle (the MLP's Relu replaced): refused, naming the node.
    m = onnx.load(os.path.join(out, "mlp_w8a8_pow2.onnx"))
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Softmax"
    onnx.save(m, os.path.join(out, "err_softmax_middle.onnx"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "models", "tests", "fixtures"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    d = load_digits()
    rng = np.random.default_rng(15)
    perm = rng.permutation(len(d.target))
    x = d.images[perm].astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target[perm].astype(np.int64)
    np.save(os.path.join(args.out, "digits_x.npy"), x)
    np.save(os.path.join(args.out, "digits_y.npy"), y)
    xtr, ytr, xte, yte = x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]
    manifest = {"n_train": N_TRAIN, "n": int(len(x)), "models": {}}
    specs = [
        # name, arch, bits, scale kind, qcdq, float input
        ("mlp_w8a8_pow2", "mlp", 8, "pow2", False, False),
        ("mlp_w4a4_pow2", "mlp", 4, "pow2", False, False),
        ("mlp_w2a2_pow2", "mlp", 2, "pow2", False, False),
        ("mlp_w8a8_float", "mlp", 8, "float", False, False),
        ("mlp_w8a8_pow2_floatin", "mlp", 8, "pow2", False, True),
        ("cnn_w8a8_pow2", "cnn", 8, "pow2", False, False),
        ("cnn_w4a4_pow2", "cnn", 4, "pow2", False, False),
        ("cnn_w2a2_pow2", "cnn", 2, "pow2", False, False),
        ("cnn_w8a8_float", "cnn", 8, "float", False, False),
        ("cnn_int8_qcdq", "cnn", 8, "float", True, False),
    ]
    # QCDQ with uint8 activations and nonzero zero points (input and output).
    asym_specs = {"cnn_uint8_qcdq_zp": ("cnn", 8, "float", True, False)}
    for arch in ("mlp", "cnn"):
        fnet = Net(arch, None, "pow2", np.random.default_rng(1))
        fnet.train(xtr, ytr, np.random.default_rng(2), epochs=60)
        acc = float((fnet.forward(xte).argmax(1) == yte).mean())
        manifest["float_" + arch] = {"accuracy": acc}
        print(f"float {arch}: {acc:.4f}")
    specs += [(name,) + spec for name, spec in asym_specs.items()]
    def trained(arch, bits=8, kind="pow2"):
        net = Net(arch, bits, kind, np.random.default_rng(1))
        net.train(xtr, ytr, np.random.default_rng(2), epochs=60)
        return net

    for name, arch, bits, kind, qcdq, fin in specs:
        net = trained(arch, bits, kind)
        model = export(net, xtr, qcdq=qcdq, float_input=fin, asym=name in asym_specs)
        onnx.save(model, os.path.join(args.out, name + ".onnx"))
        ref = run_reference(model, x, qcdq)
        np.save(os.path.join(args.out, name + ".ref.npy"), ref)
        acc = float((ref[N_TRAIN:].argmax(1) == yte).mean())
        manifest["models"][name] = {"arch": arch, "bits": bits, "scales": kind, "format": "qcdq" if qcdq else "qonnx", "float_input": fin, "accuracy": acc, "reference": "onnxruntime" if qcdq else "qonnx"}
        print(f"{name}: {acc:.4f}")
    # Exactness fixtures for the pooling and binary-weight paths (their accuracy is recorded but
    # not a goal: the GAP head is untrained, the binary MLP is the 8-bit one binarized).
    extra = {
        "cnn_w8a8_gap": ("cnn", lambda: export_gap(trained("cnn"), xtr, np.random.default_rng(3))),
        "mlp_w1a8_bipolar": ("mlp", lambda: export_bipolar(trained("mlp"), xtr)),
    }
    for name, (arch, make) in extra.items():
        model = make()
        onnx.save(model, os.path.join(args.out, name + ".onnx"))
        ref = run_reference(model, x, False)
        np.save(os.path.join(args.out, name + ".ref.npy"), ref)
        acc = float((ref[N_TRAIN:].argmax(1) == yte).mean())
        manifest["models"][name] = {"arch": arch, "bits": 8, "scales": "pow2", "format": "qonnx", "float_input": False, "accuracy": acc, "reference": "qonnx"}
        print(f"{name}: {acc:.4f}")
    error_fixtures(args.out)
    softmax_fixtures(args.out, x, manifest)
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()

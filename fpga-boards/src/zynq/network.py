"""Runs an imported network layer by layer through this bundle's systolic accelerator(s).

Written by `accelforge gen MODEL.onnx`. `network.json` lists the engines (one systolic array
each, with its driver and stream layout; several when a mixed-precision choice has them) and the
stages in order, each array stage naming its engine; `weights/`
holds each array layer's integer weights B (K x N, one column per output channel) and its
per-channel requantization table (multiplier, offset). Host stages run in numpy: the input
quantizer (with the graph's preprocessing), im2col, max pooling, global average pooling and the
final dequantization. Every GEMM runs on the accelerator through the PYNQ driver, which also
requantizes per output channel: a table-load command sends the layer's table, then the GEMM
commands carry the layer's shift, rounding and clamp bounds, and the output stream holds the
layer's output integers. Operands are packed into the input stream exactly as the core reads
them. The integers are those of `accelforge run --engine golden`, so the outputs are identical
to it.

    from network import Network
    net = Network()               # loads the overlay (bitstream next to this file) and
                                  # attaches a driver to every engine
    y = net.run(x)                # x: float32 (N, *input shape), y: float32 (N, outputs)
"""
import importlib
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _pack(lanes, width, stream_bits):
    """Packs (beats, lanes) integers, lane l in bits [l*width, (l+1)*width) of a beat (two's
    complement), into uint8 (beats, stream_bits // 8), little-endian as the stream carries it."""
    lanes = np.ascontiguousarray(lanes, dtype=np.int64)
    beats, per = lanes.shape
    codes = lanes.view(np.uint64) & np.uint64((1 << width) - 1)
    shifts = np.arange(width, dtype=np.uint64)
    bits = ((codes[:, :, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    row = np.zeros((beats, stream_bits), dtype=np.uint8)
    row[:, : per * width] = bits.reshape(beats, per * width)
    return np.packbits(row, axis=1, bitorder="little")


def _unpack(data, per, width, signed, stream_bits):
    """The inverse of `_pack`: (beats, per) int64 from the stream bytes."""
    beats = np.asarray(data, dtype=np.uint8).reshape(-1, stream_bits // 8)
    bits = np.unpackbits(beats, axis=1, bitorder="little")[:, : per * width]
    bits = bits.reshape(len(beats), per, width).astype(np.uint64)
    codes = (bits << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    vals = codes.view(np.int64)
    if signed and width < 64:
        vals = vals - (((vals >> (width - 1)) & 1) << width)
    return vals


def _ceil(a, b):
    return -(-a // b)


class ArrayGeometry:
    """The systolic core's stream layout (network.json "array"): which operand beats it reads
    in which order, and how its output beats are laid out."""

    def __init__(self, d):
        self.rows, self.cols = d["rows"], d["cols"]
        self.ws = d["dataflow"] == "ws"
        self.stream_bits = d["stream_bits"]
        self.chunk = d["max_n_chunk"]
        self.m_block = d["ws_m_block"]
        self.wa, self.wb, self.wo = d["a_bits"], d["b_bits"], d["out_bits"]
        self.ea, self.eb, self.eo = d["a_per_beat"], d["b_per_beat"], d["out_per_beat"]
        self.out_signed = d["out_signed"]
        # The per-channel requantizer's table entries (None: the array streams accumulators).
        self.requant = d.get("requant")

    def table_stream(self, table):
        """The input stream (uint8) of a table-load command: per channel the word
        mul | add << mul_bits (two's complement fields), in beats_per_entry beats, low first."""
        rq = self.requant
        mb, ab, per = rq["mul_bits"], rq["add_bits"], rq["beats_per_entry"]
        bpb = self.stream_bits // 8
        out = bytearray()
        for mul, add in np.asarray(table, dtype=np.int64).tolist():
            word = (mul & ((1 << mb) - 1)) | ((add & ((1 << ab) - 1)) << mb)
            out += word.to_bytes(per * bpb, "little")
        return np.frombuffer(bytes(out), dtype=np.uint8)

    def _chunks(self, n):
        return [(j * self.chunk, min(self.chunk, n - j * self.chunk)) for j in range(_ceil(n, self.chunk))]

    def _tiles(self, n0, ncw):
        for t in range(_ceil(ncw, self.cols)):
            c0 = n0 + t * self.cols
            yield c0, min(self.cols, n0 + ncw - c0)

    def _beats(self, groups, per, width):
        """Each row of `groups` split into beats of `per` lanes (the last one zero-filled)."""
        g, length = groups.shape
        nb = _ceil(length, per)
        padded = np.zeros((g, nb * per), dtype=np.int64)
        padded[:, :length] = groups
        return _pack(padded.reshape(g * nb, per), width, self.stream_bits)

    def input_stream(self, a, b):
        """The input stream (uint8) of one command C = A (M x K) . B (K x N)."""
        m, k = a.shape
        n = b.shape[1]
        parts = []
        for n0, ncw in self._chunks(n):
            if self.ws:
                # Weight-stationary: per block of M rows and step of `rows` reduction indices,
                # the B rows of every column tile, then the A rows of the block.
                for m0 in range(0, m, self.m_block):
                    mv = min(self.m_block, m - m0)
                    for k0 in range(0, k, self.rows):
                        kv = min(self.rows, k - k0)
                        for c0, cv in self._tiles(n0, ncw):
                            parts.append(self._beats(b[k0 : k0 + kv, c0 : c0 + cv], self.eb, self.wb))
                        parts.append(self._beats(a[m0 : m0 + mv, k0 : k0 + kv], self.ea, self.wa))
                continue
            # Output-stationary: the chunk's B rows tile by tile, then A column-wise per row tile.
            for c0, cv in self._tiles(n0, ncw):
                parts.append(self._beats(b[:, c0 : c0 + cv], self.eb, self.wb))
            full = m // self.rows
            if full:
                blk = a[: full * self.rows].reshape(full, self.rows, k).transpose(0, 2, 1)
                parts.append(self._beats(blk.reshape(full * k, self.rows), self.ea, self.wa))
            if m % self.rows:
                parts.append(self._beats(a[full * self.rows :].T, self.ea, self.wa))
        return np.concatenate(parts).reshape(-1)

    def _output_blocks(self, m, n):
        for n0, ncw in self._chunks(n):
            for r0 in range(0, m, self.rows):
                rv = min(self.rows, m - r0)
                for c0, cv in self._tiles(n0, ncw):
                    yield r0, rv, c0, cv, _ceil(cv, self.eo)

    def output_beats(self, m, n):
        return sum(rv * nb for _, rv, _, _, nb in self._output_blocks(m, n))

    def unpack_output(self, data, m, n):
        """C (M x N, int64) from the output stream bytes."""
        vals = _unpack(data, self.eo, self.wo, self.out_signed, self.stream_bits)
        c = np.zeros((m, n), dtype=np.int64)
        pos = 0
        for r0, rv, c0, cv, nb in self._output_blocks(m, n):
            blk = vals[pos : pos + rv * nb].reshape(rv, nb * self.eo)
            c[r0 : r0 + rv, c0 : c0 + cv] = blk[:, :cv]
            pos += rv * nb
        if pos != len(vals):
            raise RuntimeError("output stream holds %d beats, expected %d" % (len(vals), pos))
        return c


def quantize_input(x, st):
    """The graph's preprocessing and input quantizer, in float32 in the graph's order."""
    v = np.asarray(x, dtype=np.float32)
    for op, c in st["pre"]:
        c = np.float32(c)
        v = {"mul": lambda: v * c, "div": lambda: v / c, "add": lambda: v + c, "sub": lambda: v - c}[op]()
    q = np.round(v / np.float32(st["scale"])) + st["zp"]
    return np.clip(q, st["lo"], st["hi"]).astype(np.int64)


def im2col(cur, g):
    """(N*OH*OW, C*KH*KW) patches of (N, C*H*W) activations, K ordered c, ky, kx; padded taps
    read `pad` (the input's zero point: real 0)."""
    n = cur.shape[0]
    x = cur.reshape(n, g["c"], g["h"], g["w"])
    hp = max((g["oh"] - 1) * g["sh"] + g["kh"], g["pt"] + g["h"])
    wp = max((g["ow"] - 1) * g["sw"] + g["kw"], g["pl"] + g["w"])
    xp = np.full((n, g["c"], hp, wp), g["pad"], dtype=np.int64)
    xp[:, :, g["pt"] : g["pt"] + g["h"], g["pl"] : g["pl"] + g["w"]] = x
    cols = np.empty((n, g["oh"], g["ow"], g["c"], g["kh"], g["kw"]), dtype=np.int64)
    for ky in range(g["kh"]):
        for kx in range(g["kw"]):
            win = xp[:, :, ky : ky + g["sh"] * (g["oh"] - 1) + 1 : g["sh"], kx : kx + g["sw"] * (g["ow"] - 1) + 1 : g["sw"]]
            cols[:, :, :, :, ky, kx] = win.transpose(0, 2, 3, 1)
    return cols.reshape(n * g["oh"] * g["ow"], g["c"] * g["kh"] * g["kw"])


def maxpool(cur, g):
    n = cur.shape[0]
    x = cur.reshape(n, g["c"], g["h"], g["w"])
    out = np.full((n, g["c"], g["oh"], g["ow"]), np.iinfo(np.int64).min, dtype=np.int64)
    for ky in range(g["kh"]):
        for kx in range(g["kw"]):
            win = x[:, :, ky : ky + g["sh"] * (g["oh"] - 1) + 1 : g["sh"], kx : kx + g["sw"] * (g["ow"] - 1) + 1 : g["sw"]]
            out = np.maximum(out, win)
    return out.reshape(n, -1)


def requantize(acc, rq):
    """Per output channel (column of `acc`): lo + the number of thresholds passed (ascending
    thresholds pass when acc >= t, descending ones when acc <= t), or a constant; then Relu,
    then the output zero point."""
    q = np.empty_like(acc)
    for c, kind in enumerate(rq["kinds"]):
        t = rq["thresholds"][c]
        if kind > 0:
            q[:, c] = rq["lo"] + np.searchsorted(t, acc[:, c], side="right")
        elif kind < 0:
            q[:, c] = rq["lo"] + len(t) - np.searchsorted(t[::-1], acc[:, c], side="left")
        else:
            q[:, c] = rq["const"][c]
    q = np.maximum(q, 0) if rq["relu"] else q
    return q + rq["zp"]


def avgpool(cur, g, rq):
    """Global average pooling: each channel's integer sum, requantized (the mean's scale is in
    the thresholds)."""
    n = cur.shape[0]
    sums = cur.reshape(n, g["c"], g["h"] * g["w"]).sum(axis=2)
    return requantize(sums, rq)


class Engine:
    """One accelerator of the block design: its driver instance, driver module and stream
    layout (network.json "engines"), and the commands it has run."""

    def __init__(self, accel, driver, geometry):
        self.accel, self.driver, self.geometry = accel, driver, geometry
        if driver.IN_BEAT_BYTES * 8 != geometry.stream_bits:
            raise RuntimeError("the driver's stream width does not match network.json")

    def load_table(self, table):
        """Loads a layer's (multiplier, offset) table into the array's requantizer: a command
        that only reads its input (m and k are ignored; given to pass the driver's limits)."""
        n = len(table)
        self.accel.run(self.geometry.table_stream(table), out_beats=0, op=1, n=n, m=1, k=1)
        return 1

    def gemm(self, a, b, rq):
        """The layer's output integers, requantized per channel by the array: its table
        loaded, then Q(A . B) in commands the core and the DMA accept; and the number of
        commands."""
        commands = self.load_table(rq["table"])
        settings = dict(op=0, shift=rq["shift"], round=rq["round"], lo=rq["lo"], hi=rq["hi"])
        m = a.shape[0]
        step = min(m, self.driver.ARG_LIMITS["m"][1])
        out = []
        m0 = 0
        while m0 < m:
            rows = min(step, m - m0)
            part = a[m0 : m0 + rows]
            data = self.geometry.input_stream(part, b)
            beats = self.geometry.output_beats(rows, b.shape[1])
            limit = self.driver.MAX_TRANSFER_BYTES
            if rows > 1 and max(data.nbytes, beats * self.driver.OUT_BEAT_BYTES) > limit:
                step = rows // 2
                continue
            y = self.accel.run(data, out_beats=beats, m=rows, k=a.shape[1], n=b.shape[1], **settings)
            out.append(self.geometry.unpack_output(y, rows, b.shape[1]))
            commands += 1
            m0 += rows
        return np.concatenate(out), commands


class Network:
    """The network of network.json on the accelerators (`accel`: a driver instance, or a list
    with one per engine; by default each engine's driver class on the overlay next to this file,
    the first one loading the bitstream and the others attaching to it)."""

    def __init__(self, accel=None, bitfile=None, download=True, directory=HERE):
        with open(os.path.join(directory, "network.json")) as f:
            self.spec = json.load(f)
        self.stages = []
        for st in self.spec["stages"]:
            st = dict(st)
            if "weights" in st:
                st["b"] = np.load(os.path.join(directory, st["weights"])).astype(np.int64)
            if "requant" in st:
                rq = dict(st["requant"])
                rq["thresholds"] = np.load(os.path.join(directory, rq["thresholds"]))
                st["requant"] = rq
            if "array_requant" in st:
                rq = dict(st["array_requant"])
                rq["table"] = np.load(os.path.join(directory, rq["table"])).astype(np.int64)
                st["array_requant"] = rq
            self.stages.append(st)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        specs = self.spec["engines"]
        if accel is None:
            accels = []
        elif isinstance(accel, (list, tuple)):
            accels = list(accel)
        else:
            accels = [accel]
        if accels and len(accels) != len(specs):
            raise ValueError("%d driver instances for %d engines" % (len(accels), len(specs)))
        self.engines = []
        for i, e in enumerate(specs):
            driver = importlib.import_module(e["driver"]["module"])
            if accels:
                inst = accels[i]
            else:
                cls = getattr(driver, e["driver"]["class"])
                inst = cls(bitfile=bitfile, download=download and i == 0)
            self.engines.append(Engine(inst, driver, ArrayGeometry(e["array"])))
        self.commands = 0
        # Commands per engine.
        self.engine_commands = [0] * len(self.engines)

    def gemm(self, a, b, rq, engine=0):
        """Q(A . B) of one array layer on its engine (see Engine.gemm)."""
        c, commands = self.engines[engine].gemm(a, b, rq)
        self.commands += commands
        self.engine_commands[engine] += commands
        return c

    def run(self, x):
        """float32 outputs (N, out_len) of float32 inputs (N, *input shape)."""
        x = np.asarray(x, dtype=np.float32)
        shape = tuple(self.spec["input_shape"][1:])
        if x.shape[1:] != shape:
            raise ValueError("inputs have shape %s; the model takes (N, %s)" % (x.shape, ", ".join(map(str, shape))))
        if not np.isfinite(x).all():
            raise ValueError("inputs hold NaN or infinity, which the integer network cannot represent")
        n = x.shape[0]
        cur = None
        for st in self.stages:
            op = st["op"]
            if op == "input-quant":
                cur = quantize_input(x.reshape(n, -1), st)
            elif op == "relu":
                cur = np.maximum(cur, 0)
            elif op == "maxpool":
                cur = maxpool(cur, st["geom"])
            elif op == "avgpool":
                cur = avgpool(cur, st["geom"], st["requant"])
            elif op == "dense":
                cur = self.gemm(cur.reshape(n, -1), st["b"], st["array_requant"], st["engine"])
            elif op == "conv":
                g = st["geom"]
                q = self.gemm(im2col(cur, g), st["b"], st["array_requant"], st["engine"])
                cur = q.reshape(n, g["oh"] * g["ow"], g["o"]).transpose(0, 2, 1).reshape(n, -1)
            else:
                raise ValueError("unknown stage %r in network.json" % op)
        y = (cur - self.spec["out_zp"]).astype(np.float32) * np.float32(self.spec["out_scale"])
        if self.spec.get("softmax"):
            # The graph's final Softmax, in float32 as the golden engine computes it (numpy's
            # exp may differ from it in the last bit).
            e = np.exp(y - y.max(axis=1, keepdims=True))
            y = e * (np.float32(1) / e.sum(axis=1, keepdims=True, dtype=np.float32))
        return y

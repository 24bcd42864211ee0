"""The PYNQ stand-in (fpga-boards/tests/fake_pynq.py, copied as pynq.py) with a systolic GEMM
behind the DMA: the fake accelerator reads the m, k, n registers, decodes the input stream
beat by beat in the output-stationary order the core reads it (B rows of each column tile of a
chunk, then A column-wise per row tile), multiplies with numpy integers and encodes C in the
core's output order. With a per-channel requantizer (network.json "array" has "requant"), an
`op = 1` command loads the (multiplier, offset) table from the stream and returns nothing, and
an `op = 0` command requantizes each column as the template documents it
(accel-templates/src/systolic/requant.rs). Written from those descriptions, independently of
network.py, with Python integers, so a packing or arithmetic mistake in network.py shows up as
wrong results.
"""
import numpy as np

import pynq


def _lanes(beat, per, width, signed):
    word = int.from_bytes(bytes(beat), "little")
    out = []
    for l in range(per):
        v = (word >> (l * width)) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


# DMA cell name -> the GEMM its accelerator computes (see install).
_ENGINES = {}


def _dispatch(self, regs):
    _ENGINES[self.name](self, regs)


def install(driver, array, a_signed, b_signed, dma="axi_dma_0"):
    """Make the DMA cell `dma` of every Overlay compute GEMMs for the driver module's
    registers and the array's stream layout (one call per engine of the bundle)."""
    R, C = array["rows"], array["cols"]
    assert array["dataflow"] == "os", "the stand-in decodes the output-stationary stream"
    nc, sb = array["max_n_chunk"], array["stream_bits"]
    ea, eb, eo = array["a_per_beat"], array["b_per_beat"], array["out_per_beat"]
    wa, wb, wo = array["a_bits"], array["b_bits"], array["out_bits"]
    bpb = sb // 8
    stats = {"commands": 0, "macs": 0, "tables": 0}
    rq = array.get("requant")
    state = {"table": None}

    def reg(regs, name, signed_bits=0):
        v = regs.get(driver.ARGS[name][0], 0)
        if signed_bits and v >> (signed_bits - 1):
            v -= 1 << signed_bits
        return v

    def load_table(src, n):
        mb, ab, per = rq["mul_bits"], rq["add_bits"], rq["beats_per_entry"]
        assert len(src) == n * per, (len(src), n, per)
        table = []
        for e in range(n):
            word = int.from_bytes(bytes(src[e * per : (e + 1) * per].reshape(-1)), "little")
            mul, add = word & ((1 << mb) - 1), (word >> mb) & ((1 << ab) - 1)
            mul -= (mul >> (mb - 1)) << mb
            add -= (add >> (ab - 1)) << ab
            table.append((mul, add))
        state["table"] = table
        stats["tables"] += 1

    def requant(acc, col, regs):
        """One accumulator of column `col` through the per-channel requantizer."""
        mul, add = state["table"][col]
        shift, rnd = reg(regs, "shift"), reg(regs, "round")
        v = int(acc) * mul + add
        q = v >> shift
        if rnd and shift > 0:
            rem, half = v & ((1 << shift) - 1), 1 << (shift - 1)
            if rem > half or (rem == half and q & 1):
                q += 1
        omin, omax = (-(1 << (wo - 1)), (1 << (wo - 1)) - 1) if array["out_signed"] else (0, (1 << wo) - 1)
        lo, hi = max(reg(regs, "lo", 32), omin), min(reg(regs, "hi", 32), omax)
        return min(max(q, lo), hi)

    def run_accelerator(self, regs):
        m, k, n = (regs[driver.ARGS[x][0]] for x in ("m", "k", "n"))
        src = np.asarray(self.sendchannel.buf).reshape(-1, bpb)
        if rq is not None and reg(regs, "op") == 1:
            load_table(src, n)
            return
        if rq is not None:
            assert state["table"] is not None and len(state["table"]) >= n, "no table loaded"
        it = iter(src)
        a = np.zeros((m, k), dtype=np.int64)
        b = np.zeros((k, n), dtype=np.int64)
        out = []
        for n0 in range(0, n, nc):
            ncw = min(nc, n - n0)
            for c0 in range(n0, n0 + ncw, C):
                cv = min(C, n0 + ncw - c0)
                for kk in range(k):
                    for l0 in range(0, cv, eb):
                        vals = _lanes(next(it), eb, wb, b_signed)
                        for l in range(l0, min(l0 + eb, cv)):
                            b[kk, c0 + l] = vals[l - l0]
            for r0 in range(0, m, R):
                rv = min(R, m - r0)
                for kk in range(k):
                    for l0 in range(0, rv, ea):
                        vals = _lanes(next(it), ea, wa, a_signed)
                        for l in range(l0, min(l0 + ea, rv)):
                            a[r0 + l, kk] = vals[l - l0]
            c = a @ b
            if rq is not None:
                c = c.astype(object)
                for r in range(m):
                    for col in range(n0, n0 + ncw):
                        c[r, col] = requant(c[r, col], col, regs)
            for r0 in range(0, m, R):
                rv = min(R, m - r0)
                for c0 in range(n0, n0 + ncw, C):
                    cv = min(C, n0 + ncw - c0)
                    for row in range(rv):
                        for l0 in range(0, cv, eo):
                            word = 0
                            for l in range(l0, min(l0 + eo, cv)):
                                word |= (int(c[r0 + row, c0 + l]) & ((1 << wo) - 1)) << ((l - l0) * wo)
                            out.append(word.to_bytes(bpb, "little"))
        rest = sum(1 for _ in it)
        assert rest == 0, "%d input beats left over" % rest
        dst = self.recvchannel.buf
        data = np.frombuffer(b"".join(out), dtype=np.uint8)
        assert data.nbytes == dst.nbytes, (data.nbytes, dst.nbytes)
        dst[:] = data
        stats["commands"] += 1
        stats["macs"] += m * k * n

    _ENGINES[dma] = run_accelerator
    pynq.FakeDMA.run_accelerator = _dispatch
    return stats

"""A stand-in for the parts of PYNQ the generated driver uses, for running it off-board.

The fake accelerator copies the input stream to the output stream (truncated or zero-padded),
adds the `rows` argument to every output byte, and sets ap_done when started. Every register
access is logged so the test can check offsets and order.

An Overlay has the cells the bundle's block design has, as the real one learns them from the
.hwh: those `manifest.json` beside the bitstream lists (every engine's accelerator and DMA), or
`accel_0` and `axi_dma_0` without one.
"""
import json
import os

import numpy as np

LOG = []
_NEXT_ADDR = [0x1000_0000]


class PynqBuffer(np.ndarray):
    def flush(self):
        LOG.append(("flush", self.nbytes))

    def invalidate(self):
        LOG.append(("invalidate", self.nbytes))

    def freebuffer(self):
        LOG.append(("free", self.nbytes))


def allocate(shape, dtype):
    buf = np.zeros(shape, dtype=dtype).view(PynqBuffer)
    # A page-aligned fake physical address, different for every buffer.
    buf.physical_address = _NEXT_ADDR[0]
    _NEXT_ADDR[0] += (buf.nbytes + 0xFFF) // 0x1000 * 0x1000 + 0x1000
    LOG.append(("allocate", buf.nbytes, buf.physical_address))
    return buf


class FakeIP:
    def __init__(self):
        self.regs = {}
        self.dma = None
        # Called with the registers when ap_start is written (a test can play a rejection).
        self.on_start = None

    def write(self, offset, value):
        LOG.append(("write", offset, value))
        assert 0 <= value < 2**32, value
        self.regs[offset] = value
        if offset == 0x00 and value & 1:
            self.dma.run_accelerator(self.regs)
            # A transfer serves one command: a later command without a receive transfer
            # (a table load) must not find this one's buffer.
            self.dma.sendchannel.buf = None
            self.dma.recvchannel.buf = None
            self.regs[0x00] = 0x0E  # done | idle | ready
            if self.on_start is not None:
                self.on_start(self.regs)

    def read(self, offset):
        value = self.regs.get(offset, 0)
        if offset == 0x00:
            self.regs[0x00] = value & ~0x02  # ap_done is clear-on-read, as in HLS
        return value


class Channel:
    def __init__(self, name):
        self.name = name
        self.buf = None

    def transfer(self, buf):
        LOG.append(("transfer", self.name, buf.nbytes))
        self.buf = buf

    def wait(self):
        LOG.append(("wait", self.name))


class FakeDMA:
    def __init__(self, name="axi_dma_0"):
        self.name = name
        self.sendchannel = Channel("send")
        self.recvchannel = Channel("recv")

    def run_accelerator(self, regs):
        src = np.asarray(self.sendchannel.buf)
        dst = self.recvchannel.buf
        if dst is None:
            return
        n = min(src.nbytes, dst.nbytes)
        dst[:] = 0
        dst[:n] = src[:n]
        dst[:] = (dst + regs.get(0x10, 0)) & 0xFF


class Overlay:
    def __init__(self, path, download=True):
        LOG.append(("overlay", path, download))
        cells = [("accel_0", "axi_dma_0")]
        manifest = os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json")
        if os.path.exists(manifest):
            with open(manifest) as f:
                m = json.load(f)
            engines = m.get("engines") or [m]
            cells = [(e["accel_cell"], e["dma_cell"]) for e in engines]
        for ip_name, dma_name in cells:
            ip, dma = FakeIP(), FakeDMA(dma_name)
            ip.dma = dma
            setattr(self, ip_name, ip)
            setattr(self, dma_name, dma)

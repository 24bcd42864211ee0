"""The generated Zynq systolic top, driven by a third-party AXI client (cocotbext-axi) in a
4-state simulator (Icarus): AXI4-Lite control exactly as the PYNQ driver uses it, operands on
AXI4-Stream with random gaps, results drained with random stalls.

Everything the test needs about the design comes from the JSON file named by $AF_VECTORS, written
by the Rust test `accel-templates/tests/systolic_cocotb.rs` from the library's own register map,
stream packing and golden model; nothing here knows the array's internals.
"""

import json
import logging
import os
import random

import cocotb
import cocotb.utils
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import (
    AxiLiteBus,
    AxiLiteMaster,
    AxiStreamBus,
    AxiStreamFrame,
    AxiStreamSink,
    AxiStreamSource,
)

AP_START = 0x1
AP_DONE = 0x2
AP_IDLE = 0x4


def load_vectors():
    with open(os.environ["AF_VECTORS"], encoding="utf-8") as f:
        return json.load(f)


def random_pauses(seed, p):
    rng = random.Random(seed)
    while True:
        yield rng.random() < p


async def watch_outputs(dut, outputs, errors):
    """After reset, no output bit of the top may be X or Z, on any cycle."""
    while True:
        await RisingEdge(dut.ap_clk)
        for name in outputs:
            value = getattr(dut, name).value
            if not value.is_resolvable:
                valid = dut.m_axis_out_tvalid.value
                errors.append(
                    f"{cocotb.utils.get_sim_time('ns')} ns: {name} = {value} (not 0/1) after "
                    f"reset, m_axis_out_tvalid = {valid}"
                )
        if len(errors) > 40:
            return


async def poll_done(lite, regs, limit):
    """Polls ap_ctrl like the PYNQ driver; returns the ap_ctrl value that showed ap_done."""
    for _ in range(limit):
        ctrl = await lite.read_dword(regs["ap_ctrl"])
        if ctrl & AP_DONE:
            return ctrl
    raise AssertionError(f"ap_done never rose in {limit} reads of ap_ctrl")


@cocotb.test()
async def commands_over_axi(dut):
    vec = load_vectors()
    regs = vec["regs"]
    cocotb.start_soon(Clock(dut.ap_clk, 10, unit="ns").start())

    lite = AxiLiteMaster(
        AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
        reset_active_level=False,
    )
    source = AxiStreamSource(
        AxiStreamBus.from_prefix(dut, "s_axis_in"), dut.ap_clk, dut.ap_rst_n,
        reset_active_level=False,
    )
    sink = AxiStreamSink(
        AxiStreamBus.from_prefix(dut, "m_axis_out"), dut.ap_clk, dut.ap_rst_n,
        reset_active_level=False,
    )
    for bfm in (lite.write_if, lite.read_if, source, sink):
        bfm.log.setLevel(logging.WARNING)
    source.set_pause_generator(random_pauses(1, 0.25))
    sink.set_pause_generator(random_pauses(2, 0.25))

    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 5)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 1)
    x_errors = []
    cocotb.start_soon(watch_outputs(dut, vec["outputs"], x_errors))

    ctrl = await lite.read_dword(regs["ap_ctrl"])
    assert ctrl & AP_IDLE, f"idle after reset (ap_ctrl = {ctrl:#x})"

    for i, cmd in enumerate(vec["commands"]):
        what = f"command {i} {cmd['args']}"
        for name, value in cmd["args"].items():
            await lite.write_dword(regs["args"][name], value)
        await lite.write_dword(regs["ap_ctrl"], AP_START)
        if cmd["input"]:
            await source.send(AxiStreamFrame(bytes.fromhex(cmd["input"])))
        if cmd["expected"]:
            frame = await sink.recv()
            got = bytes(frame.tdata)
            want = bytes.fromhex(cmd["expected"])
            assert got == want, f"{what}: output differs from the golden model\n got {got.hex()}\nwant {want.hex()}"
        ctrl = await poll_done(lite, regs, 200)
        if "error" in regs:
            err = (await lite.read_dword(regs["error"]["offset"])) >> regs["error"]["bit"] & 1
            assert err == int(cmd["rejected"]), f"{what}: error bit {err}, rejected = {cmd['rejected']}"
        # After ap_done (and its clear-on-read) the accelerator is idle again.
        ctrl = await lite.read_dword(regs["ap_ctrl"])
        assert ctrl & AP_IDLE, f"{what}: not idle after done (ap_ctrl = {ctrl:#x})"
        dut._log.info("%s: ok", what)

    assert sink.empty(), "no output beyond the expected frames"
    assert not x_errors, "X/Z on outputs:\n" + "\n".join(x_errors)

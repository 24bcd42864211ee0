//! Counter design: reset, poke/peek, step, run_until, port errors, wide ports.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

mod common;

use accelforge_sim::{DesignSpec, ResetSpec, SimError, build};

#[test]
fn counter_counts_and_resets() {
    require_verilator!();
    let design = build(&common::counter_spec(), &common::opts()).expect("build counter");
    let mut sim = design.sim().expect("instantiate");
    sim.reset(3).expect("reset");
    let en = sim.port("en").expect("en");
    let count = sim.port("count").expect("count");
    assert_eq!(sim.peek(count).expect("peek"), 0);

    sim.poke(en, 1).expect("poke");
    sim.step_n(5).expect("step");
    assert_eq!(sim.peek(count).expect("peek"), 5);
    sim.poke(en, 0).expect("poke");
    sim.step().expect("step");
    assert_eq!(sim.peek("count").expect("peek by name"), 5);
    assert_eq!(sim.cycle(), 3 + 5 + 1);

    sim.poke(en, 1).expect("poke");
    let waited = sim
        .run_until(|s| Ok(s.peek("done")? == 1), 200)
        .expect("done within 200 cycles");
    assert_eq!(waited, 95);
    assert_eq!(sim.peek(count).expect("peek"), 100);

    // Wraps at 8 bits.
    sim.step_n(156).expect("step");
    assert_eq!(sim.peek(count).expect("peek"), 0);
    assert_eq!(sim.peek_signed(count).expect("peek"), 0);
    sim.step_n(255).expect("step");
    assert_eq!(sim.peek_signed(count).expect("signed"), -1);

    // A second instance is independent.
    let mut other = design.sim().expect("second instance");
    other.reset(1).expect("reset");
    assert_eq!(other.peek("count").expect("peek"), 0);
    assert_eq!(sim.peek(count).expect("peek"), 255);
}

#[test]
fn port_errors_are_typed() {
    require_verilator!();
    let design = build(&common::counter_spec(), &common::opts()).expect("build counter");
    let mut sim = design.sim().expect("instantiate");
    assert!(matches!(
        sim.port("nope"),
        Err(SimError::UnknownPort { .. })
    ));
    assert!(matches!(
        sim.poke("count", 1),
        Err(SimError::NotAnInput { .. })
    ));
    assert!(matches!(
        sim.poke("en", 2),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(
        sim.poke_signed("en", -2),
        Err(SimError::ValueTooWide { .. })
    ));
    // A handle from another design is refused.
    let stream = build(&common::stream_reg_spec(), &common::opts()).expect("build stream_reg");
    let s2 = stream.sim().expect("instantiate");
    let foreign = s2.port("s_axis_tdata").expect("port");
    assert!(matches!(
        sim.peek(foreign),
        Err(SimError::ForeignHandle { .. })
    ));
    // Timeout names the handshake ports and the cycle.
    let err = sim
        .run_until(|s| Ok(s.peek("count")? == 7), 10)
        .expect_err("en is low, count never moves");
    let msg = err.to_string();
    assert!(msg.contains("within 10 cycles"), "{msg}");
    assert!(msg.contains("done=0"), "{msg}");
}

#[test]
fn active_low_reset_and_custom_clock() {
    require_verilator!();
    let src = "\
module ap_counter(input wire ap_clk, input wire ap_rst_n, output reg [15:0] n);
    always @(posedge ap_clk) if (!ap_rst_n) n <= 16'd0; else n <= n + 16'd3;
endmodule
";
    let spec = DesignSpec::new("ap_counter")
        .source("ap_counter.v", src)
        .input("ap_clk", 1)
        .input("ap_rst_n", 1)
        .output("n", 16)
        .clock(Some("ap_clk"))
        .reset(ResetSpec::active_low("ap_rst_n"));
    let design = build(&spec, &common::opts()).expect("build");
    let mut sim = design.sim().expect("sim");
    // Before reset the (zero-initialised) reset input holds the design in reset.
    sim.step_n(4).expect("step");
    assert_eq!(sim.peek("n").expect("peek"), 0);
    sim.reset(2).expect("reset");
    sim.step_n(4).expect("step");
    assert_eq!(sim.peek("n").expect("peek"), 12);
}

#[test]
fn wide_adder_200_bits() {
    require_verilator!();
    let src = "\
module wide_add(input wire [199:0] a, input wire [199:0] b, output wire [199:0] sum,
                output wire [63:0] low, input wire [69:0] extra);
    assign sum = a + b;
    assign low = sum[63:0] ^ extra[63:0];
endmodule
";
    let spec = DesignSpec::new("wide_add")
        .source("wide_add.v", src)
        .input("a", 200)
        .input("b", 200)
        .output("sum", 200)
        .output("low", 64)
        .input("extra", 70)
        .clock(None);
    let design = build(&spec, &common::opts()).expect("build");
    let mut sim = design.sim().expect("sim");
    let mask_top = (1u64 << (200 - 192)) - 1;
    let a = [u64::MAX, u64::MAX, 0x1234_5678_9abc_def0, 0x7f];
    let b = [1, 0, 0, 0];
    sim.poke_wide("a", &a).expect("poke a");
    sim.poke_wide("b", &b).expect("poke b");
    let sum = sim.peek_wide("sum").expect("peek sum");
    assert_eq!(sum, vec![0, 0, 0x1234_5678_9abc_def1, 0x7f]);
    assert_eq!(sim.peek("low").expect("low"), 0);

    // Carry out of bit 199 is dropped.
    sim.poke_wide("a", &[u64::MAX, u64::MAX, u64::MAX, mask_top])
        .expect("poke a");
    assert_eq!(sim.peek_wide("sum").expect("sum"), vec![0, 0, 0, 0]);

    // Narrow poke into a wide port zero-extends.
    sim.poke("a", 41).expect("poke");
    assert_eq!(sim.peek_wide("sum").expect("sum"), vec![42, 0, 0, 0]);
    sim.poke("extra", 5).expect("poke");
    assert_eq!(sim.peek("low").expect("low"), 42 ^ 5);

    // Bits beyond 200 are rejected, as is a narrow peek of a wide port.
    assert!(matches!(
        sim.poke_wide("a", &[0, 0, 0, mask_top + 1]),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(
        sim.poke_wide("a", &[0, 0, 0, 0, 1]),
        Err(SimError::ValueTooWide { .. })
    ));
    assert!(matches!(sim.peek("sum"), Err(SimError::PortTooWide { .. })));
    // The rejected pokes did not change anything.
    assert_eq!(sim.peek_wide("sum").expect("sum"), vec![42, 0, 0, 0]);
}

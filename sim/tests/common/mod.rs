//! Shared helpers for the integration tests.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too
#![allow(dead_code)]

use accelforge_sim::{BuildOptions, DesignSpec, ResetSpec};
use std::path::PathBuf;

/// Whether Verilator can be used. Outside CI a missing Verilator skips the test with a message;
/// with `CI=true` it fails the test, so CI can never pass by skipping.
pub fn verilator_present() -> bool {
    match accelforge_sim::verilator_version(std::path::Path::new("verilator")) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true and Verilator is unusable: {e}");
            }
            eprintln!("SKIPPED (Verilator unavailable; set CI=true to make this a failure): {e}");
            false
        }
    }
}

/// Returns early from a test when Verilator is unavailable (and not in CI).
#[macro_export]
macro_rules! require_verilator {
    () => {
        if !common::verilator_present() {
            return;
        }
    };
}

/// A cache shared by the test binaries (kept between runs for speed, separate from the user's).
pub fn test_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("verilator-cache")
}

pub fn opts() -> BuildOptions {
    BuildOptions {
        cache_dir: Some(test_cache()),
        jobs: 2,
        ..BuildOptions::default()
    }
}

pub fn trace_opts() -> BuildOptions {
    BuildOptions {
        trace: true,
        ..opts()
    }
}

pub const COUNTER_V: &str = "\
module counter(
    input  wire       clk,
    input  wire       rst,
    input  wire       en,
    output reg  [7:0] count,
    output wire       done
);
    always @(posedge clk) begin
        if (rst) count <= 8'd0;
        else if (en) count <= count + 8'd1;
    end
    assign done = (count == 8'd100);
endmodule
";

pub fn counter_spec() -> DesignSpec {
    DesignSpec::new("counter")
        .source("counter.v", COUNTER_V)
        .input("clk", 1)
        .input("rst", 1)
        .input("en", 1)
        .output("count", 8)
        .output("done", 1)
        .reset(ResetSpec::active_high("rst"))
}

/// A one-register AXI-Stream pipeline stage; `s_axis_tready` depends combinationally on
/// `m_axis_tready`, which exercises evaluation between drive and sample.
pub const STREAM_REG_V: &str = "\
module stream_reg #(parameter W = 32) (
    input  wire         clk,
    input  wire         rst_n,
    input  wire [W-1:0] s_axis_tdata,
    input  wire         s_axis_tvalid,
    output wire         s_axis_tready,
    input  wire         s_axis_tlast,
    output reg  [W-1:0] m_axis_tdata,
    output reg          m_axis_tvalid,
    input  wire         m_axis_tready,
    output reg          m_axis_tlast
);
    assign s_axis_tready = !m_axis_tvalid || m_axis_tready;
    always @(posedge clk) begin
        if (!rst_n) begin
            m_axis_tvalid <= 1'b0;
            m_axis_tdata  <= {W{1'b0}};
            m_axis_tlast  <= 1'b0;
        end else if (s_axis_tready) begin
            m_axis_tvalid <= s_axis_tvalid;
            if (s_axis_tvalid) begin
                m_axis_tdata <= s_axis_tdata + 1;
                m_axis_tlast <= s_axis_tlast;
            end
        end
    end
endmodule
";

pub fn stream_ports(spec: DesignSpec, w: u32) -> DesignSpec {
    spec.input("clk", 1)
        .input("rst_n", 1)
        .input("s_axis_tdata", w)
        .input("s_axis_tvalid", 1)
        .output("s_axis_tready", 1)
        .input("s_axis_tlast", 1)
        .output("m_axis_tdata", w)
        .output("m_axis_tvalid", 1)
        .input("m_axis_tready", 1)
        .output("m_axis_tlast", 1)
        .reset(ResetSpec::active_low("rst_n"))
}

pub fn stream_reg_spec() -> DesignSpec {
    stream_ports(
        DesignSpec::new("stream_reg").source("stream_reg.v", STREAM_REG_V),
        32,
    )
}

/// A stream stage that never accepts input: the deadlock case.
pub const STUCK_V: &str = "\
module stuck (
    input  wire        clk,
    input  wire        rst_n,
    input  wire [31:0] s_axis_tdata,
    input  wire        s_axis_tvalid,
    output wire        s_axis_tready,
    input  wire        s_axis_tlast,
    output wire [31:0] m_axis_tdata,
    output wire        m_axis_tvalid,
    input  wire        m_axis_tready,
    output wire        m_axis_tlast
);
    assign s_axis_tready = 1'b0;
    assign m_axis_tdata  = 32'd0;
    assign m_axis_tvalid = 1'b0;
    assign m_axis_tlast  = 1'b0;
endmodule
";

pub fn stuck_spec() -> DesignSpec {
    stream_ports(DesignSpec::new("stuck").source("stuck.v", STUCK_V), 32)
}

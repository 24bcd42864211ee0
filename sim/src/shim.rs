//! The generated `extern "C"` C++ shim between Rust and a Verilated model, and the parser for the
//! port declarations in Verilator's generated header.

use crate::error::{Result, SimError};
use crate::spec::{DesignSpec, PortDir};
use std::fmt::Write as _;

/// Version of the C ABI between [`crate::Sim`] and the generated shim. Bump on any change to the
/// exported functions; it is part of the cache key and checked when a library is loaded.
pub(crate) const SHIM_ABI: u32 = 1;

/// Status codes returned by `af_step`/`af_eval`.
pub(crate) const STATUS_OK: i32 = 0;
pub(crate) const STATUS_FINISHED: i32 = 1;

/// How Verilator stores a port of a given width (see `verilated_types.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// `CData`, 1..=8 bits.
    U8,
    /// `SData`, 9..=16 bits.
    U16,
    /// `IData`, 17..=32 bits.
    U32,
    /// `QData`, 33..=64 bits.
    U64,
    /// `VlWide<words>`, 65+ bits, 32-bit words, least significant first.
    Wide { words: usize },
}

impl Storage {
    pub(crate) fn for_width(width: u32) -> Self {
        match width {
            0..=8 => Storage::U8,
            9..=16 => Storage::U16,
            17..=32 => Storage::U32,
            33..=64 => Storage::U64,
            w => Storage::Wide {
                words: w.div_ceil(32) as usize,
            },
        }
    }

    /// Size in bytes of the C++ member.
    fn bytes(self) -> usize {
        match self {
            Storage::U8 => 1,
            Storage::U16 => 2,
            Storage::U32 => 4,
            Storage::U64 => 8,
            Storage::Wide { words } => 4 * words,
        }
    }
}

/// A port as declared in `V<top>.h` (`VL_IN8(&clk,0,0);`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderPort {
    /// The Verilog port name.
    pub name: String,
    /// The C++ member holding it: the Verilog name, or `__SYM__<name>` when the name is a C++
    /// word (e.g. `interrupt`, which Vivado's conventions require).
    pub member: String,
    pub dir: HeaderDir,
    pub width: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderDir {
    In,
    Out,
    InOut,
}

/// Extracts the port declarations from Verilator's generated model header.
pub(crate) fn parse_header_ports(header: &str) -> Vec<HeaderPort> {
    let mut ports = Vec::new();
    for line in header.lines() {
        let line = line.trim();
        let (dir, rest) = if let Some(r) = line.strip_prefix("VL_INOUT") {
            (HeaderDir::InOut, r)
        } else if let Some(r) = line.strip_prefix("VL_IN") {
            (HeaderDir::In, r)
        } else if let Some(r) = line.strip_prefix("VL_OUT") {
            (HeaderDir::Out, r)
        } else {
            continue;
        };
        // rest looks like `8(&clk,0,0);` or `W(&wide,199,0,7);`
        let Some(open) = rest.find("(&") else {
            continue;
        };
        let Some(close) = rest.rfind(')') else {
            continue;
        };
        let inner = &rest[open + 2..close];
        let fields: Vec<&str> = inner.split(',').map(str::trim).collect();
        if fields.len() < 3 {
            continue;
        }
        let (Ok(msb), Ok(lsb)) = (fields[1].parse::<i64>(), fields[2].parse::<i64>()) else {
            continue;
        };
        let member = fields[0].to_string();
        ports.push(HeaderPort {
            name: member
                .strip_prefix("__SYM__")
                .unwrap_or(&member)
                .to_string(),
            member,
            dir,
            width: (msb - lsb).unsigned_abs() as u32 + 1,
        });
    }
    ports
}

/// Checks the spec's ports against the header: same set of names, directions and widths.
pub(crate) fn check_ports(spec: &DesignSpec, header: &[HeaderPort]) -> Result<()> {
    let mismatch = |reason: String| SimError::PortMismatch {
        top: spec.top.clone(),
        reason,
    };
    for p in &spec.ports {
        let Some(h) = header.iter().find(|h| h.name == p.name) else {
            return Err(mismatch(format!(
                "port `{}` is in the spec but not in the Verilog module (Verilog ports: {})",
                p.name,
                header
                    .iter()
                    .map(|h| h.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let dir_ok = matches!(
            (p.dir, h.dir),
            (PortDir::In, HeaderDir::In) | (PortDir::Out, HeaderDir::Out)
        );
        if !dir_ok {
            return Err(mismatch(format!(
                "port `{}` is {:?} in the spec but {:?} in the Verilog (inout ports are not supported)",
                p.name, p.dir, h.dir
            )));
        }
        if h.width != p.width {
            return Err(mismatch(format!(
                "port `{}` is {} bits in the spec but {} bits in the Verilog",
                p.name, p.width, h.width
            )));
        }
    }
    if let Some(extra) = header.iter().find(|h| spec.find_port(&h.name).is_none()) {
        return Err(mismatch(format!(
            "Verilog port `{}` is missing from the spec",
            extra.name
        )));
    }
    Ok(())
}

/// Generates the C++ shim for a validated spec.
///
/// Design: ports are not copied through per-port setter calls; `af_port_ptr` hands Rust the
/// address of each port's storage once, so pokes and peeks are plain memory accesses and one
/// FFI call (`af_step`) runs whole clock cycles. That is what keeps the harness at C++ speed.
pub(crate) fn generate(spec: &DesignSpec, trace: bool, header: &[HeaderPort]) -> String {
    let member = |name: &str| -> String {
        header
            .iter()
            .find(|h| h.name == name)
            .map_or_else(|| name.to_string(), |h| h.member.clone())
    };
    let top = &spec.top;
    let class = format!("V{top}");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by accelforge-sim (shim ABI {SHIM_ABI}) for top module `{top}`. Do not edit."
    );
    let _ = writeln!(s, "#define AF_TRACE {}", i32::from(trace));
    s.push_str(&format!(
        r#"#include "{class}.h"
#include "verilated.h"
#if AF_TRACE
#include "verilated_vcd_c.h"
#endif
#include <cstdint>
#include <cstdio>
#include <memory>

namespace {{
struct AfFatal {{}};

struct AfModel {{
    std::unique_ptr<VerilatedContext> ctx;
    std::unique_ptr<{class}> top;
#if AF_TRACE
    std::unique_ptr<VerilatedVcdC> tfp;
#endif
}};

inline int af_status(const AfModel* m) {{
    return m->ctx->gotFinish() ? {STATUS_FINISHED} : {STATUS_OK};
}}
}}  // namespace

// Verilator's defaults call std::exit / std::abort, which would kill the host Rust process;
// these overrides (enabled by -DVL_USER_FINISH/STOP/FATAL) record the event instead.
void vl_finish(const char* filename, int linenum, const char*) {{
    Verilated::threadContextp()->gotFinish(true);
    (void)filename;
    (void)linenum;
}}

void vl_stop(const char* filename, int linenum, const char*) {{
    Verilated::threadContextp()->gotError(true);
    Verilated::threadContextp()->gotFinish(true);
    std::fprintf(stderr, "%%Error: %s:%d: Verilog $stop\n", filename ? filename : "", linenum);
    throw AfFatal{{}};
}}

void vl_fatal(const char* filename, int linenum, const char*, const char* msg) {{
    Verilated::threadContextp()->gotError(true);
    Verilated::threadContextp()->gotFinish(true);
    std::fprintf(stderr, "%%Error: %s:%d: %s\n", filename ? filename : "", linenum, msg ? msg : "");
    // Unwind out of eval(): returning would let Verilator continue in a broken state (e.g. a
    // non-converging combinational loop would call us again forever).
    throw AfFatal{{}};
}}

extern "C" {{

uint32_t af_abi(void) {{ return {SHIM_ABI}; }}

uint32_t af_port_count(void) {{ return {nports}; }}

void* af_new(void) {{
    try {{
        std::unique_ptr<AfModel> m{{new AfModel}};
        // One context per model: models in different threads must not share time or
        // finish/error state.
        m->ctx.reset(new VerilatedContext);
        m->ctx->fatalOnError(false);
#if AF_TRACE
        m->ctx->traceEverOn(true);
#endif
        Verilated::threadContextp(m->ctx.get());
        m->top.reset(new {class}{{m->ctx.get(), "TOP"}});
        return m.release();
    }} catch (...) {{
        return nullptr;
    }}
}}

void af_free(void* h) {{
    AfModel* m = static_cast<AfModel*>(h);
    if (!m) return;
    Verilated::threadContextp(m->ctx.get());
    try {{
        m->top->final();
    }} catch (...) {{
    }}
#if AF_TRACE
    if (m->tfp) m->tfp->close();
    m->tfp.reset();
#endif
    m->top.reset();
    m->ctx.reset();
    delete m;
}}

int af_eval(void* h) {{
    AfModel* m = static_cast<AfModel*>(h);
    Verilated::threadContextp(m->ctx.get());
    try {{
        m->top->eval();
    }} catch (...) {{
        return -1;
    }}
    return af_status(m);
}}

"#,
        nports = spec.ports.len()
    ));

    // One whole clock cycle per iteration: falling edge then rising edge, with a trace sample
    // after each evaluation so GTKWave shows both clock phases.
    let (low, high) = match &spec.clock {
        Some(clk) => (format!("m->top->{clk} = 0;"), format!("m->top->{clk} = 1;")),
        None => (String::new(), String::new()),
    };
    s.push_str(&format!(
        r#"int af_step(void* h, uint64_t n) {{
    AfModel* m = static_cast<AfModel*>(h);
    {class}* top = m->top.get();
    VerilatedContext* ctx = m->ctx.get();
    Verilated::threadContextp(ctx);
    (void)top;
    try {{
        for (uint64_t i = 0; i < n; ++i) {{
            {low}
            top->eval();
            ctx->timeInc(1);
#if AF_TRACE
            if (m->tfp) m->tfp->dump(ctx->time());
#endif
            {high}
            top->eval();
            ctx->timeInc(1);
#if AF_TRACE
            if (m->tfp) m->tfp->dump(ctx->time());
#endif
        }}
    }} catch (...) {{
        return -1;
    }}
    return af_status(m);
}}

int af_trace_open(void* h, const char* path) {{
#if AF_TRACE
    AfModel* m = static_cast<AfModel*>(h);
    if (m->tfp) return -3;
    Verilated::threadContextp(m->ctx.get());
    try {{
        m->tfp.reset(new VerilatedVcdC);
        m->top->trace(m->tfp.get(), 99);
        m->tfp->open(path);
        if (!m->tfp->isOpen()) {{
            m->tfp.reset();
            return -2;
        }}
        m->tfp->dump(m->ctx->time());
    }} catch (...) {{
        m->tfp.reset();
        return -2;
    }}
    return 0;
#else
    (void)h;
    (void)path;
    return -1;
#endif
}}

void af_trace_flush(void* h) {{
#if AF_TRACE
    AfModel* m = static_cast<AfModel*>(h);
    if (m->tfp) m->tfp->flush();
#else
    (void)h;
#endif
}}

void af_trace_close(void* h) {{
#if AF_TRACE
    AfModel* m = static_cast<AfModel*>(h);
    if (m->tfp) {{
        m->tfp->close();
        m->tfp.reset();
    }}
#else
    (void)h;
#endif
}}

"#
    ));

    // Port addresses, by index in the spec's port list. The static_asserts turn a spec/Verilog
    // storage mismatch into a compile error instead of memory corruption.
    s.push_str("void* af_port_ptr(void* h, uint32_t idx) {\n");
    s.push_str("    AfModel* m = static_cast<AfModel*>(h);\n");
    s.push_str("    switch (idx) {\n");
    for (i, p) in spec.ports.iter().enumerate() {
        let storage = Storage::for_width(p.width);
        let _ = writeln!(
            s,
            "    case {i}: {{\n        static_assert(sizeof(m->top->{name}) == {bytes}, \"port {name}: storage size differs from the spec\");",
            name = member(&p.name),
            bytes = storage.bytes()
        );
        match storage {
            Storage::Wide { .. } => {
                let _ = writeln!(
                    s,
                    "        return static_cast<void*>(m->top->{}.data());\n    }}",
                    member(&p.name)
                );
            }
            _ => {
                let _ = writeln!(
                    s,
                    "        return static_cast<void*>(&m->top->{});\n    }}",
                    member(&p.name)
                );
            }
        }
    }
    s.push_str("    default: return nullptr;\n    }\n}\n\n}  // extern \"C\"\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_classes_follow_verilator() {
        assert_eq!(Storage::for_width(1), Storage::U8);
        assert_eq!(Storage::for_width(8), Storage::U8);
        assert_eq!(Storage::for_width(9), Storage::U16);
        assert_eq!(Storage::for_width(32), Storage::U32);
        assert_eq!(Storage::for_width(33), Storage::U64);
        assert_eq!(Storage::for_width(64), Storage::U64);
        assert_eq!(Storage::for_width(65), Storage::Wide { words: 3 });
        assert_eq!(Storage::for_width(200), Storage::Wide { words: 7 });
    }

    #[test]
    fn parses_header_ports() {
        let h = "    VL_IN8(&clk,0,0);\n    VL_OUT8(&count,7,0);\n    VL_OUTW(&wide,199,0,7);\n    VL_IN(&x,31,0);\n  VL_INOUT16(&io,15,0);\n    VL_OUT8(&__SYM__interrupt,0,0);\n";
        let p = parse_header_ports(h);
        assert_eq!(p.len(), 6);
        assert_eq!(
            (p[5].name.as_str(), p[5].member.as_str()),
            ("interrupt", "__SYM__interrupt")
        );
        assert_eq!(
            p[2],
            HeaderPort {
                name: "wide".into(),
                member: "wide".into(),
                dir: HeaderDir::Out,
                width: 200
            }
        );
        assert_eq!(p[3].width, 32);
        assert_eq!(p[4].dir, HeaderDir::InOut);
    }

    #[test]
    fn spec_header_mismatch_is_reported() {
        let spec = DesignSpec::new("t")
            .source("t.v", "")
            .input("clk", 1)
            .output("q", 8);
        let ok = parse_header_ports("VL_IN8(&clk,0,0);\nVL_OUT8(&q,7,0);");
        assert!(check_ports(&spec, &ok).is_ok());
        let wrong_width = parse_header_ports("VL_IN8(&clk,0,0);\nVL_OUT8(&q,6,0);");
        assert!(check_ports(&spec, &wrong_width).is_err());
        let wrong_dir = parse_header_ports("VL_IN8(&clk,0,0);\nVL_IN8(&q,7,0);");
        assert!(check_ports(&spec, &wrong_dir).is_err());
        let extra = parse_header_ports("VL_IN8(&clk,0,0);\nVL_OUT8(&q,7,0);\nVL_IN8(&e,0,0);");
        assert!(check_ports(&spec, &extra).is_err());
    }
}

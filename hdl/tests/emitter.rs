//! Snapshot tests of emitted Verilog, and properties of the builder and printer.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use accelforge_hdl::blocks::{fifo, pipeline, ram, skid};
use accelforge_hdl::{Design, Expr, HdlError, ModuleBuilder, Stmt};
use proptest::prelude::*;

fn text(d: &Design) -> String {
    d.files()
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn snapshot_pipeline() {
    insta::assert_snapshot!(text(
        &pipeline::design(&pipeline::PipelineParams { width: 8, depth: 2 }).unwrap()
    ));
}

#[test]
fn snapshot_fifo() {
    insta::assert_snapshot!(text(
        &fifo::design(&fifo::FifoParams { width: 8, depth: 5 }).unwrap()
    ));
}

#[test]
fn snapshot_ram() {
    let p = ram::RamParams {
        width: 16,
        depth: 256,
        kind: ram::RamKind::DualPort,
        style: ram::RamStyle::Block,
    };
    insta::assert_snapshot!(text(&ram::design(&p).unwrap()));
}

#[test]
fn snapshot_skid() {
    insta::assert_snapshot!(text(
        &skid::design(&skid::SkidParams {
            width: 8,
            tlast: true
        })
        .unwrap()
    ));
}

#[test]
fn hierarchy_with_instances_and_signed_math() {
    // A wrapper that instantiates a pipeline and adds a signed MAC, exercising instances,
    // products, sign extension and case statements in one design.
    let pp = pipeline::PipelineParams { width: 8, depth: 2 };
    let pipe = pipeline::module(&pp).unwrap();
    let mut m = ModuleBuilder::new("top_mac").unwrap();
    let clk = m.input("clk", 1).unwrap();
    let rst = m.input("rst", 1).unwrap();
    let a = m.input_signed("a", 8).unwrap();
    let b = m.input_signed("b", 8).unwrap();
    let mode = m.input("mode", 2).unwrap();
    let acc = m.output_reg_signed("acc", 20).unwrap();
    let piped = m.wire("piped", 8).unwrap();
    let piped_valid = m.wire("piped_valid", 1).unwrap();
    m.instance(
        &pipe,
        "u_delay",
        &[],
        &[
            ("clk", clk.e()),
            ("rst", rst.e()),
            ("in_valid", Expr::bool(true)),
            ("in_data", a.e().as_unsigned()),
            ("out_valid", piped_valid.e()),
            ("out_data", piped.e()),
        ],
    )
    .unwrap();
    let ps = m.wire_from("piped_s", piped.e().as_signed()).unwrap();
    let prod = m.product("prod", &ps.e(), &b.e()).unwrap();
    let body = Stmt::case(
        mode.e(),
        vec![
            (
                vec![Expr::lit(0, 2).unwrap()],
                vec![Stmt::set(&acc, Expr::slit(0, 20).unwrap()).unwrap()],
            ),
            (
                vec![Expr::lit(1, 2).unwrap()],
                vec![Stmt::set(&acc, acc.e().add(&prod.extend(20).unwrap()).unwrap()).unwrap()],
            ),
            (
                vec![Expr::lit(2, 2).unwrap()],
                vec![Stmt::set(&acc, acc.e().sub(&prod.extend(20).unwrap()).unwrap()).unwrap()],
            ),
        ],
        vec![
            Stmt::if_(
                piped_valid.e(),
                vec![Stmt::set(&acc, acc.e().neg()).unwrap()],
            )
            .unwrap(),
        ],
    )
    .unwrap();
    m.clocked(&clk, vec![body]).unwrap();
    let mut d = Design::new(m.finish(), &"hierarchy");
    d.add(pipe).unwrap();
    d.check_complete().unwrap();
    insta::assert_snapshot!(text(&d));
    if accelforge_test_support::tool_available("verilator") {
        let files = accelforge_hdl::tools::DesignFiles::new(&d).unwrap();
        let r = accelforge_hdl::tools::lint(&files.paths, Some("top_mac")).unwrap();
        assert!(r.is_clean(), "{:?}", r.diagnostics);
    }
}

#[test]
fn builder_rejects_misuse() {
    let mut m = ModuleBuilder::new("t").unwrap();
    let a = m.input("a", 4).unwrap();
    assert!(matches!(m.input("a", 4), Err(HdlError::Duplicate { .. })));
    assert!(matches!(
        m.wire("wire", 4),
        Err(HdlError::BadIdentifier { .. })
    ));
    let w = m.wire("w", 5).unwrap();
    assert!(matches!(
        m.assign_sig(&w, a.e()),
        Err(HdlError::WidthMismatch { .. })
    ));
    assert!(m.assign_sig(&a, a.e()).is_err(), "inputs cannot be driven");
    let r = m.reg("r", 4).unwrap();
    assert!(
        m.assign_sig(&r, a.e()).is_err(),
        "regs are not driven by assign"
    );
    let s = m.input_signed("s", 4).unwrap();
    assert!(matches!(
        a.e().add(&s.e()),
        Err(HdlError::SignMismatch { .. })
    ));
    assert!(matches!(a.slice(4, 0), Err(HdlError::BadSelect { .. })));
    assert!(Expr::lit(16, 4).is_err());
    assert!(Expr::slit(-9, 4).is_err());
    assert!(Expr::slit(-8, 4).is_ok());
    let sub = ModuleBuilder::new("sub")
        .and_then(|mut b| {
            b.input("x", 3)?;
            Ok(b.finish())
        })
        .unwrap();
    assert!(matches!(
        m.instance(&sub, "u", &[], &[("x", a.e())]),
        Err(HdlError::BadInstance { .. })
    ));
    assert!(matches!(
        m.instance(&sub, "u2", &[], &[]),
        Err(HdlError::BadInstance { .. })
    ));
}

fn random_module(widths: &[u32], seed: u64) -> Result<Design, HdlError> {
    let mut m = ModuleBuilder::new("rand_mod")?;
    let clk = m.input("clk", 1)?;
    let mut sigs = Vec::new();
    for (i, w) in widths.iter().enumerate() {
        sigs.push(m.input(&format!("in{i}"), *w)?);
    }
    let out = m.output_reg("out", widths[0])?;
    let mut e = sigs[0].e();
    for (i, s) in sigs.iter().enumerate().skip(1) {
        let x = if s.width() >= e.width() {
            s.slice(e.width() - 1, 0)?
        } else {
            s.e().zext(e.width())?
        };
        e = match (seed >> (i % 60)) & 3 {
            0 => e.add(&x)?,
            1 => e.xor(&x)?,
            2 => Expr::mux(&x.red_or(), &e, &x.not())?,
            _ => e.sub(&x)?.shl(1),
        };
    }
    m.clocked(&clk, vec![Stmt::set(&out, e)?])?;
    Ok(Design::new(m.finish(), &(widths, seed)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    #[test]
    fn printer_is_deterministic(widths in prop::collection::vec(1u32..70, 1..6), seed in any::<u64>()) {
        let a = random_module(&widths, seed).unwrap().files();
        let b = random_module(&widths, seed).unwrap().files();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn width_errors_are_caught_at_build_time(wa in 1u32..100, wb in 1u32..100) {
        let mut m = ModuleBuilder::new("w").unwrap();
        let a = m.input("a", wa).unwrap();
        let b = m.input("b", wb).unwrap();
        prop_assert_eq!(a.e().add(&b.e()).is_ok(), wa == wb);
        prop_assert_eq!(a.e().eq(&b.e()).is_ok(), wa == wb);
        let o = m.output("o", wa).unwrap();
        prop_assert_eq!(m.assign_sig(&o, b.e()).is_ok(), wa == wb);
        let p = m.product("p", &a.e(), &b.e()).unwrap();
        prop_assert_eq!(p.width(), wa + wb);
    }

    #[test]
    fn params_change_the_header_hash(w in 1u32..64, d in 1u32..16) {
        let x = pipeline::design(&pipeline::PipelineParams { width: w, depth: d }).unwrap();
        let y = pipeline::design(&pipeline::PipelineParams { width: w + 1, depth: d }).unwrap();
        prop_assert_ne!(&x.header().params_hash, &y.header().params_hash);
    }
}

/// Attribute values reach the Verilog text verbatim inside quotes: a quote or backslash could
/// end the attribute early, so they are refused; good ones print before the port.
#[test]
fn port_attributes_print_before_the_port_and_refuse_escapes() {
    let mut m = ModuleBuilder::new("attr_demo").unwrap();
    let clk = m.input("clk", 1).unwrap();
    let q = m.output_reg("q", 1).unwrap();
    m.clocked(&clk, vec![Stmt::set(&q, Expr::bool(true)).unwrap()])
        .unwrap();
    m.port_attribute(
        "clk",
        "X_INTERFACE_INFO",
        "xilinx.com:signal:clock:1.0 clk CLK",
    )
    .unwrap();
    for bad in ["a\" *) evil (* b", "back\\slash", "new\nline"] {
        assert!(matches!(
            m.port_attribute("clk", "X_INTERFACE_PARAMETER", bad),
            Err(HdlError::Misuse(_))
        ));
    }
    assert!(m.port_attribute("nope", "K", "v").is_err());
    let d = Design::new(m.finish(), &1u32);
    let text = d.files().into_iter().map(|(_, t)| t).collect::<String>();
    assert!(
        text.contains(
            "    (* X_INTERFACE_INFO = \"xilinx.com:signal:clock:1.0 clk CLK\" *)\n    input  wire clk"
        ),
        "{text}"
    );
}

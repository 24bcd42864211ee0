//! The one Verilog printer. Output is a conservative Verilog-2005 subset (accepted by Verilator
//! 5.006, Icarus 11, Yosys 0.23 and Vivado) and is a pure function of the tree: same tree, same
//! bytes.

use std::fmt::Write as _;

use crate::expr::{Expr, ExprKind, UnaryOp};
use crate::module::{Always, Decl, Dir, Item, LValue, Module, NetKind, Select, Stmt};

/// What the printer writes above each module: the generator and a hash of the parameters that
/// produced the design, so a file can be traced back to the command that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Generator name and version, e.g. `accelforge-hdl 0.1.0`.
    pub generator: String,
    /// Hex digest of the design parameters.
    pub params_hash: String,
}

const INDENT: &str = "    ";

fn range(width: u32) -> String {
    if width == 1 {
        String::new()
    } else {
        format!("[{}:0] ", width - 1)
    }
}

/// Two's-complement bit `i` of a constant held sign-extended in an i128.
fn const_bit(value: i128, i: u32) -> bool {
    if i >= 127 {
        value < 0
    } else {
        (value >> i) & 1 == 1
    }
}

fn print_const(value: i128, width: u32, signed: bool) -> String {
    if width == 1 && !signed {
        return format!("1'b{}", u8::from(const_bit(value, 0)));
    }
    if !signed && width <= 64 {
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        return format!("{width}'d{}", (value as u64) & mask);
    }
    // Hex with every digit spelled out, because Verilog pads a short sized literal with zeros,
    // not with its sign.
    let digits = width.div_ceil(4);
    let mut hex = String::with_capacity(digits as usize);
    for d in (0..digits).rev() {
        let mut nibble = 0u8;
        for b in 0..4 {
            let i = d * 4 + b;
            if i < width && const_bit(value, i) {
                nibble |= 1 << b;
            }
        }
        hex.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
    }
    format!("{width}'{}h{hex}", if signed { "s" } else { "" })
}

/// Prints an expression.
pub fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Ref(n) => n.clone(),
        ExprKind::Const(v) => print_const(*v, e.width, e.signed),
        ExprKind::Slice { name, msb, lsb } => {
            if msb == lsb {
                format!("{name}[{msb}]")
            } else {
                format!("{name}[{msb}:{lsb}]")
            }
        }
        ExprKind::BitDyn { name, index } => format!("{name}[{}]", expr(index)),
        ExprKind::MemRead { name, addr } => format!("{name}[{}]", expr(addr)),
        ExprKind::Unary(op, a) => {
            let sym = match op {
                UnaryOp::Not => "~",
                UnaryOp::Neg => "-",
                UnaryOp::LogicNot => "!",
                UnaryOp::RedAnd => "&",
                UnaryOp::RedOr => "|",
                UnaryOp::RedXor => "^",
            };
            format!("({sym}{})", expr(a))
        }
        ExprKind::Binary(op, a, b) => format!("({} {} {})", expr(a), op.symbol(a.signed), expr(b)),
        ExprKind::Mul(a, b) => format!("{} * {}", expr(a), expr(b)),
        ExprKind::Mux(c, a, b) => format!("({} ? {} : {})", expr(c), expr(a), expr(b)),
        ExprKind::Concat(parts) => {
            let inner: Vec<String> = parts.iter().map(expr).collect();
            format!("{{{}}}", inner.join(", "))
        }
        ExprKind::Repeat(n, a) => format!("{{{n}{{{}}}}}", expr(a)),
        ExprKind::AsSigned(a) => format!("$signed({})", expr(a)),
        ExprKind::AsUnsigned(a) => format!("$unsigned({})", expr(a)),
    }
}

/// Prints an expression that stands alone (a statement's right-hand side or an `if`
/// condition), without the outermost parentheses.
fn top_expr(e: &Expr) -> String {
    let s = expr(e);
    match e.kind {
        ExprKind::Binary(..) | ExprKind::Mux(..) => s[1..s.len() - 1].to_string(),
        _ => s,
    }
}

fn lvalue(l: &LValue) -> String {
    match &l.select {
        Select::Whole => l.name.clone(),
        Select::Part(m, s) if m == s => format!("{}[{m}]", l.name),
        Select::Part(m, s) => format!("{}[{m}:{s}]", l.name),
        Select::Bit(i) | Select::Word(i) => format!("{}[{}]", l.name, expr(i)),
    }
}

fn stmts(out: &mut String, body: &[Stmt], level: usize, op: &str) {
    for s in body {
        stmt(out, s, level, op);
    }
}

fn stmt(out: &mut String, s: &Stmt, level: usize, op: &str) {
    let pad = INDENT.repeat(level);
    match s {
        Stmt::Assign(l, r) => {
            let _ = writeln!(out, "{pad}{} {op} {};", lvalue(l), top_expr(r));
        }
        Stmt::If { cond, then, els } => {
            let _ = writeln!(out, "{pad}if ({}) begin", top_expr(cond));
            stmts(out, then, level + 1, op);
            if els.is_empty() {
                let _ = writeln!(out, "{pad}end");
            } else if let [nested @ Stmt::If { .. }] = els.as_slice() {
                // `else if` chains print flat, as people write them.
                let mut inner = String::new();
                stmt(&mut inner, nested, level, op);
                let _ = write!(out, "{pad}end else {}", inner.trim_start());
            } else {
                let _ = writeln!(out, "{pad}end else begin");
                stmts(out, els, level + 1, op);
                let _ = writeln!(out, "{pad}end");
            }
        }
        Stmt::Case { sel, arms, default } => {
            let _ = writeln!(out, "{pad}case ({})", expr(sel));
            for (labels, body) in arms {
                let ls: Vec<String> = labels.iter().map(expr).collect();
                let _ = writeln!(out, "{pad}{INDENT}{}: begin", ls.join(", "));
                stmts(out, body, level + 2, op);
                let _ = writeln!(out, "{pad}{INDENT}end");
            }
            let _ = writeln!(out, "{pad}{INDENT}default: begin");
            stmts(out, default, level + 2, op);
            let _ = writeln!(out, "{pad}{INDENT}end");
            let _ = writeln!(out, "{pad}endcase");
        }
    }
}

fn decl(out: &mut String, d: &Decl) {
    for code in &d.waivers {
        let _ = writeln!(out, "{INDENT}/* verilator lint_off {code} */");
    }
    for (k, v) in &d.attrs {
        let _ = writeln!(out, "{INDENT}(* {k} = \"{v}\" *)");
    }
    let kw = if d.kind == NetKind::Reg {
        "reg"
    } else {
        "wire"
    };
    let sign = if d.signed { "signed " } else { "" };
    let depth = d
        .depth
        .map(|n| format!(" [0:{}]", n - 1))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{INDENT}{kw} {sign}{}{}{depth};",
        range(d.width),
        d.name
    );
    for code in &d.waivers {
        let _ = writeln!(out, "{INDENT}/* verilator lint_on {code} */");
    }
}

/// Prints one module as a complete file, header included.
pub fn module(m: &Module, header: &Header) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by {}. Do not edit: regenerate instead.",
        header.generator
    );
    let _ = writeln!(out, "// params-hash: {}", header.params_hash);
    for line in &m.doc {
        let _ = writeln!(out, "// {line}");
    }
    out.push_str("`default_nettype none\n\n");
    let _ = write!(out, "module {}", m.name);
    if !m.params.is_empty() {
        out.push_str(" #(\n");
        let ps: Vec<String> = m
            .params
            .iter()
            .map(|(n, v)| format!("{INDENT}parameter integer {n} = {v}"))
            .collect();
        out.push_str(&ps.join(",\n"));
        out.push_str("\n)");
    }
    if m.ports.is_empty() {
        out.push_str(";\n");
    } else {
        out.push_str(" (\n");
        let ports: Vec<String> = m
            .ports
            .iter()
            .map(|p| {
                let dir = if p.dir == Dir::Input {
                    "input "
                } else {
                    "output"
                };
                let kind = if p.is_reg { "reg " } else { "wire" };
                let sign = if p.signed { "signed " } else { "" };
                let line = format!("{INDENT}{dir} {kind} {sign}{}{}", range(p.width), p.name);
                let off: String = p
                    .waivers
                    .iter()
                    .map(|c| format!("{INDENT}/* verilator lint_off {c} */\n"))
                    .collect();
                let on: String = p
                    .waivers
                    .iter()
                    .map(|c| format!("\n{INDENT}/* verilator lint_on {c} */"))
                    .collect();
                let attrs: String = p
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{INDENT}(* {k} = \"{v}\" *)\n"))
                    .collect();
                format!("{attrs}{off}{line}{on}")
            })
            .collect();
        out.push_str(&ports.join(",\n"));
        out.push_str("\n);\n");
    }
    for d in &m.decls {
        decl(&mut out, d);
    }
    if !m.decls.is_empty() {
        out.push('\n');
    }
    for item in &m.items {
        match item {
            Item::Comment(text) => {
                for line in text.lines() {
                    let _ = writeln!(out, "{INDENT}// {line}");
                }
            }
            Item::Assign(l, r) => {
                let _ = writeln!(out, "{INDENT}assign {} = {};", lvalue(l), top_expr(r));
            }
            Item::Always(Always::Clocked { clock, body }) => {
                let _ = writeln!(out, "{INDENT}always @(posedge {clock}) begin");
                stmts(&mut out, body, 2, "<=");
                let _ = writeln!(out, "{INDENT}end");
            }
            Item::Always(Always::Comb(body)) => {
                let _ = writeln!(out, "{INDENT}always @(*) begin");
                stmts(&mut out, body, 2, "=");
                let _ = writeln!(out, "{INDENT}end");
            }
            Item::Instance(inst) => {
                let _ = write!(out, "{INDENT}{}", inst.module);
                if !inst.params.is_empty() {
                    let ps: Vec<String> = inst
                        .params
                        .iter()
                        .map(|(n, v)| format!(".{n}({v})"))
                        .collect();
                    let _ = write!(out, " #({})", ps.join(", "));
                }
                let _ = writeln!(out, " {} (", inst.name);
                let cs: Vec<String> = inst
                    .conns
                    .iter()
                    .map(|(p, e)| format!("{INDENT}{INDENT}.{p}({})", expr(e)))
                    .collect();
                out.push_str(&cs.join(",\n"));
                let _ = writeln!(out, "\n{INDENT});");
            }
        }
    }
    out.push_str("endmodule\n\n`default_nettype wire\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_print_full_patterns() {
        assert_eq!(print_const(-1, 8, true), "8'shff");
        assert_eq!(print_const(-128, 8, true), "8'sh80");
        assert_eq!(print_const(5, 4, false), "4'd5");
        assert_eq!(print_const(-1, 1, false), "1'b1");
        assert_eq!(
            print_const(-1, 130, false),
            format!("130'h3{}", "f".repeat(32))
        );
        assert_eq!(print_const(-2, 6, true), "6'sh3e");
    }
}

//! Modules and their contents, and the checked builder that makes them.

use std::collections::BTreeSet;

use crate::error::{HdlError, Result};
use crate::expr::{Expr, ExprKind, Mem, Sig};
use crate::ident;

/// Port direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dir {
    /// `input`
    Input,
    /// `output`
    Output,
}

/// How a signal is declared, which decides how it may be driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetKind {
    /// An input port: never assigned inside the module.
    Input,
    /// A `wire` (or `output wire`): driven by `assign` or an instance output.
    Wire,
    /// A `reg` (or `output reg`): assigned in `always` blocks.
    Reg,
}

/// A module port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Port {
    /// Identifier.
    pub name: String,
    /// Direction.
    pub dir: Dir,
    /// Width in bits.
    pub width: u32,
    /// Declared `signed`.
    pub signed: bool,
    /// `output reg` rather than `output wire`.
    pub is_reg: bool,
    /// Verilator warnings waived for this port on purpose (e.g. `UNUSEDSIGNAL` for the low
    /// address bits of a word-aligned bus), printed as `lint_off`/`lint_on` pragmas around it.
    pub waivers: Vec<String>,
    /// Verilog attributes `(* key = "value" *)` printed before the port, in insertion order
    /// (e.g. Vivado's `X_INTERFACE_INFO`, which IP packaging and block designs read).
    pub attributes: Vec<(String, String)>,
}

/// A wire, reg or memory declaration inside a module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decl {
    /// Identifier.
    pub name: String,
    /// `wire` or `reg`.
    pub kind: NetKind,
    /// Word width.
    pub width: u32,
    /// Declared `signed`.
    pub signed: bool,
    /// For memories: number of words.
    pub depth: Option<u32>,
    /// Synthesis attributes, printed as `(* key = "value" *)`.
    pub attrs: Vec<(String, String)>,
    /// Verilator warnings waived for this declaration on purpose (e.g. `UNUSEDSIGNAL` for the
    /// low bits of a product that rounding discards), so `-Wall` stays meaningful elsewhere.
    pub waivers: Vec<String>,
}

/// Target of an assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LValue {
    pub(crate) name: String,
    pub(crate) select: Select,
    pub(crate) width: u32,
    pub(crate) kind: NetKind,
}

/// Which part of the target is written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Select {
    /// The whole signal.
    Whole,
    /// `[msb:lsb]`
    Part(u32, u32),
    /// `[index]` of a vector.
    Bit(Box<Expr>),
    /// `[addr]` of a memory.
    Word(Box<Expr>),
}

impl LValue {
    /// The whole signal.
    pub fn sig(sig: &Sig) -> Result<LValue> {
        let kind = sig_kind(sig)?;
        Ok(LValue {
            name: sig.name.clone(),
            select: Select::Whole,
            width: sig.width,
            kind,
        })
    }
    /// Bits `[msb:lsb]` of a signal.
    pub fn part(sig: &Sig, msb: u32, lsb: u32) -> Result<LValue> {
        sig.check_select(msb, lsb)?;
        let kind = sig_kind(sig)?;
        let select = if sig.width == 1 {
            Select::Whole
        } else {
            Select::Part(msb, lsb)
        };
        Ok(LValue {
            name: sig.name.clone(),
            select,
            width: msb - lsb + 1,
            kind,
        })
    }
    /// One bit chosen at run time.
    pub fn bit_at(sig: &Sig, index: &Expr) -> Result<LValue> {
        let kind = sig_kind(sig)?;
        Ok(LValue {
            name: sig.name.clone(),
            select: Select::Bit(Box::new(index.clone())),
            width: 1,
            kind,
        })
    }
    /// A memory word.
    pub fn word(mem: &Mem, addr: &Expr) -> Result<LValue> {
        mem.check_addr(addr)?;
        Ok(LValue {
            name: mem.name.clone(),
            select: Select::Word(Box::new(addr.clone())),
            width: mem.width,
            kind: NetKind::Reg,
        })
    }
    /// Width written.
    pub fn width(&self) -> u32 {
        self.width
    }
}

fn sig_kind(sig: &Sig) -> Result<NetKind> {
    match sig.kind {
        NetKind::Input => Err(HdlError::Misuse(format!(
            "input port `{}` cannot be assigned",
            sig.name
        ))),
        k => Ok(k),
    }
}

/// A statement inside an `always` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stmt {
    /// `lhs <= rhs` in clocked blocks, `lhs = rhs` in combinational ones.
    Assign(LValue, Expr),
    /// `if (cond) ... else ...`
    If {
        /// 1-bit condition.
        cond: Expr,
        /// Taken when true.
        then: Vec<Stmt>,
        /// Taken when false (may be empty).
        els: Vec<Stmt>,
    },
    /// `case (sel) ... endcase`
    Case {
        /// Selector.
        sel: Expr,
        /// Label sets and their bodies.
        arms: Vec<(Vec<Expr>, Vec<Stmt>)>,
        /// `default:` body.
        default: Vec<Stmt>,
    },
}

impl Stmt {
    /// A width-checked assignment.
    pub fn assign(lhs: LValue, rhs: Expr) -> Result<Stmt> {
        if lhs.width != rhs.width {
            return Err(HdlError::WidthMismatch {
                context: format!("assignment to `{}`", lhs.name),
                left: lhs.width,
                right: rhs.width,
            });
        }
        Ok(Stmt::Assign(lhs, rhs))
    }
    /// Shorthand: assign a whole signal.
    pub fn set(sig: &Sig, rhs: Expr) -> Result<Stmt> {
        Stmt::assign(LValue::sig(sig)?, rhs)
    }
    /// `if (cond) then else els`.
    pub fn if_else(cond: Expr, then: Vec<Stmt>, els: Vec<Stmt>) -> Result<Stmt> {
        if cond.width != 1 {
            return Err(HdlError::WidthMismatch {
                context: "if condition".into(),
                left: 1,
                right: cond.width,
            });
        }
        Ok(Stmt::If { cond, then, els })
    }
    /// `if (cond) then`.
    pub fn if_(cond: Expr, then: Vec<Stmt>) -> Result<Stmt> {
        Stmt::if_else(cond, then, Vec::new())
    }
    /// `case`; every label must be a constant of the selector's width.
    pub fn case(sel: Expr, arms: Vec<(Vec<Expr>, Vec<Stmt>)>, default: Vec<Stmt>) -> Result<Stmt> {
        for (labels, _) in &arms {
            for l in labels {
                if !matches!(l.kind, ExprKind::Const(_)) {
                    return Err(HdlError::Misuse("case labels must be constants".into()));
                }
                if l.width != sel.width {
                    return Err(HdlError::WidthMismatch {
                        context: "case label".into(),
                        left: sel.width,
                        right: l.width,
                    });
                }
            }
        }
        Ok(Stmt::Case { sel, arms, default })
    }
    fn visit_targets<'a>(&'a self, f: &mut impl FnMut(&'a LValue)) {
        match self {
            Stmt::Assign(l, _) => f(l),
            Stmt::If { then, els, .. } => then.iter().chain(els).for_each(|s| s.visit_targets(f)),
            Stmt::Case { arms, default, .. } => arms
                .iter()
                .flat_map(|(_, b)| b)
                .chain(default)
                .for_each(|s| s.visit_targets(f)),
        }
    }
}

/// An `always` block.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Always {
    /// `always @(posedge clock)` with nonblocking assignments.
    Clocked {
        /// Clock signal name.
        clock: String,
        /// Body.
        body: Vec<Stmt>,
    },
    /// `always @(*)` with blocking assignments.
    Comb(Vec<Stmt>),
}

/// A module instance with named connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Instance {
    /// Instantiated module.
    pub module: String,
    /// Instance name.
    pub name: String,
    /// Parameter overrides.
    pub params: Vec<(String, i64)>,
    /// `.port(expr)` connections in the module's port order.
    pub conns: Vec<(String, Expr)>,
}

/// Module body items, printed in insertion order after the declarations.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Item {
    /// `assign lhs = rhs;`
    Assign(LValue, Expr),
    /// An always block.
    Always(Always),
    /// A module instance.
    Instance(Instance),
    /// A `//` comment line (explains why, for whoever reads the generated code).
    Comment(String),
}

/// A Verilog module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Module {
    pub(crate) name: String,
    pub(crate) doc: Vec<String>,
    pub(crate) params: Vec<(String, i64)>,
    pub(crate) ports: Vec<Port>,
    pub(crate) decls: Vec<Decl>,
    pub(crate) items: Vec<Item>,
}

impl Module {
    /// Module name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Ports in declaration order.
    pub fn ports(&self) -> &[Port] {
        &self.ports
    }
    /// A port by name.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }
    /// Parameters with their default values.
    pub fn params(&self) -> &[(String, i64)] {
        &self.params
    }
    /// Internal declarations.
    pub fn decls(&self) -> &[Decl] {
        &self.decls
    }
    /// Body items.
    pub fn items(&self) -> &[Item] {
        &self.items
    }
    /// Names of the modules this one instantiates (sorted, unique).
    pub fn instantiated_modules(&self) -> BTreeSet<String> {
        self.items
            .iter()
            .filter_map(|i| match i {
                Item::Instance(inst) => Some(inst.module.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Builds a [`Module`], checking names, widths and drivers as it goes.
#[derive(Debug)]
pub struct ModuleBuilder {
    module: Module,
    names: BTreeSet<String>,
}

impl ModuleBuilder {
    /// Starts a module; `name` must be a valid identifier (use [`ident::sanitize`] for user text).
    pub fn new(name: &str) -> Result<Self> {
        let name = ident::check(name)?;
        Ok(ModuleBuilder {
            module: Module {
                name,
                doc: Vec::new(),
                params: Vec::new(),
                ports: Vec::new(),
                decls: Vec::new(),
                items: Vec::new(),
            },
            names: BTreeSet::new(),
        })
    }

    /// Adds a line to the comment block printed above the module.
    pub fn doc(&mut self, line: impl Into<String>) -> &mut Self {
        self.module.doc.push(line.into());
        self
    }

    fn claim(&mut self, name: &str) -> Result<String> {
        let name = ident::check(name)?;
        if name == self.module.name {
            // Verilator flags a signal that shadows its module's name (VARHIDDEN).
            return Err(HdlError::Misuse(format!(
                "`{name}` is the module's own name; pick another signal name"
            )));
        }
        if !self.names.insert(name.clone()) {
            return Err(HdlError::Duplicate {
                module: self.module.name.clone(),
                name,
            });
        }
        Ok(name)
    }

    fn check_width(what: &str, width: u32) -> Result<()> {
        if width == 0 || width > 65_536 {
            return Err(HdlError::BadWidth {
                what: what.to_string(),
                width,
            });
        }
        Ok(())
    }

    /// A module parameter (`parameter integer NAME = value`), usable as a 32-bit signed expression.
    pub fn param(&mut self, name: &str, value: i64) -> Result<Expr> {
        let name = self.claim(name)?;
        self.module.params.push((name.clone(), value));
        Ok(Expr {
            kind: ExprKind::Ref(name),
            width: 32,
            signed: true,
        })
    }

    fn port(
        &mut self,
        name: &str,
        dir: Dir,
        width: u32,
        signed: bool,
        is_reg: bool,
    ) -> Result<Sig> {
        Self::check_width(&format!("port `{name}`"), width)?;
        let name = self.claim(name)?;
        self.module.ports.push(Port {
            name: name.clone(),
            dir,
            width,
            signed,
            is_reg,
            waivers: Vec::new(),
            attributes: Vec::new(),
        });
        let kind = match (dir, is_reg) {
            (Dir::Input, _) => NetKind::Input,
            (Dir::Output, false) => NetKind::Wire,
            (Dir::Output, true) => NetKind::Reg,
        };
        Ok(Sig {
            name,
            width,
            signed,
            kind,
        })
    }
    /// `input wire [width-1:0] name`
    pub fn input(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Input, width, false, false)
    }
    /// `input wire signed [width-1:0] name`
    pub fn input_signed(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Input, width, true, false)
    }
    /// `output wire [width-1:0] name`, driven by `assign`.
    pub fn output(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Output, width, false, false)
    }
    /// `output wire signed ...`
    pub fn output_signed(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Output, width, true, false)
    }
    /// `output reg [width-1:0] name`, driven from an always block.
    pub fn output_reg(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Output, width, false, true)
    }
    /// `output reg signed ...`
    pub fn output_reg_signed(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.port(name, Dir::Output, width, true, true)
    }

    fn decl(&mut self, name: &str, kind: NetKind, width: u32, signed: bool) -> Result<Sig> {
        Self::check_width(&format!("`{name}`"), width)?;
        let name = self.claim(name)?;
        self.module.decls.push(Decl {
            name: name.clone(),
            kind,
            width,
            signed,
            depth: None,
            attrs: Vec::new(),
            waivers: Vec::new(),
        });
        Ok(Sig {
            name,
            width,
            signed,
            kind,
        })
    }
    /// `wire [width-1:0] name`
    pub fn wire(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.decl(name, NetKind::Wire, width, false)
    }
    /// `wire signed [width-1:0] name`
    pub fn wire_signed(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.decl(name, NetKind::Wire, width, true)
    }
    /// `reg [width-1:0] name`
    pub fn reg(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.decl(name, NetKind::Reg, width, false)
    }
    /// `reg signed [width-1:0] name`
    pub fn reg_signed(&mut self, name: &str, width: u32) -> Result<Sig> {
        self.decl(name, NetKind::Reg, width, true)
    }
    /// A wire holding `value`, with the value's width and signedness; handy for naming
    /// intermediate results (and needed before [`Sig::extend`] on an expression).
    pub fn wire_from(&mut self, name: &str, value: Expr) -> Result<Sig> {
        let sig = self.decl(name, NetKind::Wire, value.width, value.signed)?;
        self.assign(&LValue::sig(&sig)?, value)?;
        Ok(sig)
    }
    /// `reg [width-1:0] name [0:depth-1]`, with an optional `ram_style` attribute
    /// (`"block"`, `"distributed"`, `"ultra"`).
    pub fn memory(
        &mut self,
        name: &str,
        width: u32,
        depth: u32,
        signed: bool,
        ram_style: Option<&str>,
    ) -> Result<Mem> {
        Self::check_width(&format!("memory `{name}`"), width)?;
        if depth == 0 {
            return Err(HdlError::BadWidth {
                what: format!("depth of memory `{name}`"),
                width: 0,
            });
        }
        let name = self.claim(name)?;
        let attrs = ram_style
            .map(|s| vec![("ram_style".to_string(), s.to_string())])
            .unwrap_or_default();
        self.module.decls.push(Decl {
            name: name.clone(),
            kind: NetKind::Reg,
            width,
            signed,
            depth: Some(depth),
            attrs,
            waivers: Vec::new(),
        });
        Ok(Mem {
            name,
            width,
            depth,
            signed,
        })
    }
    /// Adds a synthesis attribute to a declared wire, reg or memory.
    pub fn attribute(&mut self, name: &str, key: &str, value: &str) -> Result<()> {
        let decl = self
            .module
            .decls
            .iter_mut()
            .find(|d| d.name == name)
            .ok_or_else(|| HdlError::Misuse(format!("attribute on undeclared `{name}`")))?;
        decl.attrs
            .push((ident::check(key)?, value.replace(['"', '\\', '\n'], "_")));
        Ok(())
    }
    /// Marks a declared signal or input port as partly unused on purpose (e.g. the low bits of
    /// a product that rounding discards), so Verilator's `-Wall` does not flag it.
    pub fn allow_unused(&mut self, name: &str) -> Result<()> {
        self.waive_lint(name, "UNUSEDSIGNAL")
    }

    /// Waives one Verilator warning code for one port or declaration, for names a convention
    /// imposes (e.g. the `interrupt` port Vivado expects, which Verilator flags as a C++ word).
    pub fn waive_lint(&mut self, name: &str, code: &str) -> Result<()> {
        let code = ident::check(code)?;
        let waivers = if let Some(port) = self.module.ports.iter_mut().find(|p| p.name == name) {
            &mut port.waivers
        } else {
            let decl = self
                .module
                .decls
                .iter_mut()
                .find(|d| d.name == name)
                .ok_or_else(|| HdlError::Misuse(format!("lint waiver on undeclared `{name}`")))?;
            &mut decl.waivers
        };
        if !waivers.contains(&code) {
            waivers.push(code);
        }
        Ok(())
    }

    /// Adds the attribute `(* key = "value" *)` to port `name`. The key must be an identifier
    /// and the value printable ASCII without `"` or `\\`, so the attribute cannot end early.
    pub fn port_attribute(&mut self, name: &str, key: &str, value: &str) -> Result<()> {
        let key = ident::check(key)?;
        if !value
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
        {
            return Err(HdlError::Misuse(format!(
                "attribute `{key}` on `{name}`: value {value:?} must be printable ASCII without \
                 quotes or backslashes"
            )));
        }
        let port = self
            .module
            .ports
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| HdlError::Misuse(format!("attribute on undeclared port `{name}`")))?;
        port.attributes.push((key, value.to_string()));
        Ok(())
    }

    /// `assign lhs = rhs;` — the target must be a wire.
    pub fn assign(&mut self, lhs: &LValue, rhs: Expr) -> Result<()> {
        if lhs.kind != NetKind::Wire {
            return Err(HdlError::Misuse(format!(
                "`assign` needs a wire, but `{}` is a reg",
                lhs.name
            )));
        }
        if let Stmt::Assign(l, r) = Stmt::assign(lhs.clone(), rhs)? {
            self.module.items.push(Item::Assign(l, r));
        }
        Ok(())
    }
    /// Shorthand: `assign sig = rhs;`
    pub fn assign_sig(&mut self, sig: &Sig, rhs: Expr) -> Result<()> {
        self.assign(&LValue::sig(sig)?, rhs)
    }

    /// A full-width product wire `name = a * b` of `a.width + b.width` bits. This is the only
    /// way to multiply: synthesis tools infer DSP blocks from exactly this shape.
    pub fn product(&mut self, name: &str, a: &Expr, b: &Expr) -> Result<Sig> {
        if a.signed != b.signed {
            return Err(HdlError::SignMismatch {
                context: format!("product `{name}`"),
            });
        }
        let width = a.width + b.width;
        let sig = self.decl(name, NetKind::Wire, width, a.signed)?;
        // In `assign p = a * b;` Verilog extends both operands to the width of `p` (sign-extending
        // when both are signed), so the product is exact.
        let value = Expr {
            kind: ExprKind::Mul(Box::new(a.clone()), Box::new(b.clone())),
            width,
            signed: a.signed,
        };
        self.module
            .items
            .push(Item::Assign(LValue::sig(&sig)?, value));
        Ok(sig)
    }

    /// `always @(posedge clock) begin ... end`; every target must be a reg.
    pub fn clocked(&mut self, clock: &Sig, body: Vec<Stmt>) -> Result<()> {
        if clock.width != 1 {
            return Err(HdlError::WidthMismatch {
                context: "clock".into(),
                left: 1,
                right: clock.width,
            });
        }
        self.check_reg_targets(&body)?;
        self.module.items.push(Item::Always(Always::Clocked {
            clock: clock.name.clone(),
            body,
        }));
        Ok(())
    }
    /// `always @(*) begin ... end`; every target must be a reg, and should get a default
    /// assignment first so no latch is inferred (Verilator's `-Wall` reports one if not).
    pub fn comb(&mut self, body: Vec<Stmt>) -> Result<()> {
        self.check_reg_targets(&body)?;
        self.module.items.push(Item::Always(Always::Comb(body)));
        Ok(())
    }
    fn check_reg_targets(&self, body: &[Stmt]) -> Result<()> {
        let mut bad = None;
        for s in body {
            s.visit_targets(&mut |l| {
                if l.kind != NetKind::Reg && bad.is_none() {
                    bad = Some(l.name.clone());
                }
            });
        }
        match bad {
            Some(name) => Err(HdlError::Misuse(format!(
                "`{name}` is a wire; always blocks may only assign regs"
            ))),
            None => Ok(()),
        }
    }

    /// Instantiates `module` with named connections; every port must be connected once with an
    /// expression of its width, and outputs must go to wires.
    pub fn instance(
        &mut self,
        module: &Module,
        name: &str,
        params: &[(&str, i64)],
        conns: &[(&str, Expr)],
    ) -> Result<()> {
        let inst_name = self.claim(name)?;
        let err = |problem: String| HdlError::BadInstance {
            instance: inst_name.clone(),
            module: module.name.clone(),
            problem,
        };
        for (p, _) in params {
            if !module.params.iter().any(|(n, _)| n == p) {
                return Err(err(format!("module has no parameter `{p}`")));
            }
        }
        let mut ordered = Vec::with_capacity(module.ports.len());
        for port in &module.ports {
            let mut found = conns.iter().filter(|(n, _)| *n == port.name);
            let Some((_, e)) = found.next() else {
                return Err(err(format!("port `{}` is not connected", port.name)));
            };
            if found.next().is_some() {
                return Err(err(format!("port `{}` is connected twice", port.name)));
            }
            if e.width != port.width {
                return Err(err(format!(
                    "port `{}` is {} bits but is connected to {} bits",
                    port.name, port.width, e.width
                )));
            }
            if port.dir == Dir::Output && !self.is_wire_target(e) {
                return Err(err(format!(
                    "output port `{}` must connect to a wire or a part of one",
                    port.name
                )));
            }
            ordered.push((port.name.clone(), e.clone()));
        }
        if let Some((n, _)) = conns.iter().find(|(n, _)| module.port(n).is_none()) {
            return Err(err(format!("module has no port `{n}`")));
        }
        self.module.items.push(Item::Instance(Instance {
            module: module.name.clone(),
            name: inst_name.clone(),
            params: params.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            conns: ordered,
        }));
        Ok(())
    }
    fn is_wire_target(&self, e: &Expr) -> bool {
        let name = match &e.kind {
            ExprKind::Ref(n) | ExprKind::Slice { name: n, .. } => n,
            _ => return false,
        };
        self.module
            .decls
            .iter()
            .any(|d| &d.name == name && d.kind == NetKind::Wire && d.depth.is_none())
            || self
                .module
                .ports
                .iter()
                .any(|p| &p.name == name && p.dir == Dir::Output && !p.is_reg)
    }

    /// A `//` comment in the body, explaining why the next items are the way they are.
    pub fn comment(&mut self, text: impl Into<String>) {
        self.module.items.push(Item::Comment(text.into()));
    }

    /// Finishes the module.
    pub fn finish(self) -> Module {
        self.module
    }
}

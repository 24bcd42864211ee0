//! Resource estimate vs board budget.

use serde::{Deserialize, Serialize};

use crate::board::Board;

/// An estimate of what a design uses, in the units the board database counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceEstimate {
    /// LUTs.
    pub lut: u64,
    /// Flip-flops.
    pub ff: u64,
    /// DSP slices.
    pub dsp: u64,
    /// 18 Kb block RAMs (a BRAM36 counts as two).
    pub bram18: u64,
    /// UltraRAMs.
    pub uram: u64,
}

/// Two designs side by side use the sum of their resources.
impl std::ops::Add for ResourceEstimate {
    type Output = ResourceEstimate;
    fn add(self, o: ResourceEstimate) -> ResourceEstimate {
        ResourceEstimate {
            lut: self.lut + o.lut,
            ff: self.ff + o.ff,
            dsp: self.dsp + o.dsp,
            bram18: self.bram18 + o.bram18,
            uram: self.uram + o.uram,
        }
    }
}

/// One budget line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utilisation {
    /// `lut`, `ff`, `dsp`, `bram18` or `uram`.
    pub resource: String,
    /// Estimated use.
    pub used: u64,
    /// Available on the device.
    pub available: u64,
    /// used / available; `None` when the device has none of this resource.
    pub fraction: Option<f64>,
    /// True when `used > available`.
    pub exceeds: bool,
}

/// Per-resource utilisation of one estimate on one board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// Board name.
    pub board: String,
    /// One line per resource, in the order lut, ff, dsp, bram18, uram.
    pub lines: Vec<Utilisation>,
}

impl BudgetReport {
    /// True when nothing exceeds the device.
    pub fn fits(&self) -> bool {
        self.lines.iter().all(|l| !l.exceeds)
    }
    /// The lines that exceed the device.
    pub fn exceeding(&self) -> Vec<&Utilisation> {
        self.lines.iter().filter(|l| l.exceeds).collect()
    }
    /// The lines above `limit` (e.g. 0.8 for a routing-headroom target); a resource the
    /// device lacks counts as above any limit when it is used at all.
    pub fn above(&self, limit: f64) -> Vec<&Utilisation> {
        self.lines
            .iter()
            .filter(|l| match l.fraction {
                Some(f) => f > limit,
                None => l.used > 0,
            })
            .collect()
    }
}

/// Compares an estimate with the board's totals.
pub fn check_budget(board: &Board, est: &ResourceEstimate) -> BudgetReport {
    let r = &board.resources;
    let rows = [
        ("lut", est.lut, r.lut.value),
        ("ff", est.ff, r.ff.value),
        ("dsp", est.dsp, r.dsp.value),
        ("bram18", est.bram18, board.bram18()),
        ("uram", est.uram, r.uram.value),
    ];
    let lines = rows
        .into_iter()
        .map(|(name, used, available)| Utilisation {
            resource: name.to_string(),
            used,
            available,
            // u64 → f64 loses precision only above 2^53, far beyond any device.
            fraction: (available > 0).then(|| used as f64 / available as f64),
            exceeds: used > available,
        })
        .collect();
    BudgetReport {
        board: board.name.clone(),
        lines,
    }
}

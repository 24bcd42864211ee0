//! `accelforge boards`: list the board database and show one board with every source.

use std::path::PathBuf;

use accelforge_boards::{Board, BoardDb, Entry, Origin, Sourced};
use anyhow::Context;
use clap::{Args, Subcommand};

/// Board database: list boards or show one with the source of every number.
#[derive(Debug, Args)]
pub struct BoardsArgs {
    /// Directory of extra/overriding board TOML files (default: $ACCELFORGE_BOARDS_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub boards_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub action: BoardsAction,
}

/// `boards` actions.
#[derive(Debug, Subcommand)]
pub enum BoardsAction {
    /// One line per board: name, part, family, resources, DDR bandwidth, default clock.
    List {
        /// Print JSON (full board records) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every value of one board with its source.
    Show {
        /// Board name; case, `_`, `-` and spaces are ignored (`PYNQ_Z2` = `pynq-z2`).
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `accelforge boards …`.
pub fn run(args: BoardsArgs) -> anyhow::Result<()> {
    let db = BoardDb::load(args.boards_dir.as_deref()).context("loading the board database")?;
    for note in db.notes() {
        eprintln!("note: {note}");
    }
    match args.action {
        BoardsAction::List { json } => {
            for b in db.broken() {
                eprintln!(
                    "warning: skipped board file {}: {} (the other boards are listed)",
                    b.file.display(),
                    b.problem
                );
            }
            if json {
                let all: Vec<_> = db.entries().iter().map(entry_json).collect();
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", table(&db));
            }
        }
        BoardsAction::Show { name, json } => {
            let entry = db.entry(&name)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entry_json(entry))?);
            } else {
                print!("{}", show(entry));
            }
        }
    }
    Ok(())
}

fn entry_json(e: &Entry) -> serde_json::Value {
    let b = &e.board;
    serde_json::json!({
        "board": b,
        "origin": e.origin,
        "derived": {
            "bram18": b.bram18(),
            "ddr_bytes_per_pl_cycle": b.ddr_bytes_per_default_cycle(),
        },
    })
}

fn table(db: &BoardDb) -> String {
    let header = [
        "name",
        "part",
        "family",
        "LUT",
        "FF",
        "DSP",
        "BRAM36",
        "URAM",
        "DDR GB/s",
        "clock MHz",
    ];
    let rows: Vec<[String; 10]> = db
        .boards()
        .map(|b| {
            [
                b.name.clone(),
                b.part.value.clone(),
                b.family.yosys_name().to_string(),
                b.resources.lut.value.to_string(),
                b.resources.ff.value.to_string(),
                b.resources.dsp.value.to_string(),
                b.resources.bram36.value.to_string(),
                b.resources.uram.value.to_string(),
                format!("{:.2}", b.ddr.peak_gbps.value),
                format!("{}", b.clock.default_pl_mhz.value),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            if i < 3 {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("{c:>w$}"));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(String::from));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

fn sourced<T: std::fmt::Display>(out: &mut String, label: &str, v: &Sourced<T>, unit: &str) {
    let ds = if v.datasheet_only {
        " (ds: datasheet only)"
    } else {
        ""
    };
    out.push_str(&format!(
        "  {label:<16} {}{unit}{ds}\n  {:<16} source: {}\n",
        v.value, "", v.source
    ));
}

fn show(e: &Entry) -> String {
    let b: &Board = &e.board;
    let mut o = String::new();
    o.push_str(&format!("{} ({}), {}\n", b.display_name, b.name, b.vendor));
    match &e.origin {
        Origin::BuiltIn => o.push_str("  origin: built-in\n"),
        Origin::User(p) => o.push_str(&format!("  origin: {}\n", p.display())),
    }
    o.push_str(&format!(
        "  family: {}   PS: {}   DSP type: {}\n",
        b.family.yosys_name(),
        b.ps.ip_name(),
        b.resources.dsp.dsp_type.name()
    ));
    sourced(&mut o, "part", &b.part, "");
    if let Some(bp) = &b.board_part {
        sourced(&mut o, "board_part", bp, "");
    }
    o.push_str("resources\n");
    let r = &b.resources;
    sourced(&mut o, "LUT", &r.lut, "");
    sourced(&mut o, "FF", &r.ff, "");
    let dsp = Sourced {
        value: format!("{} {}", r.dsp.value, r.dsp.dsp_type.name()),
        source: r.dsp.source.clone(),
        datasheet_only: r.dsp.datasheet_only,
    };
    sourced(&mut o, "DSP", &dsp, "");
    sourced(&mut o, "BRAM36", &r.bram36, "");
    o.push_str(&format!(
        "  {:<16} {} (derived: 2 x BRAM36)\n",
        "BRAM18",
        b.bram18()
    ));
    sourced(&mut o, "URAM", &r.uram, "");
    o.push_str("processor and clock\n");
    sourced(&mut o, "CPU", &b.cpu, "");
    sourced(&mut o, "default PL clock", &b.clock.default_pl_mhz, " MHz");
    o.push_str("DDR\n");
    let d = &b.ddr;
    sourced(&mut o, "type", &d.kind, "");
    sourced(&mut o, "width", &d.width_bits, " bit");
    sourced(&mut o, "rate", &d.rate_mts, " MT/s");
    sourced(&mut o, "peak", &d.peak_gbps, " GB/s");
    sourced(&mut o, "size", &d.size_mb, " MiB");
    o.push_str(&format!(
        "  {:<16} {:.1} B (derived: peak / default PL clock)\n",
        "per PL cycle",
        b.ddr_bytes_per_default_cycle()
    ));
    o.push_str("PS-PL ports\n");
    for p in &b.ps_pl_ports {
        let widths = p
            .widths
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join("/");
        let dir = match p.direction {
            accelforge_boards::PortDirection::Slave => "slave",
            accelforge_boards::PortDirection::Master => "master",
        };
        o.push_str(&format!(
            "  {:<16} {dir}, {widths} bit{}\n  {:<16} source: {}\n",
            p.name,
            p.note
                .as_deref()
                .map(|n| format!("; {n}"))
                .unwrap_or_default(),
            "",
            p.source
        ));
    }
    o
}

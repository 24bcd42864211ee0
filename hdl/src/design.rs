//! A design: a top module and every module it needs, plus the header that ties the printed text
//! to the parameters that produced it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{HdlError, Result};
use crate::module::Module;
use crate::printer::{self, Header};

/// Generator name and version written into every file header.
pub const GENERATOR: &str = concat!("accelforge-hdl ", env!("CARGO_PKG_VERSION"));

/// A set of modules with one top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Design {
    top: String,
    modules: BTreeMap<String, Module>,
    header: Header,
}

/// SHA-256 of the canonical JSON of `params`, as 16 hex digits (enough to tell designs apart in
/// a header; the full parameters travel beside the Verilog as JSON).
pub fn params_hash<P: serde::Serialize + ?Sized>(params: &P) -> String {
    let json = serde_json::to_vec(params).unwrap_or_default();
    let digest = Sha256::digest(&json);
    hex::encode(&digest[..8])
}

impl Design {
    /// A design whose top is `top`, produced from `params` (hashed into the header).
    pub fn new<P: serde::Serialize + ?Sized>(top: Module, params: &P) -> Design {
        let header = Header {
            generator: GENERATOR.to_string(),
            params_hash: params_hash(params),
        };
        let name = top.name().to_string();
        let mut modules = BTreeMap::new();
        modules.insert(name.clone(), top);
        Design {
            top: name,
            modules,
            header,
        }
    }

    /// Adds a module the design instantiates. Adding the same module twice is harmless; two
    /// different modules with one name are an error.
    pub fn add(&mut self, module: Module) -> Result<()> {
        match self.modules.get(module.name()) {
            Some(existing) if *existing != module => Err(HdlError::Duplicate {
                module: "<design>".into(),
                name: module.name().to_string(),
            }),
            _ => {
                self.modules.insert(module.name().to_string(), module);
                Ok(())
            }
        }
    }

    /// Adds every module of another design (its submodules become ours).
    pub fn absorb(&mut self, other: Design) -> Result<()> {
        for (_, m) in other.modules {
            self.add(m)?;
        }
        Ok(())
    }

    /// Checks that every instantiated module is present.
    pub fn check_complete(&self) -> Result<()> {
        for m in self.modules.values() {
            for dep in m.instantiated_modules() {
                if !self.modules.contains_key(&dep) {
                    return Err(HdlError::Misuse(format!(
                        "module `{}` instantiates `{dep}`, which is not in the design",
                        m.name()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The top module.
    pub fn top(&self) -> &Module {
        &self.modules[&self.top]
    }
    /// Name of the top module.
    pub fn top_name(&self) -> &str {
        &self.top
    }
    /// All modules, sorted by name.
    pub fn modules(&self) -> impl Iterator<Item = &Module> {
        self.modules.values()
    }
    /// The header printed above every module.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// One `(file name, text)` pair per module, sorted by name; the file is named after its
    /// module, which Verilator's `DECLFILENAME` check and Vivado both like.
    pub fn files(&self) -> Vec<(String, String)> {
        self.modules
            .values()
            .map(|m| (format!("{}.v", m.name()), printer::module(m, &self.header)))
            .collect()
    }

    /// Writes every file into `dir` (created if missing) through temporary files renamed into
    /// place, so a failure never leaves a half-written file. Returns the paths written.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        self.check_complete()?;
        std::fs::create_dir_all(dir).map_err(|e| HdlError::io("creating directory", dir, e))?;
        let mut written = Vec::new();
        for (name, text) in self.files() {
            let path = dir.join(&name);
            write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

pub use crate::output::write_atomic;

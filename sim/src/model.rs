//! A built and loaded design library, from which any number of [`Sim`] instances are made.

use crate::error::{Result, SimError};
use crate::shim::{self, Storage};
use crate::sim::Sim;
use crate::spec::{DesignSpec, PortDir};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

type NewFn = unsafe extern "C" fn() -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type EvalFn = unsafe extern "C" fn(*mut c_void) -> c_int;
type StepFn = unsafe extern "C" fn(*mut c_void, u64) -> c_int;
type PortPtrFn = unsafe extern "C" fn(*mut c_void, u32) -> *mut c_void;
type TraceOpenFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type AbiFn = unsafe extern "C" fn() -> u32;

/// The shim's entry points. Plain function pointers: they stay valid while `Loaded::_lib` lives,
/// and every holder of these keeps an `Arc<Loaded>`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShimFns {
    pub new: NewFn,
    pub free: FreeFn,
    pub eval: EvalFn,
    pub step: StepFn,
    pub port_ptr: PortPtrFn,
    pub trace_open: TraceOpenFn,
    pub trace_flush: FreeFn,
    pub trace_close: FreeFn,
}

#[derive(Debug)]
pub(crate) struct Loaded {
    pub fns: ShimFns,
    _lib: libloading::Library,
}

/// Static facts about one port, shared by every instance of a design.
#[derive(Debug, Clone)]
pub(crate) struct PortInfo {
    pub name: String,
    pub width: u32,
    pub dir: PortDir,
    pub storage: Storage,
    /// Bits of the most significant storage word that belong to the port.
    pub top_mask: u64,
}

#[derive(Debug)]
pub(crate) struct DesignInner {
    pub spec: DesignSpec,
    pub trace: bool,
    pub lib_path: PathBuf,
    pub cache_hit: bool,
    pub loaded: Loaded,
    pub ports: Vec<PortInfo>,
    pub by_name: HashMap<String, usize>,
    /// Distinguishes designs so a `PortHandle` cannot be used on the wrong one.
    pub id: u64,
    pub handshake_ports: Vec<usize>,
}

/// A design that has been built and loaded. Cheap to clone; `Send + Sync`, so one build can feed
/// simulations on many threads, each with its own model instance.
#[derive(Debug, Clone)]
pub struct CompiledDesign {
    pub(crate) inner: Arc<DesignInner>,
}

/// Port names treated as handshakes in timeout reports.
fn is_handshake(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "valid", "ready", "vld", "rdy", "ack", "req", "start", "done", "idle", "busy",
    ]
    .iter()
    .any(|s| n.ends_with(s))
}

impl CompiledDesign {
    pub(crate) fn load(
        spec: DesignSpec,
        trace: bool,
        lib_path: PathBuf,
        cache_hit: bool,
    ) -> Result<Self> {
        let load_err = |source| SimError::Load {
            path: lib_path.clone(),
            source,
        };
        // SAFETY: the library was produced by this crate's build step (the cache key includes the
        // crate version and shim ABI); its initialisers are the Verilator runtime's static
        // constructors, which have no preconditions.
        let lib = unsafe { libloading::Library::new(&lib_path) }.map_err(load_err)?;
        // SAFETY (all symbol lookups): the types match the `extern "C"` definitions emitted by
        // `shim::generate` for ABI `SHIM_ABI`, which is checked first.
        let abi: AbiFn = unsafe { *lib.get::<AbiFn>(b"af_abi\0").map_err(load_err)? };
        // SAFETY: `af_abi` takes no arguments and only returns a constant.
        let found = unsafe { abi() };
        if found != shim::SHIM_ABI {
            return Err(SimError::AbiMismatch {
                path: lib_path,
                found,
                expected: shim::SHIM_ABI,
            });
        }
        // SAFETY: see above.
        let fns = unsafe {
            ShimFns {
                new: *lib.get::<NewFn>(b"af_new\0").map_err(load_err)?,
                free: *lib.get::<FreeFn>(b"af_free\0").map_err(load_err)?,
                eval: *lib.get::<EvalFn>(b"af_eval\0").map_err(load_err)?,
                step: *lib.get::<StepFn>(b"af_step\0").map_err(load_err)?,
                port_ptr: *lib.get::<PortPtrFn>(b"af_port_ptr\0").map_err(load_err)?,
                trace_open: *lib
                    .get::<TraceOpenFn>(b"af_trace_open\0")
                    .map_err(load_err)?,
                trace_flush: *lib.get::<FreeFn>(b"af_trace_flush\0").map_err(load_err)?,
                trace_close: *lib.get::<FreeFn>(b"af_trace_close\0").map_err(load_err)?,
            }
        };
        let ports: Vec<PortInfo> = spec
            .ports
            .iter()
            .map(|p| {
                let rem = p.width % 64;
                PortInfo {
                    name: p.name.clone(),
                    width: p.width,
                    dir: p.dir,
                    storage: Storage::for_width(p.width),
                    top_mask: if rem == 0 {
                        u64::MAX
                    } else {
                        (1u64 << rem) - 1
                    },
                }
            })
            .collect();
        let by_name = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), i))
            .collect();
        let handshake_ports = ports
            .iter()
            .enumerate()
            .filter(|(_, p)| is_handshake(&p.name) && p.width == 1)
            .map(|(i, _)| i)
            .collect();
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Self {
            inner: Arc::new(DesignInner {
                spec,
                trace,
                lib_path,
                cache_hit,
                loaded: Loaded { fns, _lib: lib },
                ports,
                by_name,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                handshake_ports,
            }),
        })
    }

    /// Creates a fresh model instance (its own `VerilatedContext`), with all state zeroed.
    pub fn sim(&self) -> Result<Sim> {
        Sim::new(self.clone())
    }

    /// The spec this design was built from.
    pub fn spec(&self) -> &DesignSpec {
        &self.inner.spec
    }

    /// Path of the loaded shared library inside the cache.
    pub fn library_path(&self) -> &Path {
        &self.inner.lib_path
    }

    /// Whether the library came from the cache rather than a fresh build.
    pub fn was_cached(&self) -> bool {
        self.inner.cache_hit
    }

    /// Whether this build supports VCD tracing.
    pub fn has_trace(&self) -> bool {
        self.inner.trace
    }
}

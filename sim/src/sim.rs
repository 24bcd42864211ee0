//! One running model instance and the testbench API on it.

use crate::error::{Result, SimError};
use crate::model::{CompiledDesign, ShimFns};
use crate::shim::{STATUS_FINISHED, STATUS_OK, Storage};
use crate::spec::PortDir;
use std::ffi::{CString, c_void};
use std::path::Path;

/// A port resolved once by name; using it skips the name lookup on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortHandle {
    design: u64,
    index: u32,
}

impl PortHandle {
    /// Index of the port in the design's port list.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Anything that names a port: a `&str`/`String` (looked up each time) or a [`PortHandle`].
pub trait PortRef {
    /// Resolves to an index into the port list of `sim`'s design.
    fn resolve(&self, sim: &Sim) -> Result<usize>;
}

impl PortRef for PortHandle {
    #[inline]
    fn resolve(&self, sim: &Sim) -> Result<usize> {
        if self.design != sim.design_id || self.index() >= sim.slots.len() {
            return Err(SimError::ForeignHandle {
                top: sim.top().to_string(),
                port: self.index(),
            });
        }
        Ok(self.index())
    }
}

impl PortRef for &str {
    fn resolve(&self, sim: &Sim) -> Result<usize> {
        sim.lookup(self)
    }
}

impl PortRef for String {
    fn resolve(&self, sim: &Sim) -> Result<usize> {
        sim.lookup(self)
    }
}

impl PortRef for &String {
    fn resolve(&self, sim: &Sim) -> Result<usize> {
        sim.lookup(self)
    }
}

/// Per-instance view of a port: where its storage lives inside this model.
#[derive(Debug, Clone, Copy)]
struct Slot {
    ptr: *mut c_void,
    storage: Storage,
    is_input: bool,
    /// Valid bits of the most significant 64-bit word.
    top_mask: u64,
    /// Number of 64-bit words the value occupies.
    words64: usize,
}

/// A running simulation: one Verilated model with its own `VerilatedContext`.
///
/// Inputs hold their value until poked again. [`Sim::step`] runs one whole clock cycle (clock
/// low, evaluate, clock high, evaluate), so after it outputs show the state after the rising
/// edge. Peeks after pokes re-evaluate combinational logic first, so a combinational output
/// (e.g. a `tready` that depends on the downstream `tready`) is always current.
#[derive(Debug)]
pub struct Sim {
    design: CompiledDesign,
    design_id: u64,
    fns: ShimFns,
    model: *mut c_void,
    slots: Vec<Slot>,
    cycle: u64,
    /// Inputs changed since the last evaluation.
    dirty: bool,
    finished: bool,
    tracing: bool,
}

// SAFETY: a `Sim` exclusively owns its model instance and context (nothing else holds the
// pointers), every shim call sets Verilator's thread-local context to this model's context
// first, and the runtime's shared state is internally synchronised (Verilator 5 is always built
// thread-aware). So moving a `Sim` to another thread between calls is sound. It is not `Sync`:
// `&Sim` gives no access to the model.
unsafe impl Send for Sim {}

impl Sim {
    pub(crate) fn new(design: CompiledDesign) -> Result<Self> {
        let fns = design.inner.loaded.fns;
        // SAFETY: `af_new` has no preconditions; it returns null on failure.
        let model = unsafe { (fns.new)() };
        if model.is_null() {
            return Err(SimError::ModelCreate {
                top: design.inner.spec.top.clone(),
            });
        }
        let mut slots = Vec::with_capacity(design.inner.ports.len());
        for (i, p) in design.inner.ports.iter().enumerate() {
            // SAFETY: `model` is a live instance and `i` is below the shim's port count (the
            // shim was generated from this same port list).
            let ptr = unsafe { (fns.port_ptr)(model, i as u32) };
            if ptr.is_null() {
                // SAFETY: `model` came from `af_new` and is freed exactly once here.
                unsafe { (fns.free)(model) };
                return Err(SimError::ModelCreate {
                    top: design.inner.spec.top.clone(),
                });
            }
            slots.push(Slot {
                ptr,
                storage: p.storage,
                is_input: p.dir == PortDir::In,
                top_mask: p.top_mask,
                words64: p.width.div_ceil(64) as usize,
            });
        }
        let design_id = design.inner.id;
        Ok(Self {
            design,
            design_id,
            fns,
            model,
            slots,
            cycle: 0,
            dirty: true,
            finished: false,
            tracing: false,
        })
    }

    /// The design this simulation runs.
    pub fn design(&self) -> &CompiledDesign {
        &self.design
    }

    fn top(&self) -> &str {
        &self.design.inner.spec.top
    }

    fn lookup(&self, name: &str) -> Result<usize> {
        self.design
            .inner
            .by_name
            .get(name)
            .copied()
            .ok_or_else(|| SimError::UnknownPort {
                top: self.top().to_string(),
                name: name.to_string(),
                available: self
                    .design
                    .inner
                    .ports
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Resolves a port name once, for index-based access in hot loops.
    pub fn port(&self, name: &str) -> Result<PortHandle> {
        let index = self.lookup(name)?;
        Ok(PortHandle {
            design: self.design_id,
            index: index as u32,
        })
    }

    /// Whether the design has a port of this name.
    pub fn has_port(&self, name: &str) -> bool {
        self.design.inner.by_name.contains_key(name)
    }

    /// Width in bits of a port.
    pub fn width(&self, port: impl PortRef) -> Result<u32> {
        let i = port.resolve(self)?;
        Ok(self.design.inner.ports[i].width)
    }

    /// Completed clock cycles since the model was created.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Whether the design has executed `$finish`.
    pub fn finished(&self) -> bool {
        self.finished
    }

    fn name_of(&self, i: usize) -> String {
        self.design.inner.ports[i].name.clone()
    }

    fn too_wide(&self, i: usize, value: String) -> SimError {
        SimError::ValueTooWide {
            top: self.top().to_string(),
            port: self.name_of(i),
            width: self.design.inner.ports[i].width,
            value,
        }
    }

    fn input_slot(&self, i: usize) -> Result<Slot> {
        let slot = self.slots[i];
        if !slot.is_input {
            return Err(SimError::NotAnInput {
                top: self.top().to_string(),
                port: self.name_of(i),
            });
        }
        Ok(slot)
    }

    /// Sets an input. Ports wider than 64 bits get `value` in their low bits and zeros above.
    #[inline]
    pub fn poke(&mut self, port: impl PortRef, value: u64) -> Result<()> {
        let i = port.resolve(self)?;
        let slot = self.input_slot(i)?;
        // SAFETY (all writes): `slot.ptr` points at this live model's port storage, whose C++
        // type matches `slot.storage` (static_assert in the shim) and is naturally aligned.
        unsafe {
            match slot.storage {
                Storage::Wide { words } => {
                    let p = slot.ptr.cast::<u32>();
                    p.write(value as u32);
                    p.add(1).write((value >> 32) as u32);
                    for k in 2..words {
                        p.add(k).write(0);
                    }
                }
                s => {
                    // Verilator assumes inputs carry no bits above their width.
                    if value & !slot.top_mask != 0 {
                        return Err(self.too_wide(i, format!("{value:#x}")));
                    }
                    match s {
                        Storage::U8 => slot.ptr.cast::<u8>().write(value as u8),
                        Storage::U16 => slot.ptr.cast::<u16>().write(value as u16),
                        Storage::U32 => slot.ptr.cast::<u32>().write(value as u32),
                        _ => slot.ptr.cast::<u64>().write(value),
                    }
                }
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Sets an input from a two's-complement value, which must fit the port's width.
    pub fn poke_signed(&mut self, port: impl PortRef, value: i64) -> Result<()> {
        let i = port.resolve(self)?;
        let width = self.design.inner.ports[i].width.min(64);
        let min = if width == 64 {
            i64::MIN
        } else {
            -(1i64 << (width - 1))
        };
        let max = if width == 64 {
            i64::MAX
        } else {
            (1i64 << (width - 1)) - 1
        };
        if value < min || value > max {
            return Err(self.too_wide(i, value.to_string()));
        }
        let mask = if width == 64 {
            u64::MAX
        } else {
            (1u64 << width) - 1
        };
        self.poke(
            PortHandle {
                design: self.design_id,
                index: i as u32,
            },
            value as u64 & mask,
        )
    }

    /// Sets an input of any width from 64-bit words, least significant first. Missing words
    /// are zero; bits beyond the port width must be zero.
    #[inline]
    pub fn poke_wide(&mut self, port: impl PortRef, words: &[u64]) -> Result<()> {
        let i = port.resolve(self)?;
        let slot = self.input_slot(i)?;
        let n = slot.words64;
        let overflow = words.iter().skip(n).any(|&w| w != 0)
            || words.get(n - 1).is_some_and(|&w| w & !slot.top_mask != 0);
        if overflow {
            let shown: Vec<String> = words.iter().map(|w| format!("{w:#x}")).collect();
            return Err(self.too_wide(i, format!("[{}]", shown.join(", "))));
        }
        match slot.storage {
            Storage::Wide { words: n32 } => {
                let p = slot.ptr.cast::<u32>();
                for k in 0..n32 {
                    let w = words.get(k / 2).copied().unwrap_or(0);
                    // SAFETY: `k < n32`, the VlWide word count of this port's storage.
                    unsafe { p.add(k).write((w >> (32 * (k % 2))) as u32) };
                }
                self.dirty = true;
                Ok(())
            }
            _ => self.poke(
                PortHandle {
                    design: self.design_id,
                    index: i as u32,
                },
                words.first().copied().unwrap_or(0),
            ),
        }
    }

    /// Evaluates combinational logic for the current inputs without a clock edge.
    pub fn eval(&mut self) -> Result<()> {
        // SAFETY: `self.model` is live until drop.
        let status = unsafe { (self.fns.eval)(self.model) };
        self.dirty = false;
        self.check_status(status)
    }

    #[inline]
    fn settle(&mut self) -> Result<()> {
        if self.dirty { self.eval() } else { Ok(()) }
    }

    #[inline]
    fn check_status(&mut self, status: i32) -> Result<()> {
        match status {
            STATUS_OK => Ok(()),
            STATUS_FINISHED => {
                self.finished = true;
                Ok(())
            }
            _ => Err(SimError::Fatal {
                top: self.top().to_string(),
                cycle: self.cycle,
            }),
        }
    }

    /// Reads a port of at most 64 bits.
    #[inline]
    pub fn peek(&mut self, port: impl PortRef) -> Result<u64> {
        let i = port.resolve(self)?;
        self.settle()?;
        let slot = self.slots[i];
        // SAFETY (all reads): as for `poke`.
        unsafe {
            Ok(match slot.storage {
                Storage::U8 => u64::from(slot.ptr.cast::<u8>().read()),
                Storage::U16 => u64::from(slot.ptr.cast::<u16>().read()),
                Storage::U32 => u64::from(slot.ptr.cast::<u32>().read()),
                Storage::U64 => slot.ptr.cast::<u64>().read(),
                Storage::Wide { .. } => {
                    return Err(SimError::PortTooWide {
                        top: self.top().to_string(),
                        port: self.name_of(i),
                        width: self.design.inner.ports[i].width,
                    });
                }
            })
        }
    }

    /// Reads a port of at most 64 bits as a two's-complement value of the port's width.
    pub fn peek_signed(&mut self, port: impl PortRef) -> Result<i64> {
        let i = port.resolve(self)?;
        let width = self.design.inner.ports[i].width;
        let raw = self.peek(PortHandle {
            design: self.design_id,
            index: i as u32,
        })?;
        let shift = 64 - width.min(64);
        Ok(((raw << shift) as i64) >> shift)
    }

    /// Reads a port of any width into `out` as 64-bit words, least significant first. Words
    /// beyond the port's width are set to zero.
    #[inline]
    pub fn peek_wide_into(&mut self, port: impl PortRef, out: &mut [u64]) -> Result<()> {
        let i = port.resolve(self)?;
        self.settle()?;
        let slot = self.slots[i];
        out.fill(0);
        match slot.storage {
            Storage::Wide { words: n32 } => {
                let p = slot.ptr.cast::<u32>();
                for k in 0..n32.min(out.len() * 2) {
                    // SAFETY: `k < n32`, within this port's VlWide storage.
                    let w = u64::from(unsafe { p.add(k).read() });
                    out[k / 2] |= w << (32 * (k % 2));
                }
            }
            _ => {
                let v = self.peek(PortHandle {
                    design: self.design_id,
                    index: i as u32,
                })?;
                if let Some(first) = out.first_mut() {
                    *first = v;
                }
            }
        }
        Ok(())
    }

    /// Reads a port of any width as `ceil(width / 64)` words, least significant first.
    pub fn peek_wide(&mut self, port: impl PortRef) -> Result<Vec<u64>> {
        let i = port.resolve(self)?;
        let mut out = vec![0; self.slots[i].words64];
        self.peek_wide_into(
            PortHandle {
                design: self.design_id,
                index: i as u32,
            },
            &mut out,
        )?;
        Ok(out)
    }

    /// Runs one clock cycle.
    #[inline]
    pub fn step(&mut self) -> Result<()> {
        self.step_n(1)
    }

    /// Runs `n` clock cycles with the inputs held, in a single call into the model.
    #[inline]
    pub fn step_n(&mut self, n: u64) -> Result<()> {
        // SAFETY: `self.model` is live until drop.
        let status = unsafe { (self.fns.step)(self.model, n) };
        self.dirty = false;
        self.cycle += n;
        self.check_status(status)
    }

    /// Asserts the spec's reset for `cycles` clock cycles, then releases it (no edge after the
    /// release, so the next `step` is the first cycle out of reset).
    pub fn reset(&mut self, cycles: u64) -> Result<()> {
        let Some(rst) = self.design.inner.spec.reset.clone() else {
            return Err(SimError::InvalidSpec {
                top: self.top().to_string(),
                reason: "Sim::reset called, but the spec has no reset (DesignSpec::reset)".into(),
            });
        };
        let asserted = rst.asserted_value();
        self.poke(rst.name.as_str(), asserted)?;
        self.step_n(cycles.max(1))?;
        self.poke(rst.name.as_str(), asserted ^ 1)
    }

    /// Current values of the 1-bit handshake-like ports (`*valid`, `*ready`, `*done`, ...).
    pub fn handshake_values(&mut self) -> Vec<(String, String)> {
        let idx = self.design.inner.handshake_ports.clone();
        idx.into_iter()
            .map(|i| {
                let h = PortHandle {
                    design: self.design_id,
                    index: i as u32,
                };
                let v = self
                    .peek(h)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "?".into());
                (self.name_of(i), v)
            })
            .collect()
    }

    /// A [`SimError::Timeout`] describing the current state, for custom wait loops.
    pub fn timeout_error(&mut self, what: impl Into<String>, waited: u64) -> SimError {
        SimError::Timeout {
            top: self.top().to_string(),
            what: what.into(),
            waited,
            cycle: self.cycle,
            handshakes: self.handshake_values(),
        }
    }

    /// Steps until `cond` is true, checking it before each step. Returns the number of cycles
    /// stepped; after `max_cycles` steps without success returns [`SimError::Timeout`] naming
    /// the current handshake values.
    pub fn run_until<F>(&mut self, mut cond: F, max_cycles: u64) -> Result<u64>
    where
        F: FnMut(&mut Sim) -> Result<bool>,
    {
        let mut waited = 0;
        loop {
            if cond(self)? {
                return Ok(waited);
            }
            if waited >= max_cycles {
                return Err(self.timeout_error("the run_until condition", waited));
            }
            self.step()?;
            waited += 1;
        }
    }

    /// Starts writing a VCD waveform of this instance to `path` (needs a `trace` build). The
    /// file is complete after [`Sim::trace_close`] or when the `Sim` is dropped.
    pub fn trace_vcd(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if !self.design.has_trace() {
            return Err(SimError::TraceNotEnabled {
                top: self.top().to_string(),
            });
        }
        let open_err = || SimError::TraceOpen {
            top: self.top().to_string(),
            path: path.to_path_buf(),
        };
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| open_err())?;
        // SAFETY: `self.model` is live; `c_path` is a valid NUL-terminated string that outlives
        // the call (Verilator copies the file name).
        let rc = unsafe { (self.fns.trace_open)(self.model, c_path.as_ptr()) };
        if rc != 0 {
            return Err(open_err());
        }
        self.tracing = true;
        Ok(())
    }

    /// Flushes the VCD file, if tracing.
    pub fn trace_flush(&mut self) {
        if self.tracing {
            // SAFETY: `self.model` is live.
            unsafe { (self.fns.trace_flush)(self.model) };
        }
    }

    /// Closes the VCD file, if tracing.
    pub fn trace_close(&mut self) {
        if self.tracing {
            // SAFETY: `self.model` is live.
            unsafe { (self.fns.trace_close)(self.model) };
            self.tracing = false;
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SAFETY: `self.model` came from `af_new` and is freed exactly once; the library stays
        // loaded because `self.design` holds it until after this runs.
        unsafe { (self.fns.free)(self.model) };
    }
}

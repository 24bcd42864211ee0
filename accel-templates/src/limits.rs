//! The largest sizes the templates, layers and commands accept, in one place.
//!
//! Every bound here exists so that a command refuses up front, with the bound in its message,
//! instead of wrapping an integer, allocating until the kernel kills it, or simulating for days.
//! The reasons for each number are in `docs/decisions.md` (2026-12-04, "limits").

/// Largest number of operand elements (all inputs and outputs of one simulated layer together)
/// a simulation allocates: 2^28 elements, i.e. at most a few GiB of host memory at the 8-byte
/// `i64` the golden models hold, on the 24 GiB machines the project targets.
pub const MAX_SIM_ELEMENTS: u64 = 1 << 28;

/// Largest simulated cycle count a `sim` command starts: 2^32 cycles is about 1.5 hours at the
/// ~700k cycles/s Verilator reaches on the largest arrays.
pub const MAX_SIM_CYCLES: u64 = 1 << 32;

/// Largest weight-source (DDR) latency a simulated MoE run accepts, in cycles. A real Zynq DDR
/// read through a DataMover takes 30-100 PL cycles; 2^16 leaves room for pessimistic what-ifs
/// and keeps every per-request wait far from any counter's range.
pub const MAX_DDR_LATENCY: u32 = 1 << 16;

/// Largest number of parallel jobs of `sweep`: far above any core count the sweep can use and
/// small enough that thread creation never exhausts the process's limits.
pub const MAX_JOBS: usize = 1024;

/// Largest input height/width/channels of a conv2d layer, and the largest kernel size and
/// stride: the im2col products `OH·OW` and `C·R·S` must fit the 32-bit GEMM dimensions with
/// room to spare, and these are an order of magnitude above any published CNN layer.
pub const MAX_CONV_DIM: u32 = 1 << 16;

/// Checked product of `u64` factors, `None` on overflow.
pub fn checked_product(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f))
}

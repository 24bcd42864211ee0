//! The QFX arithmetic units as RTL, each emitted through `accelforge-hdl` and each the hardware
//! image of one `qfx` function, so golden model and Verilog share a single definition:
//!
//! - [`requantize`]: any fixed-point type to any other, every quantization and overflow mode —
//!   what sits at the end of every accumulator.
//! - [`mac`]: multiply-accumulate through an explicit full-width product (one DSP slice).
//! - [`shiftadd`]: multiplier-free products for power-of-two and CSD-pair weights (no DSP).
//! - [`activation`]: ReLU, clip/ReLU6, leaky ReLU, and table-based sigmoid/tanh/GELU.
//!
//! Every unit comes in two forms: an `emit_*` function that adds the logic to a module being
//! built (templates inline it), and a `*_module` function that makes a standalone module (for
//! tests, lint and synthesis).

pub mod act_stream;
pub mod activation;
pub mod mac;
pub mod requantize;
pub mod shiftadd;

use accelforge_hdl::HdlError;

use crate::qfx::QfxError;

/// Errors from generating a unit.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// The Verilog tree refused something (a generator bug or an impossible size).
    #[error("building Verilog: {0}")]
    Hdl(#[from] HdlError),
    /// A fixed-point type was unusable.
    #[error(transparent)]
    Qfx(#[from] QfxError),
    /// The parameters describe something the unit cannot build.
    #[error("{0}")]
    Unsupported(String),
}

/// Result alias for unit generation.
pub type Result<T, E = UnitError> = std::result::Result<T, E>;

//! `qfx`: bit-exact Vitis HLS `ap_fixed` / `ap_ufixed` numerics.
//!
//! One definition of each quantization and overflow mode, used by the golden models, the RTL
//! generators and the CLI. The semantics are those of `shared/reference/fixed_point.md` and of
//! the open-source ap_fixed headers, checked against vectors those headers produced.
//!
//! ```
//! use accelforge_templates::qfx::{Fx, QType};
//!
//! let acc: QType = "ap_fixed<32,16>".parse()?;
//! let out: QType = "ap_fixed<10,5,AP_RND,AP_SAT>".parse()?;
//! let x = Fx::from_f64(3.14159, &acc)?;
//! let y = x.convert(&out);
//! assert_eq!(y.raw(), 101); // 3.15625 = 101 × 2^-5
//! assert_eq!(y.to_string(), "3.15625");
//! # Ok::<(), accelforge_templates::qfx::QfxError>(())
//! ```

mod calibrate;
mod convert;
mod error;
mod exact;
mod shiftadd;
mod tensor;
mod types;
mod value;

pub use calibrate::{
    Calibration, CalibrationMethod, calibrate, calibrate_array, calibration_type, quantization_mse,
    range_int_bits,
};
pub use convert::{Converter, convert_raw};
pub use error::{QfxError, Result};
pub use shiftadd::{
    Pow2Term, ShiftAddWeight, nearest_csd2, nearest_csd2_fx, nearest_pow2, nearest_pow2_fx,
};
pub use tensor::{Sample, dequantize_array, fake_quantize_array, quantize_array};
pub use types::{
    MAX_INT_BITS, MAX_VALUE_WIDTH, MAX_WIDE_UNSIGNED_WIDTH, MAX_WIDE_WIDTH, MIN_INT_BITS, Overflow,
    QType, Quant,
};
pub use value::{Fx, acc_type_for_dot, difference_type, product_type, sum_type};

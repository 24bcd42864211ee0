//! The one error type of the `qfx` module.

/// Everything that can go wrong in `qfx`. Every variant carries the offending text or value so a
/// message printed at the CLI is enough to find and fix the input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QfxError {
    /// The type spelling is not of the form `ap_fixed<W,I[,Q[,O[,N]]]>` / `ap_ufixed<...>`.
    #[error("cannot parse fixed-point type `{text}`: {reason}")]
    Syntax {
        /// The text that was being parsed.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A quantization mode name that is not one of the seven HLS modes.
    #[error(
        "unknown quantization mode `{mode}` in `{text}`: expected one of AP_TRN, AP_TRN_ZERO, \
         AP_RND, AP_RND_ZERO, AP_RND_MIN_INF, AP_RND_INF, AP_RND_CONV (the AP_ prefix is optional)"
    )]
    UnknownQuant {
        /// The unrecognised mode name.
        mode: String,
        /// The text it appeared in.
        text: String,
    },
    /// An overflow mode name that is not one of the five HLS modes.
    #[error(
        "unknown overflow mode `{mode}` in `{text}`: expected one of AP_SAT, AP_SAT_ZERO, \
         AP_SAT_SYM, AP_WRAP, AP_WRAP_SM (the AP_ prefix is optional)"
    )]
    UnknownOverflow {
        /// The unrecognised mode name.
        mode: String,
        /// The text it appeared in.
        text: String,
    },
    /// W = 0: a fixed-point type needs at least one bit.
    #[error("invalid fixed-point type `{text}`: the width W must be at least 1")]
    ZeroWidth {
        /// The type, as spelled.
        text: String,
    },
    /// W beyond what the type may hold (64 for value types, 128 signed / 127 unsigned for exact
    /// intermediates, whose raw values live in an `i128`).
    #[error(
        "invalid fixed-point type `{text}`: width W={width} exceeds the limit of {max} bits{hint}"
    )]
    WidthTooLarge {
        /// The type, as spelled.
        text: String,
        /// The requested width.
        width: u64,
        /// The largest width allowed here.
        max: u32,
        /// Why the limit exists (may be empty).
        hint: &'static str,
    },
    /// The integer-bit count I is outside the supported window.
    #[error(
        "invalid fixed-point type `{text}`: integer bits I={int_bits} outside the supported range {min}..={max}"
    )]
    IntBitsOutOfRange {
        /// The type, as spelled.
        text: String,
        /// The requested integer bits.
        int_bits: i64,
        /// Smallest supported I.
        min: i32,
        /// Largest supported I.
        max: i32,
    },
    /// AP_WRAP_SM is a sign-magnitude mode and `ap_ufixed` has no sign bit.
    #[error(
        "invalid fixed-point type `{text}`: AP_WRAP_SM is only defined for signed types \
         (ap_fixed); use AP_WRAP or a saturating mode for ap_ufixed"
    )]
    WrapSmUnsigned {
        /// The type, as spelled.
        text: String,
    },
    /// More saturation bits than the type has bits.
    #[error(
        "invalid fixed-point type `{text}`: saturation bits N={sat_bits} exceed the width W={width}"
    )]
    SatBitsTooLarge {
        /// The type, as spelled.
        text: String,
        /// The requested N.
        sat_bits: u64,
        /// The type's W.
        width: u32,
    },
    /// A raw integer outside the type's raw range.
    #[error("raw value {raw} is out of range for {ty}: raw values must lie in {min}..={max}")]
    RawOutOfRange {
        /// The offending raw value.
        raw: i128,
        /// The type it was meant for.
        ty: String,
        /// Smallest raw value of the type.
        min: i128,
        /// Largest raw value of the type.
        max: i128,
    },
    /// NaN or an infinity cannot be converted to a fixed-point value.
    #[error("cannot convert {value} to {ty}: only finite numbers have a fixed-point value")]
    NonFinite {
        /// The offending value.
        value: f64,
        /// The destination type.
        ty: String,
    },
    /// The exact result of an operation needs a type wider than an `i128` raw value can hold.
    #[error(
        "{operation} of {lhs} and {rhs} needs a {width}-bit result, wider than the {max}-bit limit of exact intermediates"
    )]
    ResultTooWide {
        /// What was being computed.
        operation: &'static str,
        /// Left operand type.
        lhs: String,
        /// Right operand type.
        rhs: String,
        /// The width the exact result needs.
        width: u64,
        /// The limit for that signedness.
        max: u32,
    },
    /// An exact result type whose integer bits fall outside the supported window.
    #[error(
        "{operation} of {lhs} and {rhs} needs I={int_bits} integer bits, outside the supported range"
    )]
    ResultIntBitsOutOfRange {
        /// What was being computed.
        operation: &'static str,
        /// Left operand type.
        lhs: String,
        /// Right operand type.
        rhs: String,
        /// The integer bits the exact result needs.
        int_bits: i64,
    },
    /// A dot product of zero terms has no accumulator.
    #[error("accumulator for a dot product of {lhs} and {rhs} needs K >= 1 terms, got K=0")]
    EmptyDot {
        /// Left operand type.
        lhs: String,
        /// Right operand type.
        rhs: String,
    },
    /// An operation that is only defined for value types (W <= 64) got a wider type.
    #[error("{operation} needs a value type of at most 64 bits, got {ty}")]
    NeedsValueType {
        /// What was being computed.
        operation: &'static str,
        /// The offending type.
        ty: String,
    },
    /// A tensor element that is NaN or an infinity.
    #[error(
        "cannot quantize to {ty}: element {index} (flat, row-major) is {value}, not a finite number"
    )]
    NonFiniteElement {
        /// Flat (row-major) index of the element.
        index: usize,
        /// The element.
        value: f64,
        /// The destination type.
        ty: String,
    },
    /// Calibration data without any element.
    #[error("cannot calibrate {what}: the data is empty")]
    EmptyData {
        /// What was being calibrated.
        what: String,
    },
    /// Calibration data containing NaN or an infinity.
    #[error(
        "cannot calibrate on data with a non-finite element: element {index} (flat, row-major) is {value}"
    )]
    NonFiniteData {
        /// Flat (row-major) index of the element.
        index: usize,
        /// The element.
        value: f64,
    },
    /// The data's range needs more (or fewer) integer bits than the type can express.
    #[error(
        "cannot calibrate: the data's largest magnitude {max_abs} needs integer bits outside {min}..={max}"
    )]
    CalibrationOutOfRange {
        /// Largest magnitude in the data.
        max_abs: f64,
        /// Smallest supported I.
        min: i32,
        /// Largest supported I.
        max: i32,
    },
}

/// Result alias for `qfx`.
pub type Result<T> = std::result::Result<T, QfxError>;

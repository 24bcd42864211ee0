//! Fixed-point types (`QType`), their rounding and overflow modes, and the HLS spelling.

use std::fmt;
use std::str::FromStr;

use super::error::{QfxError, Result};

/// Widest user-facing value type (`ap_fixed<64,..>`): what parsing, serde and [`QType::new`]
/// accept.
pub const MAX_VALUE_WIDTH: u32 = 64;
/// Widest signed exact intermediate (products, sums, accumulators): raw values live in an `i128`.
pub const MAX_WIDE_WIDTH: u32 = 128;
/// Widest unsigned exact intermediate: an unsigned raw value must stay non-negative in an `i128`.
pub const MAX_WIDE_UNSIGNED_WIDTH: u32 = 127;
/// Smallest supported integer-bit count I. Wide enough that every finite `f64` (down to the
/// smallest subnormal, 2^-1074) has a type that holds it.
pub const MIN_INT_BITS: i32 = -2048;
/// Largest supported integer-bit count I.
pub const MAX_INT_BITS: i32 = 2048;

/// Quantization (rounding) mode, applied first when a value is converted into a type.
///
/// In the table of the spec, `T` is the floor of the exact value in units of the destination's
/// LSB, `qb` the first dropped bit, `r` the OR of the bits below it, `s` the source's sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Quant {
    /// `AP_TRN`: toward −∞ (floor). The HLS default.
    #[default]
    Trn,
    /// `AP_TRN_ZERO`: toward zero.
    TrnZero,
    /// `AP_RND`: nearest, ties toward +∞.
    Rnd,
    /// `AP_RND_ZERO`: nearest, ties toward zero.
    RndZero,
    /// `AP_RND_MIN_INF`: nearest, ties toward −∞.
    RndMinInf,
    /// `AP_RND_INF`: nearest, ties away from zero.
    RndInf,
    /// `AP_RND_CONV`: nearest, ties to even (convergent rounding).
    RndConv,
}

impl Quant {
    /// All seven modes, in HLS enum order.
    pub const ALL: [Quant; 7] = [
        Quant::Rnd,
        Quant::RndZero,
        Quant::RndMinInf,
        Quant::RndInf,
        Quant::RndConv,
        Quant::Trn,
        Quant::TrnZero,
    ];

    /// The HLS spelling, e.g. `AP_RND_CONV`.
    pub fn hls_name(self) -> &'static str {
        match self {
            Quant::Trn => "AP_TRN",
            Quant::TrnZero => "AP_TRN_ZERO",
            Quant::Rnd => "AP_RND",
            Quant::RndZero => "AP_RND_ZERO",
            Quant::RndMinInf => "AP_RND_MIN_INF",
            Quant::RndInf => "AP_RND_INF",
            Quant::RndConv => "AP_RND_CONV",
        }
    }

    fn parse_in(name: &str, text: &str) -> Result<Quant> {
        let bare = strip_ap_prefix(name);
        Quant::ALL
            .into_iter()
            .find(|q| q.hls_name()[3..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| QfxError::UnknownQuant {
                mode: name.to_string(),
                text: text.to_string(),
            })
    }
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hls_name())
    }
}

impl FromStr for Quant {
    type Err = QfxError;
    fn from_str(s: &str) -> Result<Quant> {
        Quant::parse_in(s.trim(), s)
    }
}

/// Overflow mode, applied to the quantized integer when it does not fit the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Overflow {
    /// `AP_SAT`: clamp to the destination's min/max.
    Sat,
    /// `AP_SAT_ZERO`: an out-of-range value becomes 0.
    SatZero,
    /// `AP_SAT_SYM`: signed types clamp to ±max, so the most negative code is never produced.
    ///
    /// Decisions taken where the spec is terse, matching the ap_fixed headers:
    /// * on an **unsigned** destination it behaves exactly like [`Overflow::Sat`] (the symmetric
    ///   rule only exists for two's-complement codes);
    /// * on a signed destination with **W = 1** the headers produce `min | 1`, which for a 1-bit
    ///   code *is* the most negative code (−1 in raw), so the mode degenerates to `AP_SAT` there;
    /// * a value that lands exactly on the most negative code (e.g. `ap_fixed<4,4>` −8 converted
    ///   into the same type) is treated as an underflow and becomes −max.
    SatSym,
    /// `AP_WRAP`: keep the low W bits (two's-complement wrap). The HLS default.
    ///
    /// With N > 0 saturation bits, and only when the value actually overflowed:
    /// * signed: the MSB takes the sign of the (quantized) value and the next N−1 bits take its
    ///   complement;
    /// * unsigned (the spec is silent; this matches the headers): the top N bits are forced to 1,
    ///   on overflow **and** on underflow alike.
    #[default]
    Wrap,
    /// `AP_WRAP_SM`: sign-magnitude wrap, only for signed types (parsing an `ap_ufixed` with it is
    /// an error). Only applied when the value overflowed; let `V` be the wrapped low W bits after
    /// rounding, `Ro` its MSB and `sign` whether the quantized value is negative:
    /// * N = 0: `V` is inverted when `Ro` differs from bit W of the *truncated* source (the bit
    ///   just above the kept bits, taken before the rounding increment — so a rounding carry that
    ///   ripples into the dropped bits does not change that bit);
    /// * N = 1: `V` is inverted when `Ro` differs from `sign`;
    /// * N > 1: `V` is inverted when its bit W−N equals `sign`; then bits W−N..=W−2 are forced to
    ///   `!sign` and the MSB to `sign`.
    WrapSm,
}

impl Overflow {
    /// All five modes, in HLS enum order.
    pub const ALL: [Overflow; 5] = [
        Overflow::Sat,
        Overflow::SatZero,
        Overflow::SatSym,
        Overflow::Wrap,
        Overflow::WrapSm,
    ];

    /// The HLS spelling, e.g. `AP_SAT_SYM`.
    pub fn hls_name(self) -> &'static str {
        match self {
            Overflow::Sat => "AP_SAT",
            Overflow::SatZero => "AP_SAT_ZERO",
            Overflow::SatSym => "AP_SAT_SYM",
            Overflow::Wrap => "AP_WRAP",
            Overflow::WrapSm => "AP_WRAP_SM",
        }
    }

    fn parse_in(name: &str, text: &str) -> Result<Overflow> {
        let bare = strip_ap_prefix(name);
        Overflow::ALL
            .into_iter()
            .find(|o| o.hls_name()[3..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| QfxError::UnknownOverflow {
                mode: name.to_string(),
                text: text.to_string(),
            })
    }
}

impl fmt::Display for Overflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hls_name())
    }
}

impl FromStr for Overflow {
    type Err = QfxError;
    fn from_str(s: &str) -> Result<Overflow> {
        Overflow::parse_in(s.trim(), s)
    }
}

fn strip_ap_prefix(name: &str) -> &str {
    match name.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("AP_") => &name[3..],
        _ => name,
    }
}

/// A fixed-point type: `ap_fixed<W,I,Q,O,N>` (signed) or `ap_ufixed<W,I,Q,O,N>` (unsigned).
///
/// W total bits, I integer bits (may be negative or larger than W), F = W − I fractional bits, so
/// a raw integer `r` has the value `r × 2^−F`. Fields are private so every `QType` in existence
/// is valid: W ≥ 1, W ≤ 64 for value types (up to 128 signed / 127 unsigned for exact
/// intermediates built by [`QType::new_wide`] and the arithmetic helpers), I within
/// [`MIN_INT_BITS`]..=[`MAX_INT_BITS`], N ≤ W, and no `AP_WRAP_SM` on unsigned types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QType {
    width: u32,
    int_bits: i32,
    signed: bool,
    quant: Quant,
    overflow: Overflow,
    sat_bits: u32,
}

impl QType {
    /// A value type with the HLS default modes (AP_TRN, AP_WRAP, N = 0); W must be 1..=64.
    pub fn new(width: u32, int_bits: i32, signed: bool) -> Result<QType> {
        Self::validated(
            width.into(),
            int_bits.into(),
            signed,
            Quant::Trn,
            Overflow::Wrap,
            0,
            MAX_VALUE_WIDTH,
        )
    }

    /// `ap_fixed<W,I>` with default modes.
    pub fn fixed(width: u32, int_bits: i32) -> Result<QType> {
        Self::new(width, int_bits, true)
    }

    /// `ap_ufixed<W,I>` with default modes.
    pub fn ufixed(width: u32, int_bits: i32) -> Result<QType> {
        Self::new(width, int_bits, false)
    }

    /// An exact-intermediate type (W up to 128 signed / 127 unsigned), default modes. Used for
    /// products and accumulators; such types print in HLS spelling but do not parse back (parsing
    /// is for user-facing value types of at most 64 bits) — use [`QType::parse_wide`] for that.
    pub fn new_wide(width: u32, int_bits: i32, signed: bool) -> Result<QType> {
        Self::validated(
            width.into(),
            int_bits.into(),
            signed,
            Quant::Trn,
            Overflow::Wrap,
            0,
            MAX_WIDE_WIDTH,
        )
    }

    /// The same type with other modes (validated: N ≤ W, no AP_WRAP_SM on unsigned types).
    pub fn with_modes(self, quant: Quant, overflow: Overflow, sat_bits: u32) -> Result<QType> {
        Self::validated(
            self.width.into(),
            self.int_bits.into(),
            self.signed,
            quant,
            overflow,
            sat_bits.into(),
            MAX_WIDE_WIDTH,
        )
    }

    /// The same type with another quantization mode (always valid).
    pub fn with_quant(self, quant: Quant) -> QType {
        QType { quant, ..self }
    }

    fn validated(
        width: u64,
        int_bits: i64,
        signed: bool,
        quant: Quant,
        overflow: Overflow,
        sat_bits: u64,
        max_width: u32,
    ) -> Result<QType> {
        let text = || spell(signed, width, int_bits, quant, overflow, sat_bits);
        if width == 0 {
            return Err(QfxError::ZeroWidth { text: text() });
        }
        let limit = if signed || max_width <= MAX_VALUE_WIDTH {
            max_width
        } else {
            MAX_WIDE_UNSIGNED_WIDTH
        };
        if width > u64::from(limit) {
            let hint = if max_width <= MAX_VALUE_WIDTH && width <= u64::from(MAX_WIDE_WIDTH) {
                " for value types (wider types only arise as exact intermediates: products, sums, accumulators)"
            } else if !signed {
                " (unsigned raw values must fit in an i128)"
            } else {
                " (raw values must fit in an i128)"
            };
            return Err(QfxError::WidthTooLarge {
                text: text(),
                width,
                max: limit,
                hint,
            });
        }
        if int_bits < i64::from(MIN_INT_BITS) || int_bits > i64::from(MAX_INT_BITS) {
            return Err(QfxError::IntBitsOutOfRange {
                text: text(),
                int_bits,
                min: MIN_INT_BITS,
                max: MAX_INT_BITS,
            });
        }
        if overflow == Overflow::WrapSm && !signed {
            return Err(QfxError::WrapSmUnsigned { text: text() });
        }
        if sat_bits > width {
            return Err(QfxError::SatBitsTooLarge {
                text: text(),
                sat_bits,
                width: width as u32,
            });
        }
        // The casts cannot truncate: both were range-checked above.
        Ok(QType {
            width: width as u32,
            int_bits: int_bits as i32,
            signed,
            quant,
            overflow,
            sat_bits: sat_bits as u32,
        })
    }

    /// Total bits W.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Integer bits I (including the sign bit for signed types).
    pub fn int_bits(&self) -> i32 {
        self.int_bits
    }
    /// Fractional bits F = W − I (may be negative).
    pub fn frac_bits(&self) -> i32 {
        self.width as i32 - self.int_bits
    }
    /// Whether the type is `ap_fixed` (two's complement) rather than `ap_ufixed`.
    pub fn is_signed(&self) -> bool {
        self.signed
    }
    /// Quantization mode.
    pub fn quant(&self) -> Quant {
        self.quant
    }
    /// Overflow mode.
    pub fn overflow(&self) -> Overflow {
        self.overflow
    }
    /// Saturation bits N (used by AP_WRAP and AP_WRAP_SM only).
    pub fn sat_bits(&self) -> u32 {
        self.sat_bits
    }
    /// Whether this is a value type (W ≤ 64) rather than a wide exact intermediate.
    pub fn is_value_type(&self) -> bool {
        self.width <= MAX_VALUE_WIDTH
    }

    /// Smallest raw integer: −2^(W−1) signed, 0 unsigned.
    pub fn min_raw(&self) -> i128 {
        if self.signed {
            i128::MIN >> (128 - self.width)
        } else {
            0
        }
    }

    /// Largest raw integer: 2^(W−1) − 1 signed, 2^W − 1 unsigned.
    pub fn max_raw(&self) -> i128 {
        if self.signed {
            i128::MAX >> (128 - self.width)
        } else {
            // Unsigned widths are at most 127, so the shift is at least 0.
            i128::MAX >> (127 - self.width)
        }
    }

    /// Whether `raw` is a valid raw integer of this type.
    pub fn contains_raw(&self, raw: i128) -> bool {
        raw >= self.min_raw() && raw <= self.max_raw()
    }

    /// The value of one LSB, 2^−F (rounded to `f64` only if F is beyond the `f64` exponent range).
    pub fn resolution(&self) -> f64 {
        super::exact::dyadic_to_f64(1, self.frac_bits().into())
    }

    /// (smallest, largest) representable value as `f64` (exact for W ≤ 53).
    pub fn range(&self) -> (f64, f64) {
        let f = self.frac_bits().into();
        (
            super::exact::dyadic_to_f64(self.min_raw(), f),
            super::exact::dyadic_to_f64(self.max_raw(), f),
        )
    }

    /// (smallest, largest) representable value as exact decimal strings.
    pub fn range_decimal(&self) -> (String, String) {
        let f = self.frac_bits().into();
        (
            super::exact::dyadic_to_decimal(self.min_raw(), f),
            super::exact::dyadic_to_decimal(self.max_raw(), f),
        )
    }

    /// The LSB value 2^−F as an exact decimal string.
    pub fn resolution_decimal(&self) -> String {
        super::exact::dyadic_to_decimal(1, self.frac_bits().into())
    }

    /// Parse the HLS spelling, accepting exact-intermediate widths (up to 128 signed / 127
    /// unsigned) as well as value types.
    pub fn parse_wide(text: &str) -> Result<QType> {
        parse(text, MAX_WIDE_WIDTH)
    }
}

fn spell(signed: bool, width: u64, int_bits: i64, q: Quant, o: Overflow, n: u64) -> String {
    let mut s = format!(
        "{}<{width},{int_bits}",
        if signed { "ap_fixed" } else { "ap_ufixed" }
    );
    // Print only up to the last non-default argument, as an HLS user would write it.
    let args = if n != 0 {
        3
    } else if o != Overflow::Wrap {
        2
    } else if q != Quant::Trn {
        1
    } else {
        0
    };
    if args >= 1 {
        s.push(',');
        s.push_str(q.hls_name());
    }
    if args >= 2 {
        s.push(',');
        s.push_str(o.hls_name());
    }
    if args >= 3 {
        s.push_str(&format!(",{n}"));
    }
    s.push('>');
    s
}

impl fmt::Display for QType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&spell(
            self.signed,
            self.width.into(),
            self.int_bits.into(),
            self.quant,
            self.overflow,
            self.sat_bits.into(),
        ))
    }
}

fn parse(text: &str, max_width: u32) -> Result<QType> {
    let syntax = |reason: &str| QfxError::Syntax {
        text: text.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = text.trim();
    let open = trimmed
        .find('<')
        .ok_or_else(|| syntax("expected `ap_fixed<W,I,...>` or `ap_ufixed<W,I,...>`"))?;
    let signed = match trimmed[..open].trim() {
        "ap_fixed" => true,
        "ap_ufixed" => false,
        other => {
            return Err(syntax(&format!(
                "unknown type name `{other}`: expected `ap_fixed` or `ap_ufixed`"
            )));
        }
    };
    let rest = &trimmed[open + 1..];
    let close = rest
        .find('>')
        .ok_or_else(|| syntax("missing closing `>`"))?;
    if !rest[close + 1..].trim().is_empty() {
        return Err(syntax(&format!(
            "unexpected text `{}` after the closing `>`",
            rest[close + 1..].trim()
        )));
    }
    let args: Vec<&str> = rest[..close].split(',').map(str::trim).collect();
    if args.len() < 2 || args.len() > 5 {
        return Err(syntax(&format!(
            "expected 2 to 5 arguments <W,I[,Q[,O[,N]]]>, found {}",
            args.len()
        )));
    }
    let width: u64 = args[0].parse().map_err(|_| {
        syntax(&format!(
            "width W `{}` is not a non-negative integer",
            args[0]
        ))
    })?;
    let int_bits: i64 = args[1]
        .parse()
        .map_err(|_| syntax(&format!("integer bits I `{}` is not an integer", args[1])))?;
    let quant = match args.get(2) {
        Some(q) => Quant::parse_in(q, text)?,
        None => Quant::Trn,
    };
    let overflow = match args.get(3) {
        Some(o) => Overflow::parse_in(o, text)?,
        None => Overflow::Wrap,
    };
    let sat_bits: u64 = match args.get(4) {
        Some(n) => n.parse().map_err(|_| {
            syntax(&format!(
                "saturation bits N `{n}` is not a non-negative integer"
            ))
        })?,
        None => 0,
    };
    // Report problems against the text the user wrote, not a re-spelling of it.
    QType::validated(
        width, int_bits, signed, quant, overflow, sat_bits, max_width,
    )
    .map_err(|e| retext(e, text))
}

fn retext(err: QfxError, original: &str) -> QfxError {
    let t = original.to_string();
    match err {
        QfxError::ZeroWidth { .. } => QfxError::ZeroWidth { text: t },
        QfxError::WidthTooLarge {
            width, max, hint, ..
        } => QfxError::WidthTooLarge {
            text: t,
            width,
            max,
            hint,
        },
        QfxError::IntBitsOutOfRange {
            int_bits, min, max, ..
        } => QfxError::IntBitsOutOfRange {
            text: t,
            int_bits,
            min,
            max,
        },
        QfxError::WrapSmUnsigned { .. } => QfxError::WrapSmUnsigned { text: t },
        QfxError::SatBitsTooLarge {
            sat_bits, width, ..
        } => QfxError::SatBitsTooLarge {
            text: t,
            sat_bits,
            width,
        },
        other => other,
    }
}

impl FromStr for QType {
    type Err = QfxError;
    /// Parses a user-facing value type (W ≤ 64) in HLS spelling; mode names may omit the `AP_`
    /// prefix and whitespace between tokens is ignored.
    fn from_str(s: &str) -> Result<QType> {
        parse(s, MAX_VALUE_WIDTH)
    }
}

impl serde::Serialize for QType {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for QType {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<QType, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        // Wide types must round-trip through serde too (an accumulator type in a params file).
        QType::parse_wide(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> QfxError {
        text.parse::<QType>().unwrap_err()
    }

    #[test]
    fn parses_hls_spellings() {
        let t: QType = "ap_fixed<16,6>".parse().unwrap();
        assert_eq!(
            (t.width(), t.int_bits(), t.frac_bits(), t.is_signed()),
            (16, 6, 10, true)
        );
        assert_eq!(
            (t.quant(), t.overflow(), t.sat_bits()),
            (Quant::Trn, Overflow::Wrap, 0)
        );
        let t: QType = "ap_ufixed<8,0,AP_RND,AP_SAT,0>".parse().unwrap();
        assert_eq!(t.to_string(), "ap_ufixed<8,0,AP_RND,AP_SAT>");
        let t: QType = "  ap_fixed < 16 , -3 , rnd_conv , Sat_Sym , 2 >  "
            .parse()
            .unwrap();
        assert_eq!(t.to_string(), "ap_fixed<16,-3,AP_RND_CONV,AP_SAT_SYM,2>");
        assert_eq!(
            "ap_fixed<8,3,AP_TRN>".parse::<QType>().unwrap().to_string(),
            "ap_fixed<8,3>"
        );
        assert_eq!(
            "ap_fixed<8,3,AP_TRN,AP_WRAP,1>"
                .parse::<QType>()
                .unwrap()
                .to_string(),
            "ap_fixed<8,3,AP_TRN,AP_WRAP,1>"
        );
    }

    #[test]
    fn errors_name_problem_and_text() {
        let cases: [(&str, &str); 11] = [
            ("ap_fixed<0,3>", "at least 1"),
            ("ap_fixed<65,3>", "W=65"),
            (
                "ap_ufixed<8,3,AP_RND,AP_WRAP_SM>",
                "only defined for signed",
            ),
            (
                "ap_fixed<8,3,AP_ROUND>",
                "unknown quantization mode `AP_ROUND`",
            ),
            (
                "ap_fixed<8,3,AP_RND,SATURATE>",
                "unknown overflow mode `SATURATE`",
            ),
            ("ap_fixed<8,3,AP_RND,AP_WRAP,9>", "N=9 exceed the width W=8"),
            ("ap_fixed<8,3", "missing closing `>`"),
            ("ap_fixed<8>", "expected 2 to 5 arguments"),
            ("ap_fixed<8,3> x", "unexpected text `x`"),
            ("ap_int<8,3>", "unknown type name `ap_int`"),
            ("ap_fixed<8,99999>", "I=99999"),
        ];
        for (text, needle) in cases {
            let msg = err(text).to_string();
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(
                msg.contains(text.trim()) || msg.contains(text),
                "{text}: {msg}"
            );
        }
        assert!(QType::parse_wide("ap_fixed<128,3>").is_ok());
        assert!(QType::parse_wide("ap_ufixed<128,3>").is_err());
        assert!(
            QType::new(8, 3, false)
                .unwrap()
                .with_modes(Quant::Rnd, Overflow::WrapSm, 0)
                .is_err()
        );
    }

    #[test]
    fn raw_ranges() {
        let t = QType::new_wide(128, 0, true).unwrap();
        assert_eq!((t.min_raw(), t.max_raw()), (i128::MIN, i128::MAX));
        let u = QType::new_wide(127, 0, false).unwrap();
        assert_eq!((u.min_raw(), u.max_raw()), (0, i128::MAX));
        let one = QType::fixed(1, 0).unwrap();
        assert_eq!((one.min_raw(), one.max_raw()), (-1, 0));
        assert_eq!(QType::ufixed(8, 0).unwrap().range(), (0.0, 0.99609375));
        assert_eq!(QType::fixed(8, 10).unwrap().resolution(), 4.0);
    }
}

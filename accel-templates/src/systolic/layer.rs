//! Layer shapes the array runs: GEMM (also fully connected layers) and conv2d, which the host
//! lowers to a GEMM by im2col.
//!
//! conv2d lowering (done on the host; the golden model and the cycle model use the same one):
//! input `X[c][y][x]` (C_in × H × W), weights `W[o][c][r][s]` (K_out × C_in × R × S), stride S,
//! zero padding P. `OH = (H + 2P − R)/S + 1`, `OW = (W + 2P − S_k)/S + 1`. Then
//! `A[p][q] = X[c][oy·S + r − P][ox·S + s − P]` (zero outside the image) with pixel
//! `p = oy·OW + ox` and `q = (c·R + r)·S_k + s`; `B[q][o] = W[o][c][r][s]`; the GEMM
//! `M = OH·OW, K = C_in·R·S_k, N = K_out` gives `Y[o][oy][ox] = C[p][o]`.

use serde::{Deserialize, Serialize};

use super::error::{Result, SystolicError};
use super::params::SystolicParams;

/// A GEMM `C (M×N) = A (M×K) · B (K×N)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gemm {
    /// Rows of A and C.
    pub m: u32,
    /// Reduction length.
    pub k: u32,
    /// Columns of B and C.
    pub n: u32,
}

/// Convolutions are the workload vocabulary's [`Conv2d`] (`kind = "conv2d"`); this module adds
/// the array's checked view of them ([`Conv2d::out_hw`], [`Conv2d::gemm`]).
pub use crate::workload::Conv2d;

impl Gemm {
    /// Multiply-accumulates.
    pub fn macs(&self) -> u64 {
        u64::from(self.m) * u64::from(self.k) * u64::from(self.n)
    }
    /// Checks the shape against the array's limits.
    pub fn check(&self, p: &SystolicParams) -> Result<()> {
        let bad = |reason: String| SystolicError::Layer {
            layer: self.to_string(),
            reason,
        };
        if self.m == 0 || self.k == 0 || self.n == 0 {
            return Err(bad("every dimension must be at least 1".into()));
        }
        if self.m > 65_535 || self.n > 65_535 {
            return Err(bad(
                "M and N must be at most 65535 (16-bit command fields)".into()
            ));
        }
        if self.k > p.max_k {
            return Err(bad(format!(
                "K = {} exceeds the array's max_k = {}; regenerate with a larger max_k",
                self.k, p.max_k
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for Gemm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gemm {}x{}x{}", self.m, self.k, self.n)
    }
}

impl Conv2d {
    /// Output height and width, checked against the array's limits (every size at most
    /// [`crate::limits::MAX_CONV_DIM`]); a depthwise convolution is refused, since it is
    /// `c_in` separate GEMMs rather than one.
    pub fn out_hw(&self) -> Result<(u32, u32)> {
        let bad = |reason: &str| SystolicError::Layer {
            layer: self.to_string(),
            reason: reason.to_string(),
        };
        if self.depthwise {
            return Err(bad(
                "a depthwise convolution is c_in separate GEMMs, not one: map or sweep it as a \
                 workload layer, or simulate one group with `sim gemm`",
            ));
        }
        if self.stride == 0
            || self.kernel_h == 0
            || self.kernel_w == 0
            || self.c_in == 0
            || self.c_out == 0
        {
            return Err(bad(
                "stride, kernel size and channel counts must be at least 1",
            ));
        }
        // Checked so that a huge size is refused by name instead of wrapping into a small,
        // plausible-looking GEMM (h = 1073741849 used to give M = 100).
        let max = u64::from(crate::limits::MAX_CONV_DIM);
        for (name, v) in [
            ("h", self.h),
            ("w", self.w),
            ("c_in", self.c_in),
            ("c_out", self.c_out),
            ("kernel_h", self.kernel_h),
            ("kernel_w", self.kernel_w),
            ("stride", self.stride),
            ("pad", self.pad),
        ] {
            if v > max {
                return Err(bad(&format!(
                    "{name} = {v} exceeds the largest supported conv2d size {max}"
                )));
            }
        }
        // With every size <= 2^16 these sums cannot overflow.
        let ph = self.h + 2 * self.pad;
        let pw = self.w + 2 * self.pad;
        if ph < self.kernel_h || pw < self.kernel_w {
            return Err(bad("the kernel is larger than the padded input"));
        }
        let (oh, ow) = self.output_hw();
        // Both are at most 2^17 + 1 after the checks above.
        Ok((oh as u32, ow as u32))
    }
    /// The GEMM this convolution lowers to on the array.
    pub fn gemm(&self) -> Result<Gemm> {
        let (oh, ow) = self.out_hw()?;
        let too_big = |what: &str, v: u64| SystolicError::Layer {
            layer: self.to_string(),
            reason: format!(
                "the im2col {what} = {v} does not fit a 32-bit GEMM dimension (max {})",
                u32::MAX
            ),
        };
        let m = u64::from(oh) * u64::from(ow);
        let k = self.c_in * self.kernel_h * self.kernel_w;
        Ok(Gemm {
            m: u32::try_from(m).map_err(|_| too_big("M = OH*OW", m))?,
            k: u32::try_from(k).map_err(|_| too_big("K = c_in*kernel_h*kernel_w", k))?,
            // c_out <= MAX_CONV_DIM was checked above.
            n: self.c_out as u32,
        })
    }
}

/// The GEMM of one run of a GEMM-like layer (a depthwise convolution's per-group GEMM);
/// `Ok(None)` for an MoE or attention layer (not GEMMs), an error when a dimension does not
/// fit 32 bits.
pub fn unit_gemm(layer: &crate::workload::Layer) -> std::result::Result<Option<Gemm>, String> {
    if !layer.is_gemm_like() {
        return Ok(None);
    }
    let g = layer.lower().gemm;
    let dim = |what: &str, v: u64| {
        u32::try_from(v).map_err(|_| format!("{what} = {v} does not fit 32 bits"))
    };
    Ok(Some(Gemm {
        m: dim("M", g.m)?,
        k: dim("K", g.k)?,
        n: dim("N", g.n)?,
    }))
}

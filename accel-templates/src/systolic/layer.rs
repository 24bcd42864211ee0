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

/// A 2-D convolution (one image, NCHW), lowered to a GEMM by im2col.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    /// Input height.
    pub h: u32,
    /// Input width.
    pub w: u32,
    /// Input channels.
    pub c: u32,
    /// Output channels.
    pub k: u32,
    /// Kernel height.
    pub r: u32,
    /// Kernel width.
    pub s: u32,
    /// Stride (both directions).
    pub stride: u32,
    /// Zero padding (all four sides).
    pub pad: u32,
}

/// A layer description (TOML: `type = "gemm"` with `m`, `k`, `n`, or `type = "conv2d"` with
/// `h`, `w`, `c`, `k`, `r`, `s`, `stride`, `pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Layer {
    /// GEMM / fully connected.
    Gemm(Gemm),
    /// Convolution.
    Conv2d(Conv2d),
}

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
    /// Output height and width.
    pub fn out_hw(&self) -> Result<(u32, u32)> {
        let bad = |reason: &str| SystolicError::Layer {
            layer: format!("{self:?}"),
            reason: reason.to_string(),
        };
        if self.stride == 0 || self.r == 0 || self.s == 0 || self.c == 0 || self.k == 0 {
            return Err(bad(
                "stride, kernel size and channel counts must be at least 1",
            ));
        }
        // Checked so that a huge size is refused by name instead of wrapping into a small,
        // plausible-looking GEMM (H = 1073741849 used to give M = 100).
        let max = crate::limits::MAX_CONV_DIM;
        for (name, v) in [
            ("H", self.h),
            ("W", self.w),
            ("C", self.c),
            ("K", self.k),
            ("R", self.r),
            ("S", self.s),
            ("stride", self.stride),
            ("pad", self.pad),
        ] {
            if v > max {
                return Err(bad(&format!(
                    "{name} = {v} exceeds the largest supported conv2d size {max}"
                )));
            }
        }
        // With every size <= 2^16 these sums cannot overflow a u32.
        let ph = self.h + 2 * self.pad;
        let pw = self.w + 2 * self.pad;
        if ph < self.r || pw < self.s {
            return Err(bad("the kernel is larger than the padded input"));
        }
        Ok((
            (ph - self.r) / self.stride + 1,
            (pw - self.s) / self.stride + 1,
        ))
    }
    /// The GEMM this convolution lowers to.
    pub fn gemm(&self) -> Result<Gemm> {
        let (oh, ow) = self.out_hw()?;
        let too_big = |what: &str, v: u64| SystolicError::Layer {
            layer: format!("{self:?}"),
            reason: format!(
                "the im2col {what} = {v} does not fit a 32-bit GEMM dimension (max {})",
                u32::MAX
            ),
        };
        let m = u64::from(oh) * u64::from(ow);
        let k = u64::from(self.c) * u64::from(self.r) * u64::from(self.s);
        Ok(Gemm {
            m: u32::try_from(m).map_err(|_| too_big("M = OH*OW", m))?,
            k: u32::try_from(k).map_err(|_| too_big("K = C*R*S", k))?,
            n: self.k,
        })
    }
}

impl Layer {
    /// The GEMM the array runs.
    pub fn gemm(&self) -> Result<Gemm> {
        match self {
            Layer::Gemm(g) => Ok(*g),
            Layer::Conv2d(c) => c.gemm(),
        }
    }
    /// Parses a TOML layer file's text.
    pub fn from_toml(text: &str, path: &str) -> Result<Layer> {
        toml::from_str(text).map_err(|e| SystolicError::File {
            what: "layer description",
            path: path.to_string(),
            reason: e.to_string(),
        })
    }
}

//! The layer vocabulary every template, the mapper, the sweep and the CLI share: workloads are
//! lists of layers read from TOML (`kind = ...` tables; the same spelling in `map --workload`
//! files, sweep specs and `--layer` files), and their lowering to GEMM shapes.
//!
//! ```toml
//! name = "tiny"                 # optional; defaults to the file stem
//! description = "two layers"    # optional
//! [types]                       # optional defaults for every layer
//! in = "ap_fixed<8,4>"
//!
//! [[layer]]
//! name = "fc1"                  # optional; defaults to "<kind><index>"
//! kind = "dense"
//! batch = 32
//! in_features = 784
//! out_features = 512
//! repeat = 1                    # optional, default 1
//! weight = "ap_fixed<8,2>"      # optional QFX type strings: in, weight, acc, out
//!
//! [[layer]]
//! kind = "conv2d"
//! h = 56
//! w = 56
//! c_in = 64
//! c_out = 64
//! kernel_h = 3
//! kernel_w = 3
//! stride = 1                    # optional, default 1
//! pad = 1                       # optional, default 0
//! depthwise = false             # optional, default false
//!
//! [[layer]]
//! kind = "moe"                  # a Mixture-of-Experts layer (gate, top-k, expert FFNs)
//! tokens = 16
//! d_model = 16
//! d_ff = 32
//! experts = 8
//! top_k = 2
//! queue_depth = 16              # optional: per-expert queue capacity (default: tokens, no drops)
//! weight = "ap_fixed<16,2>"     # optional: in, weight, out map onto the MoE core's types
//!
//! [[layer]]
//! kind = "attention"            # softmax(Q·Kᵀ/√d)·V for every head (Q, K, V given)
//! tokens = 197
//! head_dim = 64
//! heads = 3
//! in = "ap_fixed<8,3>"          # optional: in (Q/K/V) and out map onto the kernel's types
//!
//! [[layer]]
//! name = "enc"
//! kind = "encoder_block"        # a pre-LN transformer encoder block, expanded (see below)
//! tokens = 197
//! d_model = 192
//! heads = 3
//! d_ff = 768
//! experts = 16                  # optional: an MoE FFN (experts of hidden width d_ff) ...
//! top_k = 2                     # ... with top_k (default 2); without: a dense MLP
//! repeat = 12                   # optional, as for every layer
//! ```
//!
//! An `encoder_block` expands into the layers its kernels run: `NAME.qkv` (gemm T×d×3d),
//! `NAME.attn` (attention, `heads` of `d_model/heads`), `NAME.proj` (gemm T×d×d), then
//! `NAME.fc1` and `NAME.fc2` (gemm T×d×d_ff, T×d_ff×d) or `NAME.moe`. The block's LayerNorms
//! and residual adds run on the add & norm unit (`sim block`), which the mapper does not size.
//!
//! Lowering (what the engine actually computes, `A[M×K] · B[K×N]`, A = activations,
//! B = weights):
//! - `gemm {m,k,n}`: itself.
//! - `dense {batch, in_features, out_features}`: M = batch, K = in_features, N = out_features.
//! - `conv2d` (host-side im2col): OH = (h + 2·pad − kernel_h)/stride + 1 (likewise OW),
//!   M = OH·OW, K = kernel_h·kernel_w·c_in, N = c_out.
//! - depthwise `conv2d`: c_in independent groups (c_out must be a multiple of c_in, the
//!   channel multiplier), each a GEMM with M = OH·OW, K = kernel_h·kernel_w, N = c_out/c_in.
//!   With N = 1 a systolic array uses one column of PEs: that poor utilisation is the truth
//!   of depthwise layers on a GEMM engine, so it is modelled rather than hidden.
//! - `moe {tokens, d_model, d_ff, experts, top_k}`: *not* a single GEMM shape — which expert
//!   sees which token is data-dependent, and the two expert layers have different shapes. For
//!   reports only it lowers to its expert work under any routing: 2 GEMMs with
//!   M = tokens·top_k, K = d_model, N = d_ff (the second layer, K = d_ff, N = d_model, has the
//!   same MACs); [`Layer::macs`] adds the gate GEMV (tokens·d_model·experts). GEMM engines
//!   (the systolic models) do not run `moe` layers; the MoE template model
//!   (`accelforge_mapper::moe::MoeTemplateModel`) runs only them.
//! - `attention {tokens, head_dim, heads}`: per head two GEMMs, `Q·Kᵀ` (M = tokens,
//!   K = head_dim, N = tokens) and `P·V` (M = tokens, K = tokens, N = head_dim), of equal MACs;
//!   for reports it lowers to `2·heads` groups of the first. Only the attention template runs
//!   it (the softmax between the two is not a GEMM).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Result of reading a workload.
pub type Result<T> = std::result::Result<T, WorkloadError>;

/// What can go wrong while reading a workload or a layer file.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A workload file could not be read from disk.
    #[error("cannot read workload file {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A workload file is malformed. `layer` and `key` locate the problem when known.
    #[error("{file}{}{}: {message}", .layer.map(|l| format!(": layer {l}")).unwrap_or_default(), .key.as_ref().map(|k| format!(", key `{k}`")).unwrap_or_default())]
    Invalid {
        /// File name (or `builtin:<name>`).
        file: String,
        /// Zero-based layer index, when the problem is inside a layer.
        layer: Option<usize>,
        /// The offending key, when there is one.
        key: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A name that is neither an existing file nor a built-in workload.
    #[error("unknown workload `{name}`: not a file and not a built-in (built-ins: {known})")]
    Unknown {
        /// What the user asked for.
        name: String,
        /// The built-in names.
        known: String,
    },
}

/// One GEMM: `A[M×K] · B[K×N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GemmShape {
    /// Rows of A and of the output (activations / output pixels / tokens).
    pub m: u64,
    /// Reduction dimension.
    pub k: u64,
    /// Columns of B and of the output (output features / channels).
    pub n: u64,
}

impl GemmShape {
    /// Multiply-accumulates of one GEMM.
    pub fn macs(&self) -> u64 {
        self.m.saturating_mul(self.k).saturating_mul(self.n)
    }
}

/// A layer lowered to `groups` independent GEMMs of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lowered {
    /// Shape of each GEMM.
    pub gemm: GemmShape,
    /// Number of independent GEMMs (1 except for depthwise convolutions).
    pub groups: u64,
}

impl Lowered {
    /// Multiply-accumulates of all groups.
    pub fn macs(&self) -> u64 {
        self.gemm.macs().saturating_mul(self.groups)
    }
}

/// A 2-D convolution (NHWC, batch 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input height.
    pub h: u64,
    /// Input width.
    pub w: u64,
    /// Input channels.
    pub c_in: u64,
    /// Output channels.
    pub c_out: u64,
    /// Kernel height.
    pub kernel_h: u64,
    /// Kernel width.
    pub kernel_w: u64,
    /// Stride (both directions).
    pub stride: u64,
    /// Zero padding (each side, both directions).
    pub pad: u64,
    /// Depthwise (one filter group per input channel).
    pub depthwise: bool,
}

impl Conv2d {
    /// Output height and width.
    pub fn output_hw(&self) -> (u64, u64) {
        let out = |x: u64, k: u64| (x + 2 * self.pad - k) / self.stride + 1;
        (out(self.h, self.kernel_h), out(self.w, self.kernel_w))
    }
}

impl std::fmt::Display for Conv2d {
    /// The layer in its workload-file keys, so a message can be copied back into a file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "conv2d h={} w={} c_in={} c_out={} kernel_h={} kernel_w={} stride={} pad={}{}",
            self.h,
            self.w,
            self.c_in,
            self.c_out,
            self.kernel_h,
            self.kernel_w,
            self.stride,
            self.pad,
            if self.depthwise { " depthwise" } else { "" }
        )
    }
}

/// A Mixture-of-Experts layer: a gate GEMV over `experts`, top-`top_k` routing, and per
/// routed (token, expert) pair an expert FFN `d_model → d_ff → d_model`.
///
/// Its QFX types are the layer's `in` (tokens), `weight` (gate and expert weights) and `out`
/// (layer outputs); the parser checks they are signed `ap_fixed` of 2 to 24 bits, and rejects
/// `acc` (the core's accumulators are exact, sized from the operand types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MoeShape {
    /// Tokens per batch.
    pub tokens: u64,
    /// Model width.
    pub d_model: u64,
    /// Expert hidden width.
    pub d_ff: u64,
    /// Number of experts.
    pub experts: u64,
    /// Experts per token.
    pub top_k: u64,
    /// Capacity of each expert's token queue: a (token, expert) pair beyond it is dropped.
    /// `None`: as many as there are tokens, so no pair is ever dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<u64>,
}

/// Multi-head attention on given Q, K and V: `softmax(Q·Kᵀ/√head_dim)·V` for every head.
///
/// Its QFX types are the layer's `in` (Q, K, V) and `out` (outputs); the kernel's internal
/// score and exponential widths are the template's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttentionShape {
    /// Tokens (queries and keys).
    pub tokens: u64,
    /// Head dimension.
    pub head_dim: u64,
    /// Heads.
    pub heads: u64,
}

/// What a layer computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerOp {
    /// A plain GEMM.
    Gemm(GemmShape),
    /// A fully connected layer.
    Dense {
        /// Batch size (rows of A).
        batch: u64,
        /// Input features (K).
        in_features: u64,
        /// Output features (N).
        out_features: u64,
    },
    /// A 2-D convolution.
    Conv2d(Conv2d),
    /// A Mixture-of-Experts layer.
    Moe(MoeShape),
    /// Multi-head attention.
    Attention(AttentionShape),
}

impl LayerOp {
    /// The `kind` key that writes this op in a workload file.
    pub fn kind(&self) -> &'static str {
        match self {
            LayerOp::Gemm(_) => "gemm",
            LayerOp::Dense { .. } => "dense",
            LayerOp::Conv2d(_) => "conv2d",
            LayerOp::Moe(_) => "moe",
            LayerOp::Attention(_) => "attention",
        }
    }
}

/// QFX type strings of a layer, kept verbatim; the numerics crate validates them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QfxTypes {
    /// Input activation type.
    #[serde(rename = "in", default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Weight type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<String>,
    /// Accumulator type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acc: Option<String>,
    /// Output type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
}

impl QfxTypes {
    fn or(&self, default: &QfxTypes) -> QfxTypes {
        QfxTypes {
            input: self.input.clone().or_else(|| default.input.clone()),
            weight: self.weight.clone().or_else(|| default.weight.clone()),
            acc: self.acc.clone().or_else(|| default.acc.clone()),
            out: self.out.clone().or_else(|| default.out.clone()),
        }
    }
}

/// One layer of a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Name (unique within the workload is advisable, not required).
    pub name: String,
    /// What it computes.
    pub op: LayerOp,
    /// How many times the layer runs per inference (identical shapes, e.g. repeated blocks).
    pub repeat: u64,
    /// QFX type strings.
    pub types: QfxTypes,
}

impl Layer {
    /// The GEMM(s) this layer lowers to (see the module docs).
    pub fn lower(&self) -> Lowered {
        match self.op {
            LayerOp::Gemm(g) => Lowered { gemm: g, groups: 1 },
            LayerOp::Dense {
                batch,
                in_features,
                out_features,
            } => Lowered {
                gemm: GemmShape {
                    m: batch,
                    k: in_features,
                    n: out_features,
                },
                groups: 1,
            },
            LayerOp::Conv2d(c) => {
                let (oh, ow) = c.output_hw();
                if c.depthwise {
                    Lowered {
                        gemm: GemmShape {
                            m: oh * ow,
                            k: c.kernel_h * c.kernel_w,
                            n: c.c_out / c.c_in,
                        },
                        groups: c.c_in,
                    }
                } else {
                    Lowered {
                        gemm: GemmShape {
                            m: oh * ow,
                            k: c.kernel_h * c.kernel_w * c.c_in,
                            n: c.c_out,
                        },
                        groups: 1,
                    }
                }
            }
            // Reporting only (see the module docs): the expert FFNs as two GEMMs of equal MACs.
            LayerOp::Moe(e) => Lowered {
                gemm: GemmShape {
                    m: e.tokens * e.top_k,
                    k: e.d_model,
                    n: e.d_ff,
                },
                groups: 2,
            },
            LayerOp::Attention(a) => Lowered {
                gemm: GemmShape {
                    m: a.tokens,
                    k: a.head_dim,
                    n: a.tokens,
                },
                groups: 2 * a.heads,
            },
        }
    }

    /// Whether a GEMM engine runs the layer: `gemm`, `dense` and `conv2d` (not `moe`, whose
    /// GEMMs depend on the routing, nor `attention`, whose softmax is not a GEMM).
    pub fn is_gemm_like(&self) -> bool {
        matches!(
            self.op,
            LayerOp::Gemm(_) | LayerOp::Dense { .. } | LayerOp::Conv2d(_)
        )
    }

    /// The attention shape of an `attention` layer.
    pub fn attention(&self) -> Option<AttentionShape> {
        match self.op {
            LayerOp::Attention(a) => Some(a),
            _ => None,
        }
    }

    /// The MoE shape of a `moe` layer; `None` for GEMM-like layers.
    pub fn moe(&self) -> Option<MoeShape> {
        match self.op {
            LayerOp::Moe(e) => Some(e),
            _ => None,
        }
    }

    /// Multiply-accumulates of one run of the layer (without `repeat`); for a `moe` layer the
    /// gate GEMV plus the expert FFNs of every routed pair.
    pub fn macs(&self) -> u64 {
        let gate = self.moe().map_or(0, |e| {
            e.tokens.saturating_mul(e.d_model).saturating_mul(e.experts)
        });
        self.lower().macs().saturating_add(gate)
    }
}

/// A named list of layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The layers, in execution order.
    pub layers: Vec<Layer>,
}

impl Workload {
    /// Multiply-accumulates of one inference (repeats included).
    pub fn total_macs(&self) -> u64 {
        self.layers
            .iter()
            .map(|l| l.macs().saturating_mul(l.repeat))
            .sum()
    }

    /// Reads a workload file.
    pub fn from_file(path: &Path) -> Result<Workload> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "workload".into());
        parse_workload(&text, &path.display().to_string(), &stem)
    }

    /// A built-in workload by name (`mlp`, `resnet18`, `mobilenet`, `vit-tiny`, `moe-tiny`).
    pub fn builtin(name: &str) -> Result<Workload> {
        let key = name.to_ascii_lowercase().replace('_', "-");
        let (n, text) =
            BUILTINS
                .iter()
                .find(|(n, _)| *n == key)
                .ok_or_else(|| WorkloadError::Unknown {
                    name: name.to_string(),
                    known: builtin_names().join(", "),
                })?;
        parse_workload(text, &format!("builtin:{n}"), n)
    }

    /// `FILE|NAME`: an existing file wins over a built-in of the same name.
    pub fn resolve(spec: &str) -> Result<Workload> {
        let path = Path::new(spec);
        if path.is_file() {
            return Workload::from_file(path);
        }
        // A spec that looks like a path but does not exist deserves the I/O error, not
        // "unknown built-in".
        if spec.ends_with(".toml") || spec.contains('/') {
            return Workload::from_file(path);
        }
        Workload::builtin(spec)
    }
}

/// The built-in workloads (name, embedded TOML).
pub const BUILTINS: &[(&str, &str)] = &[
    ("mlp", include_str!("workloads/mlp.toml")),
    ("resnet18", include_str!("workloads/resnet18.toml")),
    ("mobilenet", include_str!("workloads/mobilenet.toml")),
    ("vit-tiny", include_str!("workloads/vit-tiny.toml")),
    ("moe-tiny", include_str!("workloads/moe-tiny.toml")),
    (
        "vit-tiny-block",
        include_str!("workloads/vit-tiny-block.toml"),
    ),
    ("m3vit-block", include_str!("workloads/m3vit-block.toml")),
];

/// Names of the built-in workloads.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|(n, _)| *n).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    types: QfxTypes,
    #[serde(default)]
    layer: Vec<RawLayer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: Option<String>,
    kind: Option<String>,
    repeat: Option<u64>,
    #[serde(rename = "in")]
    input: Option<String>,
    weight: Option<String>,
    acc: Option<String>,
    out: Option<String>,
    m: Option<u64>,
    k: Option<u64>,
    n: Option<u64>,
    batch: Option<u64>,
    in_features: Option<u64>,
    out_features: Option<u64>,
    h: Option<u64>,
    w: Option<u64>,
    c_in: Option<u64>,
    c_out: Option<u64>,
    kernel_h: Option<u64>,
    kernel_w: Option<u64>,
    stride: Option<u64>,
    pad: Option<u64>,
    depthwise: Option<bool>,
    tokens: Option<u64>,
    d_model: Option<u64>,
    d_ff: Option<u64>,
    experts: Option<u64>,
    top_k: Option<u64>,
    queue_depth: Option<u64>,
    head_dim: Option<u64>,
    heads: Option<u64>,
}

impl RawLayer {
    /// (key, present) for every shape key, to reject keys that belong to another kind.
    fn shape_keys(&self) -> [(&'static str, bool); 23] {
        [
            ("m", self.m.is_some()),
            ("k", self.k.is_some()),
            ("n", self.n.is_some()),
            ("batch", self.batch.is_some()),
            ("in_features", self.in_features.is_some()),
            ("out_features", self.out_features.is_some()),
            ("h", self.h.is_some()),
            ("w", self.w.is_some()),
            ("c_in", self.c_in.is_some()),
            ("c_out", self.c_out.is_some()),
            ("kernel_h", self.kernel_h.is_some()),
            ("kernel_w", self.kernel_w.is_some()),
            ("stride", self.stride.is_some()),
            ("pad", self.pad.is_some()),
            ("depthwise", self.depthwise.is_some()),
            ("tokens", self.tokens.is_some()),
            ("d_model", self.d_model.is_some()),
            ("d_ff", self.d_ff.is_some()),
            ("experts", self.experts.is_some()),
            ("top_k", self.top_k.is_some()),
            ("queue_depth", self.queue_depth.is_some()),
            ("head_dim", self.head_dim.is_some()),
            ("heads", self.heads.is_some()),
        ]
    }
}

/// Upper bound on any single dimension: keeps every product of three dimensions and the
/// cycle counts derived from them far below 2^64 and exact in f64.
pub const MAX_DIM: u64 = 1 << 20;

/// Parses workload TOML. `file` names the source in messages; `default_name` is used when the
/// file has no `name`.
pub fn parse_workload(text: &str, file: &str, default_name: &str) -> Result<Workload> {
    reject_old_spelling(text, file, true)?;
    let raw: RawWorkload = deserialize_located(toml::Deserializer::new(text), text, file)?;
    build_workload(raw, file, default_name)
}

/// Parses a file holding one layer (`sim`/`estimate --layer FILE`): the keys of one
/// `[[layer]]` table of a workload file, at the top level (`kind = "conv2d"`, `h = 56`, ...).
pub fn parse_layer(text: &str, file: &str) -> Result<Layer> {
    reject_old_spelling(text, file, false)?;
    let raw: RawLayer = deserialize_located(toml::Deserializer::new(text), text, file)?;
    let one = RawWorkload {
        name: None,
        description: None,
        types: QfxTypes::default(),
        layer: vec![raw],
    };
    // A one-layer file has no layer index to report.
    let mut wl = build_workload(one, file, "layer").map_err(|e| match e {
        WorkloadError::Invalid {
            file, key, message, ..
        } => WorkloadError::Invalid {
            file,
            layer: None,
            key,
            message,
        },
        other => other,
    })?;
    Ok(wl.layers.remove(0))
}

/// Layers written inline as TOML tables elsewhere (a sweep spec's `[workload] layers`), read as
/// the `[[layer]]` tables of a workload file; errors name `file` and the layer's index.
pub fn parse_layer_tables(tables: &[toml::Table], file: &str) -> Result<Vec<Layer>> {
    let mut doc = toml::Table::new();
    doc.insert(
        "layer".into(),
        toml::Value::Array(tables.iter().cloned().map(toml::Value::Table).collect()),
    );
    check_old_spelling(&doc, file, true)?;
    let raw: RawWorkload =
        serde_path_to_error::deserialize(toml::Value::Table(doc)).map_err(|e| {
            let (layer, key) = locate(e.path());
            WorkloadError::Invalid {
                file: file.to_string(),
                layer,
                key,
                message: e.into_inner().to_string(),
            }
        })?;
    Ok(build_workload(raw, file, "inline")?.layers)
}

/// Deserializes TOML text, turning serde's error into one that names the layer, the key and
/// the line.
fn deserialize_located<'de, T: Deserialize<'de>>(
    de: toml::Deserializer<'de>,
    text: &str,
    file: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let (layer, key) = locate(e.path());
        let inner = e.into_inner();
        let mut message = inner.message().to_string();
        if let Some(span) = inner.span() {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            message = format!("{message} (line {line})");
        }
        WorkloadError::Invalid {
            file: file.to_string(),
            layer,
            key,
            message,
        }
    })
}

/// The keys of the layer vocabulary before it was unified (sweep specs and `--layer` files said
/// `type = "conv2d"` with `c`, `k`, `r`, `s`): named with their replacement instead of a bare
/// "unknown field", which would not tell the user what to write.
fn reject_old_spelling(text: &str, file: &str, in_workload: bool) -> Result<()> {
    // A file that is not TOML at all gets the deserializer's located syntax error instead.
    match text.parse::<toml::Table>() {
        Ok(table) => check_old_spelling(&table, file, in_workload),
        Err(_) => Ok(()),
    }
}

fn check_old_spelling(doc: &toml::Table, file: &str, in_workload: bool) -> Result<()> {
    let tables: Vec<(Option<usize>, &toml::Table)> = if in_workload {
        match doc.get("layer").and_then(toml::Value::as_array) {
            Some(layers) => layers
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.as_table().map(|t| (Some(i), t)))
                .collect(),
            None => Vec::new(),
        }
    } else {
        vec![(None, doc)]
    };
    for (layer, t) in tables {
        if t.contains_key("kind") || !t.contains_key("type") {
            continue;
        }
        let old = t.get("type").and_then(toml::Value::as_str).unwrap_or("");
        let keys = match old {
            "conv2d" => {
                " with h, w, c_in, c_out, kernel_h, kernel_w, stride, pad (formerly c, k, r, s \
                 for c_in, c_out, kernel_h, kernel_w)"
            }
            "gemm" => " with m, k, n",
            "moe" => " with tokens, d_model, d_ff, experts, top_k",
            _ => "",
        };
        let example = if old.is_empty() { "gemm" } else { old };
        return Err(WorkloadError::Invalid {
            file: file.to_string(),
            layer,
            key: Some("type".into()),
            message: format!(
                "`type` is the old spelling: layers now say `kind = \"{example}\"`{keys}, as in \
                 `map --workload` files"
            ),
        });
    }
    Ok(())
}

/// A layer's `kind` and shape: the keys of another kind are refused, every dimension is
/// checked (at least 1, at most [`MAX_DIM`]), and a convolution's geometry must make sense.
fn layer_op<'a>(
    rl: &'a RawLayer,
    e: &dyn Fn(&str, String) -> WorkloadError,
) -> Result<(&'a str, LayerOp)> {
    let kind = rl.kind.as_deref().ok_or_else(|| {
        e(
            "kind",
            "missing: one of \"gemm\", \"dense\", \"conv2d\", \"moe\", \"attention\", \"encoder_block\"".into(),
        )
    })?;
    let allowed: &[&str] = match kind {
        "gemm" => &["m", "k", "n"],
        "dense" => &["batch", "in_features", "out_features"],
        "conv2d" => &[
            "h",
            "w",
            "c_in",
            "c_out",
            "kernel_h",
            "kernel_w",
            "stride",
            "pad",
            "depthwise",
        ],
        "moe" => &[
            "tokens",
            "d_model",
            "d_ff",
            "experts",
            "top_k",
            "queue_depth",
        ],
        "attention" => &["tokens", "head_dim", "heads"],
        other => {
            return Err(e(
                "kind",
                format!(
                    "unknown kind \"{other}\": expected \"gemm\", \"dense\", \"conv2d\", \"moe\", \"attention\" or \"encoder_block\""
                ),
            ));
        }
    };
    for (key, present) in rl.shape_keys() {
        if present && !allowed.contains(&key) {
            return Err(e(
                key,
                format!(
                    "not a key of a {kind} layer (its keys: {})",
                    allowed.join(", ")
                ),
            ));
        }
    }
    // Required positive dimension.
    let dim = |key: &str, v: Option<u64>| -> Result<u64> {
        match v {
            None => Err(e(key, format!("missing (required for a {kind} layer)"))),
            Some(0) => Err(e(key, "must be at least 1".into())),
            Some(x) if x > MAX_DIM => Err(e(key, format!("{x} exceeds the limit {MAX_DIM}"))),
            Some(x) => Ok(x),
        }
    };
    let op = match kind {
        "gemm" => LayerOp::Gemm(GemmShape {
            m: dim("m", rl.m)?,
            k: dim("k", rl.k)?,
            n: dim("n", rl.n)?,
        }),
        "dense" => LayerOp::Dense {
            batch: dim("batch", rl.batch)?,
            in_features: dim("in_features", rl.in_features)?,
            out_features: dim("out_features", rl.out_features)?,
        },
        "moe" => {
            let m = MoeShape {
                tokens: dim("tokens", rl.tokens)?,
                d_model: dim("d_model", rl.d_model)?,
                d_ff: dim("d_ff", rl.d_ff)?,
                experts: dim("experts", rl.experts)?,
                top_k: dim("top_k", rl.top_k)?,
                queue_depth: match rl.queue_depth {
                    None => None,
                    q => Some(dim("queue_depth", q)?),
                },
            };
            // Only what makes the layer meaningless is rejected here; what a particular
            // engine can build (powers of two, ranges) is that engine model's business.
            if m.top_k > m.experts {
                return Err(e(
                    "top_k",
                    format!(
                        "top_k {} exceeds the number of experts {}",
                        m.top_k, m.experts
                    ),
                ));
            }
            LayerOp::Moe(m)
        }
        "attention" => LayerOp::Attention(AttentionShape {
            tokens: dim("tokens", rl.tokens)?,
            head_dim: dim("head_dim", rl.head_dim)?,
            heads: dim("heads", rl.heads)?,
        }),
        _ => {
            let c = Conv2d {
                h: dim("h", rl.h)?,
                w: dim("w", rl.w)?,
                c_in: dim("c_in", rl.c_in)?,
                c_out: dim("c_out", rl.c_out)?,
                kernel_h: dim("kernel_h", rl.kernel_h)?,
                kernel_w: dim("kernel_w", rl.kernel_w)?,
                stride: dim("stride", rl.stride.or(Some(1)))?,
                pad: match rl.pad.unwrap_or(0) {
                    p if p > MAX_DIM => {
                        return Err(e("pad", format!("{p} exceeds the limit {MAX_DIM}")));
                    }
                    p => p,
                },
                depthwise: rl.depthwise.unwrap_or(false),
            };
            if c.h + 2 * c.pad < c.kernel_h {
                return Err(e(
                    "kernel_h",
                    format!(
                        "kernel_h {} is larger than the padded input height {}",
                        c.kernel_h,
                        c.h + 2 * c.pad
                    ),
                ));
            }
            if c.w + 2 * c.pad < c.kernel_w {
                return Err(e(
                    "kernel_w",
                    format!(
                        "kernel_w {} is larger than the padded input width {}",
                        c.kernel_w,
                        c.w + 2 * c.pad
                    ),
                ));
            }
            if c.depthwise && !c.c_out.is_multiple_of(c.c_in) {
                return Err(e(
                    "c_out",
                    format!(
                        "a depthwise layer needs c_out to be a multiple of c_in ({} is not a multiple of {})",
                        c.c_out, c.c_in
                    ),
                ));
            }
            let (oh, ow) = c.output_hw();
            if oh * ow > MAX_DIM {
                return Err(e(
                    "h",
                    format!("output of {oh}×{ow} pixels exceeds the limit {MAX_DIM}"),
                ));
            }
            if !c.depthwise && c.kernel_h * c.kernel_w * c.c_in > MAX_DIM {
                return Err(e(
                    "c_in",
                    format!("im2col depth kernel_h·kernel_w·c_in exceeds the limit {MAX_DIM}"),
                ));
            }
            LayerOp::Conv2d(c)
        }
    };
    Ok((kind, op))
}

/// The layers of an `encoder_block` (see the module docs): its keys are checked here, the
/// parts' shapes by [`layer_op`] as for any layer.
fn expand_encoder_block(
    rl: &RawLayer,
    index: usize,
    e: &dyn Fn(&str, String) -> WorkloadError,
) -> Result<Vec<RawLayer>> {
    const KEYS: [&str; 6] = ["tokens", "d_model", "heads", "d_ff", "experts", "top_k"];
    for (key, present) in rl.shape_keys() {
        if present && !KEYS.contains(&key) {
            return Err(e(
                key,
                format!(
                    "not a key of an encoder_block layer (its keys: {})",
                    KEYS.join(", ")
                ),
            ));
        }
    }
    for (key, set) in [
        ("in", rl.input.is_some()),
        ("weight", rl.weight.is_some()),
        ("acc", rl.acc.is_some()),
        ("out", rl.out.is_some()),
    ] {
        if set {
            return Err(e(
                key,
                "an encoder_block takes its kernels' types from the file's [types] (or their \
                 defaults); write the layers out to give them types of their own"
                    .into(),
            ));
        }
    }
    let need = |key: &str, v: Option<u64>| -> Result<u64> {
        match v {
            None => Err(e(
                key,
                "missing (required for an encoder_block layer)".into(),
            )),
            Some(0) => Err(e(key, "must be at least 1".into())),
            Some(x) if x > MAX_DIM => Err(e(key, format!("{x} exceeds the limit {MAX_DIM}"))),
            Some(x) => Ok(x),
        }
    };
    let t = need("tokens", rl.tokens)?;
    let d = need("d_model", rl.d_model)?;
    let heads = need("heads", rl.heads)?;
    let f = need("d_ff", rl.d_ff)?;
    if !d.is_multiple_of(heads) {
        return Err(e(
            "heads",
            format!("heads = {heads} must divide d_model = {d}"),
        ));
    }
    if rl.top_k.is_some() && rl.experts.is_none() {
        return Err(e(
            "top_k",
            "top_k needs experts (an MoE FFN); without experts the FFN is a dense MLP".into(),
        ));
    }
    let name = rl
        .name
        .clone()
        .unwrap_or_else(|| format!("encoder_block{index}"));
    let part = |suffix: &str, kind: &str| RawLayer {
        name: Some(format!("{name}.{suffix}")),
        kind: Some(kind.into()),
        repeat: rl.repeat,
        ..RawLayer::default()
    };
    let gemm = |suffix: &str, m: u64, k: u64, n: u64| RawLayer {
        m: Some(m),
        k: Some(k),
        n: Some(n),
        ..part(suffix, "gemm")
    };
    let mut parts = vec![
        gemm("qkv", t, d, 3 * d),
        RawLayer {
            tokens: Some(t),
            head_dim: Some(d / heads),
            heads: Some(heads),
            ..part("attn", "attention")
        },
        gemm("proj", t, d, d),
    ];
    match rl.experts {
        Some(experts) => parts.push(RawLayer {
            tokens: Some(t),
            d_model: Some(d),
            d_ff: Some(f),
            experts: Some(experts),
            top_k: Some(rl.top_k.unwrap_or(2)),
            ..part("moe", "moe")
        }),
        None => {
            parts.push(gemm("fc1", t, d, f));
            parts.push(gemm("fc2", t, f, d));
        }
    }
    Ok(parts)
}

/// Checks a deserialized workload and turns it into layers.
fn build_workload(raw: RawWorkload, file: &str, default_name: &str) -> Result<Workload> {
    let err = |layer: Option<usize>, key: Option<&str>, message: String| WorkloadError::Invalid {
        file: file.to_string(),
        layer,
        key: key.map(str::to_string),
        message,
    };
    if raw.layer.is_empty() {
        return Err(err(
            None,
            Some("layer"),
            "no layers: add at least one [[layer]] table".into(),
        ));
    }
    // The file-wide types are checked on their own, so the error points at `[types]` and not
    // at the first layer that inherits them.
    check_type_strings(&raw.types)
        .map_err(|(key, m)| err(None, Some(&format!("types.{key}")), m))?;
    // Encoder blocks become the layers of their kernels, each keeping the block's index for
    // messages.
    let mut expanded: Vec<(usize, RawLayer)> = Vec::with_capacity(raw.layer.len());
    for (i, rl) in raw.layer.iter().enumerate() {
        if rl.kind.as_deref() == Some("encoder_block") {
            let e = |key: &str, message: String| err(Some(i), Some(key), message);
            for part in expand_encoder_block(rl, i, &e)? {
                expanded.push((i, part));
            }
        } else {
            expanded.push((i, rl.clone()));
        }
    }
    let mut layers: Vec<Layer> = Vec::with_capacity(expanded.len());
    for (i, rl) in &expanded {
        let (i, rl) = (*i, rl);
        let e = |key: &str, message: String| err(Some(i), Some(key), message);
        let (kind, op) = layer_op(rl, &e)?;
        let repeat = match rl.repeat {
            None => 1,
            Some(0) => return Err(e("repeat", "must be at least 1".into())),
            Some(r) if r > MAX_DIM => {
                return Err(e("repeat", format!("{r} exceeds the limit {MAX_DIM}")));
            }
            Some(r) => r,
        };
        let types = QfxTypes {
            input: rl.input.clone(),
            weight: rl.weight.clone(),
            acc: rl.acc.clone(),
            out: rl.out.clone(),
        }
        .or(&raw.types);
        for (key, v) in [
            ("in", &types.input),
            ("weight", &types.weight),
            ("acc", &types.acc),
            ("out", &types.out),
        ] {
            if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
                return Err(e(key, "empty type string".into()));
            }
        }
        check_type_strings(&types).map_err(|(key, m)| e(key, m))?;
        if kind == "moe" {
            check_moe_types(&types, rl.acc.is_some()).map_err(|(key, m)| e(key, m))?;
        }
        if kind == "attention" {
            for (key, set) in [("weight", rl.weight.is_some()), ("acc", rl.acc.is_some())] {
                if set {
                    return Err(e(
                        key,
                        "an attention layer has no weights or accumulator type: Q, K and V are \
                         its inputs (set in and out)"
                            .into(),
                    ));
                }
            }
        }
        let name = rl.name.clone().unwrap_or_else(|| format!("{kind}{i}"));
        // Reports, the mapper's per-layer results and `sim --layer` address layers by name.
        if let Some(first) = layers.iter().position(|l| l.name == name) {
            return Err(e(
                "name",
                format!(
                    "\"{name}\" is already the name of layer {first}; layer names must be unique"
                ),
            ));
        }
        layers.push(Layer {
            name,
            op,
            repeat,
            types,
        });
    }
    Ok(Workload {
        name: raw.name.unwrap_or_else(|| default_name.to_string()),
        description: raw.description,
        layers,
    })
}

/// The MoE core's rules for a `moe` layer's types: `in`, `weight` and `out` signed `ap_fixed`
/// of 2 to 24 bits (inherited from `[types]` when the layer does not set them); `acc` only
/// when set on the layer itself (a file-wide `acc` is for the GEMM layers).
fn check_moe_types(
    types: &QfxTypes,
    acc_on_layer: bool,
) -> std::result::Result<(), (&'static str, String)> {
    if acc_on_layer {
        return Err((
            "acc",
            "a moe layer has no accumulator type: the MoE core's accumulators are exact, sized \
             from the operand types (set in, weight, out)"
                .into(),
        ));
    }
    for (key, v) in [
        ("in", &types.input),
        ("weight", &types.weight),
        ("out", &types.out),
    ] {
        let Some(text) = v else { continue };
        let t: crate::qfx::QType = text
            .parse()
            .map_err(|err| (key, format!("\"{text}\" is not a QFX type: {err}")))?;
        if !t.is_signed() || !(2..=24).contains(&t.width()) {
            return Err((
                key,
                format!(
                    "\"{text}\": the MoE core takes signed ap_fixed types of 2 to 24 bits \
                     (inherited from [types] when the layer does not set it)"
                ),
            ));
        }
    }
    Ok(())
}

/// Every type string set parses as a QFX type (`acc` may be a wide exact-intermediate type):
/// `ap_fixed<0,0>` or a typo is refused here rather than deep inside generation.
fn check_type_strings(types: &QfxTypes) -> std::result::Result<(), (&'static str, String)> {
    use crate::qfx::QType;
    for (key, v) in [
        ("in", &types.input),
        ("weight", &types.weight),
        ("acc", &types.acc),
        ("out", &types.out),
    ] {
        let Some(text) = v else { continue };
        let parsed = if key == "acc" {
            QType::parse_wide(text)
        } else {
            text.parse::<QType>()
        };
        parsed.map_err(|err| (key, format!("\"{text}\" is not a QFX type: {err}")))?;
    }
    Ok(())
}

/// Turns a serde path (`layer[3].m`) into (layer index, key).
fn locate(path: &serde_path_to_error::Path) -> (Option<usize>, Option<String>) {
    use serde_path_to_error::Segment;
    let segs: Vec<&Segment> = path.iter().collect();
    let mut layer = None;
    let mut key = None;
    for (i, s) in segs.iter().enumerate() {
        match s {
            Segment::Map { key: k } if k == "layer" => {
                if let Some(Segment::Seq { index }) = segs.get(i + 1) {
                    layer = Some(*index);
                }
            }
            Segment::Map { key: k } => key = Some(k.clone()),
            _ => {}
        }
    }
    if key.as_deref() == Some("layer") && layer.is_some() {
        key = None;
    }
    (layer, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_have_plausible_sizes() {
        for name in builtin_names() {
            let w = Workload::builtin(name).unwrap();
            assert!(!w.layers.is_empty(), "{name}");
        }
        let mlp = Workload::builtin("mlp").unwrap();
        assert_eq!(mlp.total_macs(), 32 * (784 * 512 + 512 * 256 + 256 * 10));
        // ResNet-18: about 1.8 GMAC at 224×224.
        let r = Workload::builtin("resnet18").unwrap().total_macs();
        assert!((1_700_000_000..1_900_000_000).contains(&r), "{r}");
        // MobileNetV1: about 569 MMAC.
        let m = Workload::builtin("mobilenet").unwrap().total_macs();
        assert!((540_000_000..600_000_000).contains(&m), "{m}");
        // ViT-Tiny: about 1.26 GMAC.
        let v = Workload::builtin("vit-tiny").unwrap().total_macs();
        assert!((1_150_000_000..1_350_000_000).contains(&v), "{v}");
    }

    #[test]
    fn depthwise_lowers_to_one_gemm_per_channel() {
        let w = parse_workload(
            "[[layer]]\nkind='conv2d'\nh=14\nw=14\nc_in=512\nc_out=512\nkernel_h=3\nkernel_w=3\npad=1\ndepthwise=true\n",
            "t",
            "t",
        )
        .unwrap();
        let l = w.layers[0].lower();
        assert_eq!(l.groups, 512);
        assert_eq!(l.gemm, GemmShape { m: 196, k: 9, n: 1 });
    }

    #[test]
    fn conv_lowering_follows_im2col() {
        let w = parse_workload(
            "[[layer]]\nkind='conv2d'\nh=224\nw=224\nc_in=3\nc_out=64\nkernel_h=7\nkernel_w=7\nstride=2\npad=3\n",
            "t",
            "t",
        )
        .unwrap();
        assert_eq!(
            w.layers[0].lower().gemm,
            GemmShape {
                m: 112 * 112,
                k: 147,
                n: 64
            }
        );
    }

    #[test]
    fn duplicate_layer_names_and_impossible_types_are_refused() {
        let g = "kind='gemm'\nm=4\nk=4\nn=4\n";
        let (layer, key, msg) = err_of(&format!(
            "[[layer]]\nname='fc'\n{g}[[layer]]\nname='fc'\n{g}"
        ));
        assert_eq!((layer, key.as_deref()), (Some(1), Some("name")));
        assert!(msg.contains("\"fc\"") && msg.contains("layer 0"), "{msg}");
        // A generated name (`gemm1`) may not collide with an explicit one either.
        let (layer, _, _) = err_of(&format!("[[layer]]\nname='gemm1'\n{g}[[layer]]\n{g}"));
        assert_eq!(layer, Some(1));
        let (layer, key, msg) = err_of(&format!("[types]\nacc='ap_fixed<0,0>'\n[[layer]]\n{g}"));
        assert_eq!((layer, key.as_deref()), (None, Some("types.acc")));
        assert!(msg.contains("ap_fixed<0,0>"), "{msg}");
        let (layer, key, _) = err_of(&format!("[[layer]]\n{g}weight='ap_fixd<8,2>'\n"));
        assert_eq!((layer, key.as_deref()), (Some(0), Some("weight")));
        // Wide exact accumulators stay legal.
        parse_workload(
            &format!("[types]\nacc='ap_fixed<80,40>'\n[[layer]]\n{g}"),
            "t",
            "t",
        )
        .unwrap();
    }

    fn err_of(text: &str) -> (Option<usize>, Option<String>, String) {
        match parse_workload(text, "bad.toml", "bad") {
            Err(WorkloadError::Invalid {
                file,
                layer,
                key,
                message,
            }) => {
                assert_eq!(file, "bad.toml");
                (layer, key, message)
            }
            other => panic!("expected a workload error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_layer_and_key() {
        let ok = "[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\n";
        let (l, k, _) = err_of(&format!(
            "{ok}[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nbogus=1\n"
        ));
        assert_eq!((l, k.as_deref()), (Some(1), Some("bogus")));
        let (l, k, m) = err_of(&format!("{ok}[[layer]]\nkind='gemm'\nm=1\nk=2\n"));
        assert_eq!((l, k.as_deref()), (Some(1), Some("n")));
        assert!(m.contains("missing"));
        let (l, k, _) = err_of(&format!("{ok}{ok}[[layer]]\nkind='gemm'\nm=-1\nk=2\nn=3\n"));
        assert_eq!((l, k.as_deref()), (Some(2), Some("m")));
        let (l, k, _) =
            err_of("[[layer]]\nkind='dense'\nbatch=1\nin_features=2\nout_features=3\nh=4\n");
        assert_eq!((l, k.as_deref()), (Some(0), Some("h")));
        let (l, k, _) = err_of("[[layer]]\nkind='conv3d'\n");
        assert_eq!((l, k.as_deref()), (Some(0), Some("kind")));
        let (l, k, _) = err_of("[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nrepeat=0\n");
        assert_eq!((l, k.as_deref()), (Some(0), Some("repeat")));
        let (l, k, _) = err_of(
            "[[layer]]\nkind='conv2d'\nh=4\nw=4\nc_in=3\nc_out=4\nkernel_h=3\nkernel_w=3\ndepthwise=true\n",
        );
        assert_eq!((l, k.as_deref()), (Some(0), Some("c_out")));
        let (l, k, _) = err_of("nam='x'\n[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\n");
        assert_eq!((l, k.as_deref()), (None, Some("nam")));
        let (l, k, _) = err_of("name='x'\n");
        assert_eq!((l, k.as_deref()), (None, Some("layer")));
    }

    #[test]
    fn moe_layers_parse_and_errors_name_the_key() {
        let ok = "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n";
        let w = parse_workload(ok, "t", "t").unwrap();
        let m = w.layers[0].moe().unwrap();
        assert_eq!((m.tokens, m.d_ff, m.experts, m.top_k), (16, 32, 8, 2));
        assert_eq!(w.layers[0].name, "moe0");
        // Gate GEMV + 32 routed pairs × two expert GEMMs.
        assert_eq!(w.total_macs(), 16 * 16 * 8 + 2 * 32 * 16 * 32);
        let (l, k, _) = err_of(&format!("{ok}m=3\n"));
        assert_eq!((l, k.as_deref()), (Some(0), Some("m")));
        let (l, k, m) = err_of(&ok.replace("top_k=2\n", ""));
        assert_eq!((l, k.as_deref()), (Some(0), Some("top_k")));
        assert!(m.contains("missing"), "{m}");
        let (l, k, _) = err_of(&ok.replace("experts=8", "experts=0"));
        assert_eq!((l, k.as_deref()), (Some(0), Some("experts")));
        let (l, k, _) = err_of(&ok.replace("top_k=2", "top_k=9"));
        assert_eq!((l, k.as_deref()), (Some(0), Some("top_k")));
        let (l, k, _) = err_of("[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nexperts=4\n");
        assert_eq!((l, k.as_deref()), (Some(0), Some("experts")));
        let (l, k, _) = err_of(&format!("{ok}bogus=1\n"));
        assert_eq!((l, k.as_deref()), (Some(0), Some("bogus")));
    }

    #[test]
    fn moe_types_and_queue_depth_are_checked_and_errors_name_the_key() {
        let ok = "[[layer]]\nkind='moe'\ntokens=16\nd_model=16\nd_ff=32\nexperts=8\ntop_k=2\n";
        let w = parse_workload(
            &format!("{ok}queue_depth=4\nin='ap_fixed<16,6>'\nweight='ap_fixed<16,2>'\nout='ap_fixed<12,4>'\n"),
            "t",
            "t",
        )
        .unwrap();
        assert_eq!(w.layers[0].moe().unwrap().queue_depth, Some(4));
        assert_eq!(w.layers[0].types.weight.as_deref(), Some("ap_fixed<16,2>"));
        assert_eq!(
            parse_workload(ok, "t", "t").unwrap().layers[0]
                .moe()
                .unwrap()
                .queue_depth,
            None
        );
        // A file-wide accumulator type is for the GEMM layers; on the MoE layer itself it is an error.
        parse_workload(&format!("[types]\nacc='ap_fixed<32,16>'\n{ok}"), "t", "t").unwrap();
        let cases = [
            (format!("{ok}acc='ap_fixed<32,16>'\n"), "acc", "exact"),
            (
                format!("{ok}weight='ap_fixd<8,1>'\n"),
                "weight",
                "not a QFX type",
            ),
            (format!("{ok}in='ap_ufixed<8,4>'\n"), "in", "signed"),
            (format!("{ok}out='ap_fixed<32,8>'\n"), "out", "2 to 24 bits"),
            (
                format!("[types]\nin='ap_ufixed<8,4>'\n{ok}"),
                "in",
                "inherited",
            ),
            (format!("{ok}queue_depth=0\n"), "queue_depth", "at least 1"),
            (
                "[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nqueue_depth=4\n".into(),
                "queue_depth",
                "not a key",
            ),
        ];
        for (text, key, needle) in cases {
            let (l, k, m) = err_of(&text);
            assert_eq!((l, k.as_deref()), (Some(0), Some(key)), "{text}");
            assert!(m.contains(needle), "{m}");
        }
    }

    #[test]
    fn unknown_key_message_says_which() {
        let text = "[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nbogus=1\n";
        let msg = parse_workload(text, "bad.toml", "bad")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bad.toml") && msg.contains("layer 0") && msg.contains("bogus"),
            "{msg}"
        );
    }

    #[test]
    fn layer_types_default_from_the_file() {
        let w = parse_workload(
            "[types]\nin='ap_fixed<8,4>'\n[[layer]]\nkind='gemm'\nm=1\nk=2\nn=3\nweight='ap_fixed<8,1>'\n",
            "t",
            "t",
        )
        .unwrap();
        assert_eq!(w.layers[0].types.input.as_deref(), Some("ap_fixed<8,4>"));
        assert_eq!(w.layers[0].types.weight.as_deref(), Some("ap_fixed<8,1>"));
    }

    #[test]
    fn one_layer_files_read_the_workload_keys() {
        let l = parse_layer(
            "kind = \"conv2d\"\nh = 7\nw = 6\nc_in = 2\nc_out = 5\nkernel_h = 3\nkernel_w = 2\nstride = 2\npad = 1\n",
            "conv.toml",
        )
        .unwrap();
        let LayerOp::Conv2d(c) = l.op else {
            panic!("expected a conv2d, got {:?}", l.op)
        };
        assert_eq!((c.h, c.w, c.c_in, c.c_out), (7, 6, 2, 5));
        assert_eq!((c.kernel_h, c.kernel_w, c.stride, c.pad), (3, 2, 2, 1));
        assert_eq!(l.name, "conv2d0");
        // An error in a one-layer file names the key, not a layer index.
        match parse_layer("kind = \"gemm\"\nm = 0\nk = 1\nn = 1\n", "g.toml") {
            Err(WorkloadError::Invalid { layer, key, .. }) => {
                assert_eq!((layer, key.as_deref()), (None, Some("m")));
            }
            other => panic!("expected an error naming m, got {other:?}"),
        }
    }

    #[test]
    fn the_old_type_spelling_is_refused_naming_the_new_keys() {
        let conv_old = "type = \"conv2d\"\nh = 7\nw = 6\nc = 2\nk = 5\nr = 3\ns = 2\n";
        for (what, result) in [
            ("layer file", parse_layer(conv_old, "old.toml").map(|_| ())),
            (
                "workload",
                parse_workload(&format!("[[layer]]\n{conv_old}"), "old.toml", "w").map(|_| ()),
            ),
            (
                "inline tables",
                parse_layer_tables(&[conv_old.parse::<toml::Table>().unwrap()], "spec.toml")
                    .map(|_| ()),
            ),
        ] {
            let message = match result {
                Err(e @ WorkloadError::Invalid { .. }) => e.to_string(),
                other => panic!("{what}: expected an error, got {other:?}"),
            };
            for needle in ["`type`", "kind = \"conv2d\"", "c_in", "kernel_h"] {
                assert!(
                    message.contains(needle),
                    "{what}: `{needle}` not in: {message}"
                );
            }
        }
    }

    #[test]
    fn inline_tables_read_like_a_file_and_errors_name_the_layer() {
        let tables: Vec<toml::Table> = [
            "kind = \"gemm\"\nname = \"fc\"\nm = 4\nk = 8\nn = 2\n",
            "kind = \"moe\"\ntokens = 8\nd_model = 16\nd_ff = 32\nexperts = 4\ntop_k = 2\n",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let layers = parse_layer_tables(&tables, "spec.toml").unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].name, "fc");
        assert!(layers[1].moe().is_some());
        let bad: toml::Table = "kind = \"gemm\"\nm = 4\nk = 8\nq = 2\n".parse().unwrap();
        match parse_layer_tables(&[tables[0].clone(), bad], "spec.toml") {
            Err(WorkloadError::Invalid { layer, message, .. }) => {
                assert_eq!(layer, Some(1));
                assert!(message.contains('q'), "{message}");
            }
            other => panic!("expected an error in layer 1, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod encoder_block_tests {
    use super::*;

    fn shapes(w: &Workload) -> Vec<(LayerOp, u64)> {
        w.layers.iter().map(|l| (l.op, l.repeat)).collect()
    }

    /// An `encoder_block` is exactly the layers of the built-in blocks, written out.
    #[test]
    fn encoder_blocks_expand_to_the_builtin_blocks() {
        let mlp = parse_workload(
            "[[layer]]\nname = \"b\"\nkind = \"encoder_block\"\ntokens = 197\nd_model = 192\n\
             heads = 3\nd_ff = 768\n",
            "t.toml",
            "t",
        )
        .unwrap();
        assert_eq!(
            shapes(&mlp),
            shapes(&Workload::builtin("vit-tiny-block").unwrap())
        );
        let names: Vec<&str> = mlp.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["b.qkv", "b.attn", "b.proj", "b.fc1", "b.fc2"]);
        let moe = parse_workload(
            "[[layer]]\nkind = \"encoder_block\"\ntokens = 197\nd_model = 192\nheads = 3\n\
             d_ff = 768\nexperts = 16\nrepeat = 6\n",
            "t.toml",
            "t",
        )
        .unwrap();
        let want: Vec<(LayerOp, u64)> = shapes(&Workload::builtin("m3vit-block").unwrap())
            .into_iter()
            .map(|(op, _)| (op, 6))
            .collect();
        assert_eq!(shapes(&moe), want);
        assert_eq!(moe.layers[3].name, "encoder_block0.moe");
    }

    #[test]
    fn bad_encoder_blocks_are_named() {
        let bad = |body: &str, needle: &str| {
            let text = format!("[[layer]]\nkind = \"encoder_block\"\n{body}");
            let e = parse_workload(&text, "t.toml", "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{body}: {e}");
        };
        let ok = "tokens = 197\nd_model = 192\nheads = 3\nd_ff = 768\n";
        bad(
            "tokens = 197\nd_model = 192\nheads = 5\nd_ff = 768\n",
            "heads = 5",
        );
        bad("tokens = 197\nd_model = 192\nheads = 3\n", "d_ff");
        bad(&format!("{ok}top_k = 2\n"), "top_k needs experts");
        bad(&format!("{ok}m = 4\n"), "not a key of an encoder_block");
        bad(&format!("{ok}weight = \"ap_fixed<8,1>\"\n"), "[types]");
        bad(&format!("{ok}experts = 4\ntop_k = 5\n"), "top_k 5 exceeds");
    }
}

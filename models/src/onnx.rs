//! Reading an ONNX/QONNX file into a plain graph: nodes in file order (ONNX requires topological
//! order), initializers as tensors, the input's static shape. The protobuf decoding itself is the
//! `protobuf` crate's, on types generated from the official `onnx.proto` (see build.rs).

use std::collections::HashMap;

use protobuf::Message;

use crate::ModelError;
use crate::proto::onnx as pb;

/// A constant tensor: floats, or any integer type widened to i64.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
    /// The ONNX element type it was stored as (QuantizeLinear's range follows its zero point's).
    pub elem: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl Tensor {
    pub fn f32(shape: Vec<usize>, v: Vec<f32>) -> Self {
        Tensor {
            shape,
            data: Data::F32(v),
            elem: FLOAT,
        }
    }
    pub fn i64(shape: Vec<usize>, v: Vec<i64>) -> Self {
        Tensor {
            shape,
            data: Data::I64(v),
            elem: INT64,
        }
    }
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The values as f32 (integers converted), as ONNX float arithmetic would see them.
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }
}

/// Element types a tensor may have (the ONNX `DataType` numbers).
pub const FLOAT: i32 = 1;
pub const UINT8: i32 = 2;
pub const INT8: i32 = 3;
const INT32: i32 = 6;
const INT64: i32 = 7;

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Float(f32),
    Int(i64),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Tensor(Tensor),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub op: String,
    pub domain: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: HashMap<String, Attr>,
}

impl Node {
    /// A display name for errors: the node's name, or its first output when it has none.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!(
                "(output {})",
                self.outputs.first().map(String::as_str).unwrap_or("?")
            )
        } else {
            self.name.clone()
        }
    }
    pub fn int(&self, key: &str, default: i64) -> Result<i64, ModelError> {
        match self.attrs.get(key) {
            None => Ok(default),
            Some(Attr::Int(v)) => Ok(*v),
            Some(_) => Err(self.bad(&format!("attribute `{key}` must be an integer"))),
        }
    }
    pub fn float(&self, key: &str, default: f32) -> Result<f32, ModelError> {
        match self.attrs.get(key) {
            None => Ok(default),
            Some(Attr::Float(v)) => Ok(*v),
            Some(_) => Err(self.bad(&format!("attribute `{key}` must be a float"))),
        }
    }
    pub fn ints(&self, key: &str) -> Result<Option<Vec<i64>>, ModelError> {
        match self.attrs.get(key) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.bad(&format!("attribute `{key}` must be a list of integers"))),
        }
    }
    pub fn string(&self, key: &str) -> Result<Option<String>, ModelError> {
        match self.attrs.get(key) {
            None => Ok(None),
            Some(Attr::Str(v)) => Ok(Some(v.clone())),
            Some(_) => Err(self.bad(&format!("attribute `{key}` must be a string"))),
        }
    }
    pub fn bad(&self, what: &str) -> ModelError {
        ModelError::Unsupported {
            node: self.label(),
            op: self.op.clone(),
            what: what.to_string(),
        }
    }
}

/// The graph's one input: name and static shape (axis 0 is the batch; a symbolic batch reads
/// as 1, any other symbolic axis is an error).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub shape: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub input: Input,
    pub output: String,
    pub nodes: Vec<Node>,
    pub initializers: HashMap<String, Tensor>,
}

/// Parse an ONNX file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Graph, ModelError> {
    let model =
        pb::ModelProto::parse_from_bytes(bytes).map_err(|e| ModelError::Protobuf(e.to_string()))?;
    let g = model
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::Protobuf("the model has no graph".into()))?;
    if g.node.is_empty() {
        return Err(ModelError::Protobuf(
            "the graph has no nodes (is this an ONNX model?)".into(),
        ));
    }
    let mut initializers = HashMap::new();
    for t in &g.initializer {
        initializers.insert(t.name().to_string(), tensor(t)?);
    }
    // Older exporters also list initializers as graph inputs; the real input is the other one.
    let inputs: Vec<&pb::ValueInfoProto> = g
        .input
        .iter()
        .filter(|v| !initializers.contains_key(v.name()))
        .collect();
    if inputs.len() != 1 {
        return Err(ModelError::Graph(format!(
            "the graph has {} inputs; one (the network input) is supported",
            inputs.len()
        )));
    }
    if g.output.len() != 1 {
        return Err(ModelError::Graph(format!(
            "the graph has {} outputs; one is supported",
            g.output.len()
        )));
    }
    let vi = inputs[0];
    let tt = vi.type_.tensor_type();
    if tt.elem_type() != FLOAT {
        return Err(ModelError::Graph(format!(
            "the input `{}` has element type {}; a float32 input is supported",
            vi.name(),
            tt.elem_type()
        )));
    }
    let mut shape = Vec::new();
    for (axis, d) in tt.shape.dim.iter().enumerate() {
        if d.has_dim_value() && d.dim_value() > 0 {
            shape.push(d.dim_value() as usize);
        } else if axis == 0 {
            shape.push(1);
        } else {
            return Err(ModelError::DynamicShape {
                input: vi.name().to_string(),
                axis,
                dim: d.dim_param().to_string(),
            });
        }
    }
    if shape.is_empty() {
        return Err(ModelError::Graph(format!(
            "the input `{}` has no shape; a static shape (batch first) is needed",
            vi.name()
        )));
    }
    let mut nodes = Vec::with_capacity(g.node.len());
    for n in &g.node {
        let mut attrs = HashMap::new();
        for a in &n.attribute {
            attrs.insert(a.name().to_string(), attr(a)?);
        }
        nodes.push(Node {
            name: n.name().to_string(),
            op: n.op_type().to_string(),
            domain: n.domain().to_string(),
            inputs: n.input.clone(),
            outputs: n.output.clone(),
            attrs,
        });
    }
    Ok(Graph {
        input: Input {
            name: vi.name().to_string(),
            shape,
        },
        output: g.output[0].name().to_string(),
        nodes,
        initializers,
    })
}

fn attr(a: &pb::AttributeProto) -> Result<Attr, ModelError> {
    use pb::attribute_proto::AttributeType as T;
    Ok(match a.type_() {
        T::FLOAT => Attr::Float(a.f()),
        T::INT => Attr::Int(a.i()),
        T::STRING => Attr::Str(String::from_utf8_lossy(a.s()).into_owned()),
        T::INTS => Attr::Ints(a.ints.clone()),
        T::FLOATS => Attr::Floats(a.floats.clone()),
        T::TENSOR => Attr::Tensor(tensor(&a.t)?),
        other => {
            return Err(ModelError::Graph(format!(
                "attribute `{}` has type {other:?}, which is not supported",
                a.name()
            )));
        }
    })
}

fn tensor(t: &pb::TensorProto) -> Result<Tensor, ModelError> {
    let shape: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            ModelError::Graph(format!("tensor `{}` has a negative dimension", t.name()))
        })?;
    let n: usize = shape.iter().product();
    if t.data_location() == pb::tensor_proto::DataLocation::EXTERNAL {
        return Err(ModelError::Graph(format!(
            "tensor `{}` keeps its data in an external file; embed the weights in the .onnx file",
            t.name()
        )));
    }
    let raw = t.raw_data();
    let bad = |got: usize| {
        ModelError::Graph(format!(
            "tensor `{}` has {got} values for shape {shape:?}",
            t.name()
        ))
    };
    let elem = t.data_type();
    let mut t = match t.data_type() {
        FLOAT => {
            let v: Vec<f32> = if raw.is_empty() {
                t.float_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            if v.len() != n || (!raw.is_empty() && raw.len() != 4 * n) {
                return Err(bad(v.len()));
            }
            Tensor::f32(shape, v)
        }
        INT64 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            };
            if v.len() != n || (!raw.is_empty() && raw.len() != 8 * n) {
                return Err(bad(v.len()));
            }
            Tensor::i64(shape, v)
        }
        INT32 => {
            let v: Vec<i64> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| i64::from(x)).collect()
            } else {
                raw.chunks_exact(4)
                    .map(|c| i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect()
            };
            if v.len() != n {
                return Err(bad(v.len()));
            }
            Tensor::i64(shape, v)
        }
        INT8 | UINT8 => {
            let signed = t.data_type() == INT8;
            let v: Vec<i64> = if raw.is_empty() {
                t.int32_data.iter().map(|&x| i64::from(x)).collect()
            } else {
                raw.iter()
                    .map(|&b| {
                        if signed {
                            i64::from(b as i8)
                        } else {
                            i64::from(b)
                        }
                    })
                    .collect()
            };
            if v.len() != n {
                return Err(bad(v.len()));
            }
            Tensor::i64(shape, v)
        }
        other => {
            return Err(ModelError::Graph(format!(
                "tensor `{}` has element type {other}; float32, int8, uint8, int32 and int64 are supported",
                t.name()
            )));
        }
    };
    t.elem = elem;
    Ok(t)
}

//! The network package of a model bundle (`accelforge gen MODEL.onnx`): a Python module that
//! runs a whole imported network layer by layer through the bundle's PYNQ driver (host stages
//! in numpy, GEMMs on the accelerator), and an example script. Both are plain files kept as
//! Python sources in this directory so they can be read and linted as Python.

/// `network.py`: reads `network.json` and `weights/`, packs every GEMM's operands into the
/// systolic core's input stream and unpacks its accumulators.
pub const NETWORK_PY: &str = include_str!("network.py");

/// `run_network.py X.npy [--labels L.npy]`: the example script.
pub const RUN_NETWORK_PY: &str = include_str!("run_network.py");

//! Workloads: the layer vocabulary lives with the templates
//! ([`accelforge_templates::workload`]), so the mapper, the sweep and the CLI read one spelling;
//! re-exported here for the mapper's users.

pub use accelforge_templates::workload::*;

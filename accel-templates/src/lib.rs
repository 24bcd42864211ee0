//! accelforge-templates: fixed-point numerics ([`qfx`]) and the accelerator templates built on
//! them.
#![warn(missing_docs)]

pub mod attention;
pub mod block;
pub mod calibrate;
pub mod layernorm;
pub mod limits;
pub mod moe;
pub mod qfx;
pub mod systolic;
pub mod template;
pub mod units;
pub mod workload;

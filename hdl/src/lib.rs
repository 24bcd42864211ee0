//! accelforge-hdl
#![warn(missing_docs)]

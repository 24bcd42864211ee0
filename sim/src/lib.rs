//! accelforge-sim
#![warn(missing_docs)]

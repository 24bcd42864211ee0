//! accelforge-mapper
#![warn(missing_docs)]

//! accelforge-templates
#![warn(missing_docs)]

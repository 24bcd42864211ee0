//! accelforge-reports
#![warn(missing_docs)]

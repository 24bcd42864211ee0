//! accelforge-boards
#![warn(missing_docs)]

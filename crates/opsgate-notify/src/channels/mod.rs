//! The built-in channels, one file each.

pub mod log;
pub mod webhook;

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod epoch;
pub mod fix;
pub mod fixed;
pub mod ingest;
pub mod policy;

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod cells;
pub mod epoch;
pub mod fix;
pub mod fixed;
pub mod ingest;
pub mod novelty;
pub mod policy;
pub mod quality;
pub mod rewards;

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod audit;
pub mod cells;
pub mod epoch;
pub mod fix;
pub mod fixed;
pub mod frames;
pub mod geoparquet;
pub mod ingest;
pub mod io;
pub mod lake;
pub mod merkle;
pub mod novelty;
pub mod pipeline;
pub mod policy;
pub mod quality;
pub mod registry;
pub mod render;
pub mod rewards;
pub mod simulate;
pub(crate) mod spill;
pub mod state;

//! SQL over a tessera lake with DataFusion (kept out of the core crate so the core builds fast).
//! See [`session`] for the tables and [`h3`] for the functions.

pub mod h3;
pub mod session;

pub use session::{describe, session};

//! SQL over a tessera lake with DataFusion (kept out of the core crate so the core builds fast).
//! See [`session`] for the tables and [`h3`] for the functions.

pub mod h3;
pub mod session;

pub use session::{describe, session};

// The session on a real lake (every table, epoch pruning, the README's queries). A module of
// the library's own test binary rather than a `tests/` file: each test binary that links
// DataFusion costs ~100 s to build on two cores.
#[cfg(test)]
mod lake_tests;

//! `tessera`: the command line of the tessera reward pipeline. `cli` holds the clap
//! definitions, `commands/` one file per command, `output` how results are printed; `main.rs`
//! only calls [`main`].
//!
//! A library only so `cargo test` compiles this code once: a binary's own unit tests compile
//! all of it a second time (~170 s of one core in a fresh CI build). Its tests are
//! `tests/units.rs`. Not an API: use the `tessera` crate.

pub mod cli;
pub mod commands;
#[cfg(feature = "gis")]
pub mod gdal_helper;
pub mod gis;
pub mod output;

mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

use clap::Parser;

/// The `tessera` binary: parse the command line, run the command, print an error and exit 1
/// on failure.
pub fn main() {
    if let Err(e) = tessera::cpu_supported() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = cli::Cli::parse();
    if !matches!(cli.cmd, cli::Cmd::Serve(_)) {
        output::default_sigpipe();
    }
    let result = commands::run(cli);
    #[cfg(feature = "gis")]
    gdal_helper::shutdown();
    if let Err(e) = result {
        eprintln!("error: {}", output::error_text(&e));
        std::process::exit(1);
    }
}

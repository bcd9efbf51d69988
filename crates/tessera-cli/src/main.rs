//! `tessera`: the command line of the tessera reward pipeline. `cli` holds the clap
//! definitions, `commands/` one file per command, `output` how results are printed.

mod cli;
mod commands;
mod gis;
mod output;

mod sample {
    include!(concat!(env!("OUT_DIR"), "/sample.rs"));
}

use clap::Parser;

fn main() {
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
    if let Err(e) = commands::run(cli) {
        eprintln!("error: {}", output::error_text(&e));
        std::process::exit(1);
    }
}

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

/// glibc's malloc serves blocks above its mmap threshold (128 KiB at start) with fresh `mmap`s
/// and returns them on free, and trims arenas past its trim threshold; both rise only when a
/// large mmapped block is freed. An epoch allocates each source's fixes, points and cells (MBs)
/// on the worker threads and frees them a moment later, so until something large is freed every
/// source faults its pages in anew (measured: 1.1–1.8 s of kernel time in a 10^7-fix epoch,
/// 0.42–0.49 s with these). Fix both at the values the dynamic rule reaches (32 MiB, twice that),
/// before any thread starts; memory use is unchanged within a few percent.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
    }
}

/// The `tessera` binary: parse the command line, run the command, print an error and exit 1
/// on failure.
pub fn main() {
    tune_malloc();
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

//! `tessera`: the command line of the tessera reward pipeline. `cli` holds the clap
//! definitions, `commands/` one file per command, `output` how results are printed; `main.rs`
//! sets the allocator's options ([`allocator`]) and calls [`main`].
//!
//! A library only so `cargo test` compiles this code once: a binary's own unit tests compile
//! all of it a second time (~170 s of one core in a fresh CI build). Its tests are
//! `tests/units.rs`. Not an API: use the `tessera` crate.

/// The options `main.rs` gives mimalloc, the `tessera` binary's allocator (constants only: the
/// library calls no allocator function, so no other binary links mimalloc through it).
pub mod allocator {
    /// `mi_option_purge_delay`, the 16th `mi_option_t` of mimalloc 2's `mimalloc.h` (the
    /// `libmimalloc-sys` crate names no constant for it; `tests/units.rs` checks the index by
    /// the name mimalloc prints).
    pub const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

    /// How long mimalloc keeps freed pages before returning them to the kernel, in ms (its
    /// default is 10). An epoch frees and reallocates its encoding buffers batch after batch:
    /// at 10 ms most came back as fresh pages, 0.7–1.1 million page faults per 10^8-fix epoch,
    /// each page zeroed by the kernel (`clear_page_erms`, 6.5 % of the CPU samples); at 1,000
    /// ms about 16,000, for ~4 % more peak memory (benches/HISTORY.md, forty-first round).
    /// `MIMALLOC_PURGE_DELAY` in the environment still wins.
    pub const PURGE_DELAY_MS: std::ffi::c_long = 1000;

    /// `mi_option_allow_thp`, the 38th `mi_option_t` of mimalloc 2's `mimalloc.h` (checked by
    /// name in `tests/units.rs`, as above). Its default, 1, has mimalloc advise the kernel to back
    /// its memory with transparent huge pages (`madvise(MADV_HUGEPAGE)`), which a kernel whose
    /// THP mode is `madvise` or `always` then does: each fresh 2 MiB page is zeroed whole at its
    /// first touch (and, with THP `defrag` on, compacted for). On such a machine
    /// the kernel's zeroing (`clear_page_erms` under `do_huge_pmd_anonymous_page`) took 15 % of
    /// a 10^7-fix epoch's CPU samples and its system time was 1.8 s of 9 (benches/HISTORY.md,
    /// forty-second round). `main.rs` sets this to 0 and, unless `MIMALLOC_ALLOW_THP` in the
    /// environment asks for huge pages, turns them off for the process (`PR_SET_THP_DISABLE`,
    /// inherited by the `tessera-gdal` helper it starts), as mimalloc itself does when the
    /// option is 0 at its start.
    pub const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 37;
}

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

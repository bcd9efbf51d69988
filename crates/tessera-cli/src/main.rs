//! `tessera`: the command line of the tessera reward pipeline (the code is in `lib.rs`).

/// The allocator of the whole `tessera` process: mimalloc 2 (the `mimalloc` crate, features
/// `v2` and `override`, so the C libraries' `malloc` — ZSTD's contexts among them — is mimalloc
/// too). glibc's malloc took 7.6 % of a billion-fix epoch's CPU samples against 2.6 % at 10^7
/// fixes (`_int_malloc`, `malloc_consolidate`, `unlink_chunk`: as many calls per fix, each
/// dearer in the larger heap); with mimalloc the 10^9 week ran 4–6 % faster, 10^7 2.5 %, every
/// byte the same (benches/HISTORY.md, thirty-ninth round). Only this binary: the Python module
/// leaves its host process's allocator alone, and `tessera-gdal` keeps GDAL's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // SAFETY: sets two options' defaults before any thread but this one runs; valid option
    // indices (checked in tests/units.rs) and any values are accepted. An option the
    // environment set (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ALLOW_THP`) keeps its value.
    unsafe {
        libmimalloc_sys::mi_option_set_default(
            tessera_cli::allocator::MI_OPTION_PURGE_DELAY,
            tessera_cli::allocator::PURGE_DELAY_MS,
        );
        libmimalloc_sys::mi_option_set_default(tessera_cli::allocator::MI_OPTION_ALLOW_THP, 0);
    }
    // SAFETY: reads an option (valid index, as above).
    if !unsafe { libmimalloc_sys::mi_option_is_enabled(tessera_cli::allocator::MI_OPTION_ALLOW_THP) } {
        // No transparent huge pages for this process, also in memory mimalloc reserved (and
        // advised) before `main`. A kernel without the call (before Linux 3.15) leaves them as
        // they were: only speed depends on it.
        // SAFETY: `prctl` with PR_SET_THP_DISABLE takes integer arguments and touches no memory.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    tessera_cli::main();
}

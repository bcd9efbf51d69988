//! `tessera`: the command line of the tessera reward pipeline (the code is in `lib.rs`).

/// The allocator of the whole `tessera` process: mimalloc 2 (the `mimalloc` crate, features
/// `v2` and `override`, so the C libraries' `malloc` — ZSTD's contexts among them — is mimalloc
/// too). glibc's malloc cost 7–8 % of a billion-fix epoch's CPU samples against ~2.6 % at 10^7
/// fixes (its arenas fragment as the replay search's traces accumulate between each source's
/// transient buffers); the README's thirty-ninth speed round has the measurements. Only this
/// binary: the Python module leaves its host process's allocator alone, and `tessera-gdal`
/// keeps GDAL's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tessera_cli::main();
}

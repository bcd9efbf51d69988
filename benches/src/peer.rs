//! Where the bench binaries find the peers' scripts (`benches/peer/`).

/// `benches/peer/NAME`: under `TESSERA_BENCH_PEERS` when set (`benches/run.sh` sets it to its
/// own checkout's `benches/peer`), else where this binary was built from. A binary built in
/// another checkout of the repo (a `git worktree` for a "before" run) and not rebuilt since
/// would otherwise look for the peers in that checkout, gone once it is removed.
pub fn script(name: &str) -> std::path::PathBuf {
    std::env::var_os("TESSERA_BENCH_PEERS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer"))
        .join(name)
}

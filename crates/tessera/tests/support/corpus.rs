//! Where the shared corpus of real data is (`../shared/corpus` beside the repository), for every
//! test that reads it. Included with `#[path]` by the tests of each crate.

use std::path::{Path, PathBuf};

/// `../shared/corpus/<sub>`, or `None` when it is absent (the test then skips, saying so) —
/// unless `TESSERA_REQUIRE_CORPUS=1`, when its absence fails the test instead (CI sets it).
#[allow(dead_code)]
pub fn corpus(sub: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(sub);
    if p.exists() {
        return Some(p);
    }
    let required = std::env::var("TESSERA_REQUIRE_CORPUS").is_ok_and(|v| v == "1");
    assert!(!required, "TESSERA_REQUIRE_CORPUS=1 but {} is missing", p.display());
    eprintln!("shared corpus {} not present; skipping", p.display());
    None
}

//! Built by `cargo test --workspace` so the Python extension comes out of the same build (same
//! profile, target dir and feature resolution) as the tests and the CLI: `scripts/test.sh`
//! installs that `lib_tessera.so` into its venv instead of building it a second time with
//! maturin (whose build of this one package resolves dependency features differently and
//! recompiled ~70 crates). Users build it with `pip install ./python` (maturin).
//!
//! (This directory also holds the pytest suite; cargo only reads the `.rs` files.)

use std::path::PathBuf;

/// The extension module as cargo built it: `target/<profile>/deps/lib_tessera.so`, beside this
/// test binary.
fn extension() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent().expect("deps directory").join("lib_tessera.so")
}

#[test]
fn the_extension_module_is_built_and_exports_its_python_entry_point() {
    let path = extension();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not a shared object", path.display());
    // PyO3's `#[pymodule] fn _tessera` exports `PyInit__tessera`, what `import tessera._tessera`
    // looks up.
    let entry = b"PyInit__tessera";
    assert!(
        bytes.windows(entry.len()).any(|w| w == entry),
        "{} does not export PyInit__tessera",
        path.display()
    );
}

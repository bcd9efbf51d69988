//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

/// Run `tessera ARGS` in `dir` (the test process's directory when `None`).
pub fn run_in(dir: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.args(args);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.output().expect("binary runs")
}

/// stdout of a run that must succeed.
pub fn ok(args: &[&str]) -> String {
    ok_in(None, args)
}

/// stdout of a run in `dir` that must succeed.
pub fn ok_in(dir: Option<&Path>, args: &[&str]) -> String {
    let o = run_in(dir, args);
    assert!(
        o.status.success(),
        "tessera {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// stderr of a run that must fail.
pub fn fails(args: &[&str]) -> String {
    let o = run_in(None, args);
    assert!(!o.status.success(), "tessera {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

/// `data/sample`.
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

/// A demo lake (both sample epochs run) in `dir/lake`.
pub fn demo_lake(dir: &Path) -> PathBuf {
    let lake = dir.join("lake");
    ok(&["demo", "--lake", lake.to_str().unwrap()]);
    lake
}

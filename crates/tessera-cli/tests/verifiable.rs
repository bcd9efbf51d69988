//! Verifiable rewards through the binary: byte-identical replay across thread counts, batch
//! sizes and ingest order; the real OpenZeppelin JS library accepts our tree and proofs;
//! `epoch verify` exit codes; SIGKILL at many points of `epoch run` never leaves half an epoch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ingest(lake: &Path, batch_rows: usize, reverse: bool) {
    let mut devices: Vec<PathBuf> = std::fs::read_dir(sample())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    devices.sort();
    if reverse {
        devices.reverse();
    }
    for d in devices {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        if reverse {
            files.reverse();
        }
        let dev = d.file_name().unwrap().to_str().unwrap();
        ok(bin()
            .args([
                "ingest",
                "--lake",
                lake.to_str().unwrap(),
                "--device",
                dev,
                "--batch-rows",
                &batch_rows.to_string(),
            ])
            .args(&files));
    }
}

fn run_epoch(lake: &Path, epoch: &str, pool: &str, threads: Option<&str>, batch_rows: usize) {
    run_epoch_spilling(lake, epoch, pool, threads, batch_rows, None)
}

/// `max_visits`: the visit budget before spilling to disk (`None`: the default, which the
/// sample never reaches).
fn run_epoch_spilling(
    lake: &Path,
    epoch: &str,
    pool: &str,
    threads: Option<&str>,
    batch_rows: usize,
    max_visits: Option<usize>,
) {
    let mut c = bin();
    c.args([
        "epoch",
        "run",
        "--lake",
        lake.to_str().unwrap(),
        "--epoch",
        epoch,
        "--pool",
        pool,
        "--json",
        "--batch-rows",
        &batch_rows.to_string(),
        "--replace", // the crash tests replace an older epoch on purpose
    ]);
    c.args(["--registry", sample().join("registry.csv").to_str().unwrap()]);
    if let Some(n) = max_visits {
        c.args(["--max-visits", &n.to_string()]);
    }
    match threads {
        Some(t) => c.env("RAYON_NUM_THREADS", t),
        None => c.env_remove("RAYON_NUM_THREADS"),
    };
    ok(&mut c);
}

fn epoch_bytes(lake: &Path, epoch: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = lake.join("epochs").join(epoch);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn epochs_are_byte_identical_across_threads_batch_sizes_spills_and_ingest_order() {
    let d = tempfile::tempdir().unwrap();
    // (threads, batch rows, reverse ingest, visit budget before spilling to disk)
    let variants: [(Option<&str>, usize, bool, Option<usize>); 5] = [
        (Some("1"), 65_536, false, None),
        (Some("2"), 1_000, true, Some(2_000)),
        (None, 777, false, None),
        (Some("1"), 1, true, Some(1)),
        (None, 65_536, false, Some(333)),
    ];
    type EpochFiles = BTreeMap<String, Vec<u8>>;
    let mut seen: Option<(EpochFiles, EpochFiles)> = None;
    for (i, (threads, batch, reverse, max_visits)) in variants.into_iter().enumerate() {
        let lake = d.path().join(format!("lake{i}"));
        ingest(&lake, batch, reverse);
        run_epoch_spilling(&lake, "2026-W46", "1000000000000", threads, batch, max_visits);
        run_epoch_spilling(&lake, "2026-W47", "1000000000000", threads, batch, max_visits);
        // And a rerun of the first epoch rewrites the same bytes.
        let w46 = epoch_bytes(&lake, "2026-W46");
        run_epoch_spilling(&lake, "2026-W46", "1000000000000", threads, batch, max_visits);
        assert_eq!(w46, epoch_bytes(&lake, "2026-W46"));
        let now = (w46, epoch_bytes(&lake, "2026-W47"));
        if let Some(first) = &seen {
            for (name, bytes) in &first.0 {
                assert!(
                    now.0[name] == *bytes,
                    "2026-W46/{name} differs for threads={threads:?} batch={batch} reverse={reverse} max_visits={max_visits:?}"
                );
            }
            assert!(
                first.1 == now.1,
                "2026-W47 differs for threads={threads:?} batch={batch} max_visits={max_visits:?}"
            );
        } else {
            seen = Some(now);
        }
    }
}

#[test]
fn openzeppelin_js_library_loads_our_tree_and_verifies_every_proof() {
    let tool = root().join("tools/merkle-check");
    let have_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_node || !tool.join("node_modules/@openzeppelin/merkle-tree").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the JS check: run `npm ci --prefix tools/merkle-check` (scripts/test.sh does)"
        );
        eprintln!("node or tools/merkle-check/node_modules missing; skipping the JS check");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    ok(bin().args(["demo", "--lake", lake.to_str().unwrap(), "--json"]));
    for epoch in ["2026-W46", "2026-W47"] {
        let claims = ok(bin().args(["proof", "--lake", lake.to_str().unwrap(), "--epoch", epoch, "--all"]));
        let claims_path = d.path().join(format!("{epoch}-claims.json"));
        std::fs::write(&claims_path, &claims).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(lake.join("epochs").join(epoch).join("manifest.json")).unwrap())
                .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&claims).unwrap();
        assert_eq!(doc["root"], manifest["merkle"]["root"]);
        let out = Command::new("node")
            .arg(tool.join("check.mjs"))
            .arg(lake.join("epochs").join(epoch).join("merkle.json"))
            .arg(&claims_path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{epoch}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n = doc["claims"].as_array().unwrap().len();
        assert!(text.contains(&format!("{} passed, 0 failed", 1 + 4 * n)), "{text}");
    }
}

#[test]
fn verify_exits_zero_on_match_and_nonzero_naming_the_file_on_tamper() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    ok(bin().args(["demo", "--lake", lake.to_str().unwrap()]));
    let out = ok(bin().args([
        "epoch",
        "verify",
        "--lake",
        lake.to_str().unwrap(),
        "--epoch",
        "2026-W47",
    ]));
    assert!(out.contains("match byte for byte"), "{out}");
    // Tamper with the published registry: move a device to another wallet.
    let reg = lake.join("epochs/2026-W47/registry.csv");
    let text = std::fs::read_to_string(&reg).unwrap();
    let first_wallet = text.lines().nth(1).unwrap().split(',').nth(1).unwrap().to_string();
    // An honest driver that earns (the sample's last drivers are withheld by the trust detectors).
    let last = text.lines().find(|l| l.starts_with("car-003,")).unwrap().to_string();
    let (dev, _) = last.split_once(',').unwrap();
    std::fs::write(&reg, text.replace(&last, &format!("{dev},{first_wallet}"))).unwrap();
    let o = bin()
        .args([
            "epoch",
            "verify",
            "--lake",
            lake.to_str().unwrap(),
            "--epoch",
            "2026-W47",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("registry.csv: SHA-256 differs") && text.contains("rewards.parquet"),
        "{text}"
    );
    assert!(text.contains("published :") && text.contains("recomputed:"), "{text}");
}

/// The state of an epoch as a user sees it after a crash: `None` if absent, else the pool of the
/// complete epoch that `epoch verify` (which opens, and so recovers, the lake) accepts.
fn check_epoch_whole(lake: &Path, epoch: &str) -> Option<String> {
    let out = bin()
        .args([
            "epoch",
            "verify",
            "--lake",
            lake.to_str().unwrap(),
            "--epoch",
            epoch,
            "--json",
        ])
        .output()
        .unwrap();
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("has no outputs") {
        assert!(!lake.join("epochs").join(epoch).exists());
        return None;
    }
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("verify: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(r["ok"], true, "half an epoch after a kill: {r}");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lake.join("epochs").join(epoch).join("manifest.json")).unwrap()).unwrap();
    Some(m["pool"].as_str().unwrap().to_string())
}

#[test]
fn sigkill_at_many_points_of_epoch_run_leaves_the_old_or_the_new_epoch() {
    let d = tempfile::tempdir().unwrap();
    let reference = d.path().join("reference");
    ingest(&reference, 65_536, false);
    run_epoch(&reference, "2026-W46", "222", None, 65_536);
    let want = epoch_bytes(&reference, "2026-W46");

    let lake = d.path().join("lake");
    ingest(&lake, 65_536, false);
    let mut states = BTreeMap::new();
    for i in 0..40u64 {
        // Half the runs start with no epoch, half replace an older one (pool 111).
        if i % 2 == 1 {
            run_epoch(&lake, "2026-W46", "111", None, 65_536);
        }
        let mut child = bin()
            .args([
                "epoch",
                "run",
                "--lake",
                lake.to_str().unwrap(),
                "--epoch",
                "2026-W46",
                "--pool",
                "222",
                "--json",
                "--replace",
            ])
            .args(["--registry", sample().join("registry.csv").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(1_500 * i));
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        let state = check_epoch_whole(&lake, "2026-W46");
        *states
            .entry(state.clone().unwrap_or_else(|| "none".into()))
            .or_insert(0) += 1;
        // Even runs start from no epoch, odd ones from the older epoch.
        std::fs::remove_dir_all(lake.join("epochs/2026-W46")).ok();
    }
    eprintln!("states after kills: {states:?}");
    // A rerun after all that produces exactly the uninterrupted bytes.
    run_epoch(&lake, "2026-W46", "222", None, 65_536);
    assert_eq!(want, epoch_bytes(&lake, "2026-W46"));
}

#[cfg(feature = "failpoints")]
#[test]
fn sigkill_at_each_commit_step_leaves_the_old_or_the_new_epoch() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    ingest(&lake, 65_536, false);
    for (point, expect) in [
        ("epoch-staged-file", "111"),
        ("commit-before-park", "111"),
        ("commit-after-park", "111"),
        ("commit-after-move", "222"),
    ] {
        run_epoch(&lake, "2026-W46", "111", None, 65_536);
        let mut child = bin()
            .args([
                "epoch",
                "run",
                "--lake",
                lake.to_str().unwrap(),
                "--epoch",
                "2026-W46",
                "--pool",
                "222",
                "--json",
                "--replace",
            ])
            .args(["--registry", sample().join("registry.csv").to_str().unwrap()])
            .env("FAILPOINTS", format!("{point}=sleep(60000)"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{point}: the run should be parked at the fail point"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(check_epoch_whole(&lake, "2026-W46").as_deref(), Some(expect), "{point}");
    }
}

//! The `tessera` binary end to end on the shipped sample data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn ok(args: &[&str]) -> String {
    let o = tessera(args);
    assert!(
        o.status.success(),
        "tessera {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn fails(args: &[&str]) -> String {
    let o = tessera(args);
    assert!(!o.status.success(), "tessera {args:?} should fail");
    String::from_utf8(o.stderr).unwrap()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample")
}

/// `tessera ingest --lake LAKE --tree TREE --json`, parsed.
/// `ingest --tree`, received at one fixed time (after every sample fix) so two lakes ingested
/// apart in time hold the same bytes.
fn ingest_tree(lake: &str, tree: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&[
        "ingest",
        "--lake",
        lake,
        "--tree",
        tree.to_str().unwrap(),
        "--received-at",
        "2026-11-29T00:00:00Z",
        "--json",
    ]))
    .unwrap()
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn demo_prints_a_summary_whose_amounts_sum_to_the_pool() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let text = ok(&["demo", "--lake", lake.to_str().unwrap()]);
    assert!(text.contains("Σ amounts = pool ✓"), "{text}");
    assert!(text.contains("byte-identical ✓"), "{text}");
    assert!(text.contains("teleport"), "{text}");
    // Running it again replaces the demo lake and gives the same epoch bytes.
    let before = files_under(&lake.join("epochs"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["demo", "--lake", lake.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(before, files_under(&lake.join("epochs")));
    let epochs = json["epochs"].as_array().unwrap();
    assert!(epochs.len() >= 2);
    for e in epochs {
        assert_eq!(e["allocated"], e["pool"]);
        let sum: u128 = e["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount"].as_str().unwrap().parse::<u128>().unwrap())
            .sum();
        // The top recipients are all of them (8 at most); amounts are totals: pool + bounties.
        let bounties: u128 = e["bounties"].as_array().map_or(0, |b| {
            b.iter()
                .map(|x| x["allocated"].as_str().unwrap().parse::<u128>().unwrap())
                .sum()
        });
        assert_eq!(sum, e["pool"].as_str().unwrap().parse::<u128>().unwrap() + bounties);
    }
    assert_eq!(json["replay_identical"], true);
}

#[test]
fn demo_refuses_to_replace_a_directory_that_is_not_a_demo_lake() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("precious.txt"), b"keep me").unwrap();
    let err = fails(&["demo", "--lake", d.path().to_str().unwrap()]);
    assert!(err.contains("not a demo lake"), "{err}");
    assert!(d.path().join("precious.txt").exists());
}

#[test]
fn simulate_reproduces_the_shipped_sample_byte_for_byte() {
    let d = tempfile::tempdir().unwrap();
    ok(&["simulate", "--out", d.path().to_str().unwrap()]);
    let ours = files_under(d.path());
    let shipped = files_under(&sample());
    assert_eq!(
        ours.iter().map(|f| &f.0).collect::<Vec<_>>(),
        shipped.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (a, b) in ours.iter().zip(&shipped) {
        assert!(a.1 == b.1, "{} differs from data/sample", a.0);
    }
}

#[test]
fn ingest_tree_and_epoch_run_give_the_demo_bytes() {
    let d = tempfile::tempdir().unwrap();
    let demo = d.path().join("demo");
    ok(&["demo", "--lake", demo.to_str().unwrap()]);
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    let j = ingest_tree(l, &sample());
    assert_eq!(j["new"], 40);
    // Ingesting the same tree again only finds duplicates.
    let j2 = ingest_tree(l, &sample());
    assert_eq!((j2["new"].as_u64(), j2["duplicates"].as_u64()), (Some(0), Some(40)));
    let reg = sample().join("registry.csv");
    for e in ["2026-W46", "2026-W47"] {
        let s: serde_json::Value = serde_json::from_str(&ok(&[
            "epoch",
            "run",
            "--lake",
            l,
            "--epoch",
            e,
            "--pool",
            "1_000_000_000_000",
            "--registry",
            reg.to_str().unwrap(),
            "--policy",
            sample().join("places.toml").to_str().unwrap(),
            "--json",
        ]))
        .unwrap();
        assert_eq!(s["allocated"], "1000000000000");
        assert_eq!(
            files_under(&demo.join("epochs").join(e)),
            files_under(&lake.join("epochs").join(e)),
            "{e}"
        );
    }
}

#[test]
fn single_device_ingest_and_a_policy_file() {
    let d = tempfile::tempdir().unwrap();
    let l = d.path().join("lake");
    let l = l.to_str().unwrap();
    let car = sample().join("car-001");
    let files: Vec<String> = std::fs::read_dir(&car)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().to_string())
        .collect();
    let mut args = vec!["ingest", "--lake", l, "--device", "car-001"];
    args.extend(files.iter().map(String::as_str));
    let out = ok(&args);
    assert!(out.contains("4 new"), "{out}");
    std::fs::copy(sample().join("registry.csv"), Path::new(l).join("registry.csv")).unwrap();
    let policy = d.path().join("strict.toml");
    std::fs::write(&policy, "[quality]\nmax_hdop = 1.0\n").unwrap();
    let s: serde_json::Value = serde_json::from_str(&ok(&[
        "epoch",
        "run",
        "--lake",
        l,
        "--epoch",
        "2026-W46",
        "--pool",
        "100",
        "--policy",
        policy.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert!(s["rejected"]["hdop_too_high"].as_u64().unwrap() > 100, "{s}");
    let stored = std::fs::read_to_string(Path::new(l).join("epochs/2026-W46/policy.toml")).unwrap();
    assert_eq!(stored, "[quality]\nmax_hdop = 1.0\n");
}

#[test]
fn bad_arguments_fail_with_a_message_naming_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let l = d.path().join("lake");
    let l = l.to_str().unwrap();
    let trip = sample().join("car-001/2026-W47-trip1.nmea");
    ok(&["ingest", "--lake", l, "--device", "car-001", trip.to_str().unwrap()]);
    assert!(
        fails(&["epoch", "run", "--lake", l, "--epoch", "2026-47", "--pool", "1"])
            .contains("invalid epoch \"2026-47\"")
    );
    assert!(fails(&["epoch", "run", "--lake", l, "--epoch", "2026-W47", "--pool", "-5"]).contains("--pool"));
    assert!(fails(&[
        "epoch",
        "run",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--pool",
        "100000000000000000000000000000000000000"
    ])
    .contains("10^38"));
    assert!(fails(&["epoch", "run", "--lake", l, "--epoch", "2026-W47", "--pool", "1"]).contains("registry.csv"));
    let bad_policy = d.path().join("p.toml");
    std::fs::write(&bad_policy, "[novelty]\nrefresh_epoch = 2\n").unwrap();
    let reg = sample().join("registry.csv");
    let err = fails(&[
        "epoch",
        "run",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--pool",
        "1",
        "--registry",
        reg.to_str().unwrap(),
        "--policy",
        bad_policy.to_str().unwrap(),
    ]);
    assert!(err.contains("refresh_epoch") && err.contains("p.toml"), "{err}");
    let bad_reg = d.path().join("r.csv");
    std::fs::write(&bad_reg, "device_id,wallet\ncar-1,0x12\n").unwrap();
    let err = fails(&[
        "epoch",
        "run",
        "--lake",
        l,
        "--epoch",
        "2026-W47",
        "--pool",
        "1",
        "--registry",
        bad_reg.to_str().unwrap(),
    ]);
    assert!(err.contains("r.csv line 2"), "{err}");
    let err = fails(&["ingest", "--lake", l, "--device", "car-1", "/nonexistent/file.nmea"]);
    assert!(err.contains("/nonexistent/file.nmea"), "{err}");
    let err = fails(&["ingest", "--lake", l, "--device", "bad/id", reg.to_str().unwrap()]);
    assert!(err.contains("bad/id"), "{err}");
}

/// `tessera ingest --lake LAKE --tree TREE --json` (stdout piped), parked at the fail point
/// between its group commit's data files and metadata for `sleep_ms`: returned once `files`
/// fixes files have their final names.
#[cfg(feature = "failpoints")]
fn ingest_parked_in_group_commit(lake: &Path, tree: &Path, sleep_ms: u64, files: usize) -> std::process::Child {
    use std::time::{Duration, Instant};
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "ingest",
            "--lake",
            lake.to_str().unwrap(),
            "--tree",
            tree.to_str().unwrap(),
            "--json",
        ])
        .env("FAILPOINTS", format!("ingest-before-meta=sleep({sleep_ms})"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let named = |dir: &Path| {
        std::fs::read_dir(dir).map_or(0, |r| {
            r.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with(".tmp-"))
                .count()
        })
    };
    while named(&lake.join("fixes")) < files {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "ingest never reached the fail point"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// `tessera ingest --remove-leftovers 0` run while another ingest is inside its group commit —
/// its data files renamed in, its metadata not yet (parked at the fail point for 5 s): the sweep
/// waits for that commit (the lake's lock) and then finds nothing to remove; every source of
/// both ingests keeps its files. Without the lock the sweep took every file of the parked
/// commit — its data files, already renamed in, and its metadata's temp files — as leftovers.
#[cfg(feature = "failpoints")]
#[test]
fn remove_leftovers_waits_for_a_commit_in_flight_and_takes_none_of_its_files() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    // Two loggers' trips (8 files), committed as one group.
    let tree = d.path().join("tree");
    for car in ["car-001", "car-010"] {
        std::fs::create_dir_all(tree.join(car)).unwrap();
        for e in std::fs::read_dir(sample().join(car)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, tree.join(car).join(p.file_name().unwrap())).unwrap();
        }
    }
    let parked = ingest_parked_in_group_commit(&lake, &tree, 5000, 8);
    // Parked: 8 data files without metadata. Another process sweeps, then ingests a file.
    let metadata = |lake: &Path| {
        std::fs::read_dir(lake.join("sources"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    };
    assert_eq!(metadata(&lake), 0, "the sweep must start while the commit is parked");
    let other = sample().join("car-007");
    let one = std::fs::read_dir(&other).unwrap().next().unwrap().unwrap().path();
    let swept: serde_json::Value = serde_json::from_str(&ok(&[
        "ingest",
        "--lake",
        l,
        "--device",
        "car-007",
        one.to_str().unwrap(),
        "--remove-leftovers",
        "0",
        "--json",
    ]))
    .unwrap();
    assert_eq!(swept["leftovers_removed"], serde_json::json!([]), "{swept}");
    let out = parked.wait_with_output().unwrap();
    assert!(out.status.success());
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["new"], 8, "{j}");
    let lake = tessera::lake::Lake::open(&lake).unwrap();
    let sources = lake.sources().unwrap();
    assert_eq!(sources.len(), 9);
    for m in &sources {
        let (fixes, _) = lake
            .read_fixes(&m.hash)
            .unwrap_or_else(|e| panic!("{} ({}) is stored without its fixes: {e}", m.name, m.hash));
        assert_eq!(fixes.len() as u64, m.fixes, "{}", m.name);
    }
}

/// `tessera ingest --tree` commits all files together: killed after the data files are renamed
/// in but before any metadata, the lake has no source; the rerun ingests every file as new and
/// the lake's files equal an uninterrupted ingest's, byte for byte.
#[cfg(feature = "failpoints")]
#[test]
fn ingest_killed_inside_the_group_commit_leaves_no_source_and_the_rerun_completes_it() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    // Parked at the fail point: every fixes file of the group commit is renamed in (no temp
    // name left) — the 36 loggers' files; the camera's 4 videos are ingested one by one after
    // it, from disk, each with its own commit.
    let mut child = ingest_parked_in_group_commit(&lake, &sample(), 60_000, 36);
    std::thread::sleep(std::time::Duration::from_millis(100));
    child.kill().unwrap();
    child.wait().unwrap();
    let sources = tessera::lake::Lake::open(&lake).unwrap().sources().unwrap();
    assert!(sources.is_empty(), "no metadata was committed, so no source counts");
    let j = ingest_tree(l, &sample());
    assert_eq!(j["new"], 40, "{j}");
    let clean = d.path().join("clean");
    ingest_tree(clean.to_str().unwrap(), &sample());
    for sub in ["sources", "fixes", "rejections", "imu"] {
        let visible = |root: &Path| -> Vec<(String, Vec<u8>)> {
            files_under(&root.join(sub))
                .into_iter()
                .filter(|(n, _)| !n.starts_with(".tmp-"))
                .collect()
        };
        assert_eq!(visible(&lake), visible(&clean), "{sub}");
    }
}

/// `tessera ingest --remove-leftovers SECONDS` removes what killed writers left — temp files,
/// data files without their source's metadata — once unchanged that long (by modification and
/// status-change time), lists them, and touches nothing else: not committed sources, not files
/// of other names, not a file whose old modification time was restored (as `rsync -a` does).
#[test]
fn ingest_remove_leftovers_removes_only_what_killed_writers_left_and_lists_it() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    let j = ingest_tree(l, &sample());
    assert_eq!(j["new"], 40);
    assert_eq!(j["leftovers_removed"], serde_json::json!([]));
    let plant = |rel: &str| {
        let p = lake.join(rel);
        std::fs::write(&p, b"partial").unwrap();
        p
    };
    let mut leftovers = [
        plant("sources/.tmp-staged"),
        plant("fixes/.tmp-parked"),
        plant(&format!("fixes/{}.parquet", "ab".repeat(32))),
        plant(&format!("sources/{}.nmea", "ab".repeat(32))),
        plant(&format!("rejections/{}.parquet", "ef".repeat(32))),
    ];
    leftovers.sort();
    std::fs::create_dir(lake.join("fixes/backup")).unwrap();
    let others = [plant("fixes/README.txt"), plant("fixes/backup/old.parquet")];
    // A data file with its modification time restored two hours back (its status-change time
    // is now). (A temp file's modification time alone counts when the lake is opened.)
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(lake.join(format!("fixes/{}.parquet", "ab".repeat(32))))
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let committed: Vec<(String, Vec<u8>)> = files_under(&lake)
        .into_iter()
        .filter(|(n, _)| !leftovers.iter().chain(&others).any(|p| p.ends_with(n)))
        .collect();
    let ingest_with = |extra: &[&str]| -> serde_json::Value {
        let tree = sample();
        let mut args = vec!["ingest", "--lake", l, "--tree", tree.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    // Not asked, or asked for an hour: everything was written just now, so nothing goes.
    for extra in [&[][..], &["--remove-leftovers", "3600"][..]] {
        let j = ingest_with(extra);
        assert_eq!(
            (j["duplicates"].as_u64(), &j["leftovers_removed"]),
            (Some(40), &serde_json::json!([])),
            "{extra:?}"
        );
        assert!(leftovers.iter().chain(&others).all(|p| p.exists()), "{extra:?}");
    }
    let j = ingest_with(&["--remove-leftovers", "0"]);
    let listed: Vec<String> = leftovers.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(j["leftovers_removed"], serde_json::json!(listed), "{j}");
    assert!(leftovers.iter().all(|p| !p.exists()));
    assert!(
        others.iter().all(|p| p.exists()),
        "files of other names are not the lake's to remove"
    );
    let after: Vec<(String, Vec<u8>)> = files_under(&lake)
        .into_iter()
        .filter(|(n, _)| !others.iter().any(|p| p.ends_with(n)))
        .collect();
    assert_eq!(after, committed, "every committed file is kept, byte for byte");
    assert_eq!(tessera::lake::Lake::open(&lake).unwrap().sources().unwrap().len(), 40);
    // Without --json the files removed are listed on stderr.
    let orphan = plant(&format!("imu/{}.parquet", "cd".repeat(32)));
    let o = tessera(&[
        "ingest",
        "--lake",
        l,
        "--tree",
        sample().to_str().unwrap(),
        "--remove-leftovers",
        "0",
    ]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("removed 1 file(s) killed writers left in"), "{err}");
    assert!(err.contains(&orphan.display().to_string()), "{err}");
}

#[test]
fn simulate_nmea_at_scale_ingests_back_with_every_fix_and_no_rejection() {
    let d = tempfile::tempdir().unwrap();
    let tree = d.path().join("tree");
    let t = tree.to_str().unwrap();
    let args = [
        "simulate", "--fixes", "120000", "--format", "nmea", "--start", "2026-W47", "--out", t,
    ];
    ok(&args);
    let first = files_under(&tree);
    assert_eq!(
        first.iter().filter(|(n, _)| n.ends_with(".nmea")).count(),
        3,
        "three drivers"
    );
    // Deterministic: a second run writes the same bytes.
    std::fs::remove_dir_all(&tree).unwrap();
    ok(&args);
    assert!(
        first == files_under(&tree),
        "simulate --format nmea is not deterministic"
    );
    let lake = d.path().join("lake");
    let j = ingest_tree(lake.to_str().unwrap(), &tree);
    assert_eq!(j["new"], 3, "{j}");
    assert_eq!(j["fixes"], 120_000, "{j}");
    assert_eq!(j["rejected"].as_object().map(|m| m.len()), Some(0), "{j}");
}

#[test]
fn ingest_received_at_is_recorded_and_fixes_after_it_are_rejected() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let file = sample().join("car-001/2026-W46-trip1.nmea");
    let out: serde_json::Value = serde_json::from_str(&ok(&[
        "ingest",
        "--lake",
        lake.to_str().unwrap(),
        "--device",
        "car-001",
        file.to_str().unwrap(),
        "--received-at",
        "2026-11-01T00:00:00+01:00",
        "--json",
    ]))
    .unwrap();
    let text = out.to_string();
    assert!(text.contains("after_receipt"), "{text}");
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::fs::read_dir(lake.join("sources"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "json"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(meta["received_at"], "2026-10-31T23:00:00.000Z");
    let e = fails(&[
        "ingest",
        "--lake",
        lake.to_str().unwrap(),
        "--device",
        "car-001",
        file.to_str().unwrap(),
        "--received-at",
        "yesterday",
    ]);
    assert!(e.contains("RFC 3339"), "{e}");
}

#[test]
fn a_parquet_file_the_reader_panics_on_is_one_clear_error_without_a_panic_report() {
    // A fuzzed file on which parquet 59's reader panics: the user sees the file, `bad_file` and
    // the reader's message — not "thread 'main' panicked" and a backtrace.
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tessera/tests/fuzz_regressions/parquet_source-558d357a.parquet");
    let (l, f) = (lake.to_str().unwrap(), file.to_str().unwrap());
    let e = fails(&["ingest", "--lake", l, "--device", "car-9", f]);
    assert!(!e.contains("panicked") && !e.contains("backtrace"), "{e}");
    assert!(
        e.contains("parquet_source-558d357a.parquet") && e.contains("bad_file") && e.contains("MAX_VLQ_BYTE_LEN"),
        "{e}"
    );
}

#[test]
fn trust_review_and_late_data_after_publication() {
    let d = tempfile::tempdir().unwrap();
    let lake = d.path().join("lake");
    let l = lake.to_str().unwrap();
    ingest_tree(l, &sample());
    let reg = sample().join("registry.csv");
    let reg = reg.to_str().unwrap();
    ok(&[
        "epoch",
        "run",
        "--lake",
        l,
        "--epoch",
        "2026-W46",
        "--pool",
        "1000000",
        "--registry",
        reg,
    ]);
    // The review names the sample's dishonest drivers with the evidence and their files.
    let r: serde_json::Value =
        serde_json::from_str(&ok(&["epoch", "review", "--lake", l, "--epoch", "2026-W46", "--json"])).unwrap();
    let devices: Vec<&str> = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap())
        .collect();
    assert!(
        devices.contains(&"car-008") && devices.contains(&"car-009"),
        "{devices:?}"
    );
    let text = ok(&["epoch", "review", "--lake", l, "--epoch", "2026-W46"]);
    assert!(
        text.contains("impossible_bridge") && text.contains("trust.timeline.max_bridge_kmh"),
        "{text}"
    );
    // explain answers a device id with its wallet, and says why it got less.
    let x = ok(&["explain", "--lake", l, "--epoch", "2026-W46", "car-008"]);
    assert!(x.contains("trust evidence"), "{x}");
    // Late data: a trace with fixes in W46 received after W46 was published is not paid for
    // W46 and does not change what verify recomputes; verify lists it.
    let late = d.path().join("late.nmea");
    std::fs::copy(sample().join("car-001/2026-W46-trip1.nmea"), &late).unwrap();
    let mut bytes = std::fs::read(&late).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&late, bytes).unwrap();
    ok(&[
        "ingest",
        "--lake",
        l,
        "--device",
        "car-003",
        late.to_str().unwrap(),
        "--received-at",
        "2026-11-30T00:00:00Z",
    ]);
    let v = ok(&["epoch", "verify", "--lake", l, "--epoch", "2026-W46"]);
    assert!(
        v.contains("match byte for byte") && v.contains("late data: 1 source"),
        "{v}"
    );
}

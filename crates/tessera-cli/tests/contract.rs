//! The command line's contract with its users, one test per promise (issue #12): files written
//! where asked, money never a JSON number, published epochs immutable, typos never create lakes,
//! files that are not traces refused, the umask honoured, closed pipes quiet, errors said once.

mod common;
use common::{demo_lake, fails, ok, ok_in, run_in, sample};
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `tessera epoch run` of the demo's 2026-W47 in lake `l` with `pool`, then `more` arguments.
fn w47<'a>(l: &'a str, pool: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let base = ["epoch", "run", "--lake", l, "--epoch", "2026-W47", "--pool", pool];
    [&base[..], more].concat()
}

#[test]
fn every_command_that_writes_a_file_takes_a_bare_name_a_relative_and_an_absolute_path() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let l = s(&lake);
    std::fs::create_dir(d.path().join("out")).unwrap();
    let abs = s(&d.path().join("abs")).to_string();
    for prefix in ["", "out/", &format!("{abs}/")] {
        let (cells, map, csv) = (
            format!("{prefix}cells.parquet"),
            format!("{prefix}map.png"),
            format!("{prefix}q.csv"),
        );
        let cwd = Some(d.path());
        ok_in(
            cwd,
            &[
                "export", "cells", "--lake", l, "--epoch", "2026-W47", "--output", &cells,
            ],
        );
        ok_in(cwd, &["render", "--lake", l, "--epoch", "2026-W47", "--output", &map]);
        ok_in(
            cwd,
            &[
                "sql",
                "--lake",
                l,
                "SELECT count(*) AS n FROM rewards",
                "--format",
                "csv",
                "--output",
                &csv,
            ],
        );
        for f in [&cells, &map, &csv] {
            let p = d.path().join(f);
            assert!(p.is_file() && std::fs::metadata(&p).unwrap().len() > 0, "{f}");
        }
    }
}

#[test]
fn money_is_never_a_json_number_in_sql_or_json_summaries() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let l = s(&lake);
    let rows: serde_json::Value = serde_json::from_str(&ok(&[
        "sql",
        "--lake",
        l,
        "SELECT recipient, amount, points FROM rewards WHERE epoch = '2026-W47' AND kind = 'base'",
        "--format",
        "json",
    ]))
    .unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    let mut sum = 0u128;
    for r in rows {
        let amount = r["amount"].as_str().expect("amount is a string");
        assert!(r["points"].as_str().expect("points is a string").contains('.'));
        sum += amount.parse::<u128>().unwrap();
    }
    assert_eq!(sum, 1_000_000_000_000);
    // The global --json is the same as --format json.
    let again: serde_json::Value =
        serde_json::from_str(&ok(&["--json", "sql", "--lake", l, "SELECT pool FROM manifests"])).unwrap();
    assert!(again[0]["pool"].is_string(), "{again}");
    let summary: serde_json::Value = serde_json::from_str(&ok(&w47(
        l,
        "1000000000000",
        &["--policy", s(&lake.join("places/places.toml")), "--json"],
    )))
    .unwrap();
    for k in ["pool", "allocated", "points_total"] {
        assert!(summary[k].is_string(), "{k}: {summary}");
    }
}

#[test]
fn a_published_epoch_is_immutable_unless_replace() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let l = s(&lake);
    let manifest = lake.join("epochs/2026-W47/manifest.json");
    let before = std::fs::read(&manifest).unwrap();
    // The demo's epochs ran with its places policy (written into the lake by the demo).
    let policy = lake.join("places/places.toml");
    let same = ok(&w47(l, "1000000000000", &["--policy", s(&policy)]));
    assert!(same.contains("nothing written"), "{same}");
    assert_eq!(std::fs::read(&manifest).unwrap(), before);
    let err = fails(&w47(l, "5", &["--policy", s(&policy)]));
    assert!(
        err.contains("immutable") && err.contains("pool: 1000000000000 → 5"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&manifest).unwrap(),
        before,
        "a refused run changed the epoch"
    );
    let mut policy = String::from_utf8(std::fs::read(lake.join("epochs/2026-W47/policy.toml")).unwrap()).unwrap();
    policy = policy.replace("refresh_epochs = 4", "refresh_epochs = 5");
    std::fs::write(d.path().join("p.toml"), policy).unwrap();
    let p = s(&d.path().join("p.toml")).to_string();
    let err = fails(&w47(l, "1000000000000", &["--policy", &p]));
    assert!(err.contains("policy"), "{err}");
    ok(&w47(l, "5", &["--replace"]));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(m["pool"], "5");
    assert!(ok(&["epoch", "verify", "--lake", l, "--epoch", "2026-W47"]).contains("match byte for byte"));
}

#[test]
fn a_rerun_without_policy_keeps_the_published_policy_so_an_upgrade_adding_policy_keys_is_a_no_op() {
    // An epoch published by an older build under its default policy: its policy.toml, the
    // default written out, lacks a key this build added (with its default). Re-run without
    // --policy, it is recomputed under its own policy.toml: nothing written, not refused as
    // "a different policy.toml".
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let l = s(&lake);
    let default = ok(&["policy"]);
    let older = default.replace("reversed = true\n", "");
    assert_ne!(older, default, "the key this build added is in its default policy");
    let old = d.path().join("older.toml");
    std::fs::write(&old, &older).unwrap();
    let base = w47(l, "1000000000000", &[]);
    ok(&[&base[..], &["--policy", s(&old), "--replace"]].concat());
    let manifest = std::fs::read(lake.join("epochs/2026-W47/manifest.json")).unwrap();
    let again = ok(&base);
    assert!(again.contains("nothing written"), "{again}");
    let read = |f: &str| std::fs::read(lake.join("epochs/2026-W47").join(f)).unwrap();
    assert_eq!(read("manifest.json"), manifest);
    assert_eq!(read("policy.toml"), older.as_bytes());
    // this build's default policy is another policy: asked for explicitly, it is refused
    let new = d.path().join("default.toml");
    std::fs::write(&new, &default).unwrap();
    let err = fails(&[&base[..], &["--policy", s(&new)]].concat());
    assert!(err.contains("a different policy.toml"), "{err}");
}

#[test]
fn a_rerun_without_policy_of_an_epoch_whose_policy_toml_is_corrupt_names_the_file_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let l = s(&lake);
    let run = w47(l, "1000000000000", &[]);
    ok(&run);
    let dir = lake.join("epochs/2026-W47");
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    std::fs::write(dir.join("policy.toml"), "[quality\n").unwrap();
    let err = fails(&run);
    assert!(err.contains("policy.toml") && err.contains("--policy"), "{err}");
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), manifest);
}

#[test]
fn an_epoch_whose_predecessor_has_sources_but_was_never_run_is_refused_unless_no_prior() {
    let d = tempfile::tempdir().unwrap();
    let l = s(&d.path().join("lake")).to_string();
    ok(&["ingest", "--lake", &l, "--tree", s(&sample())]);
    let reg = s(&sample().join("registry.csv")).to_string();
    let run = [
        "epoch",
        "run",
        "--lake",
        &l,
        "--epoch",
        "2026-W47",
        "--pool",
        "1000",
        "--registry",
        &reg,
    ];
    let err = fails(&run);
    assert!(err.contains("2026-W46") && err.contains("--no-prior"), "{err}");
    assert!(!d.path().join("lake/epochs/2026-W47").exists());
    let mut with = run.to_vec();
    with.push("--no-prior");
    let out = ok(&with);
    assert!(out.contains("prior state: none"), "{out}");
}

#[test]
fn a_lake_that_does_not_exist_is_an_error_and_is_not_created() {
    let d = tempfile::tempdir().unwrap();
    let typo = d.path().join("typo");
    let t = s(&typo);
    let out = s(&d.path().join("o")).to_string();
    for args in [
        vec![
            "epoch",
            "run",
            "--lake",
            t,
            "--epoch",
            "2026-W47",
            "--pool",
            "1",
            "--registry",
            "r.csv",
        ],
        vec!["epoch", "verify", "--lake", t, "--epoch", "2026-W47"],
        vec![
            "epoch", "diff", "--lake", t, "--epoch", "2026-W47", "--policy", "p.toml",
        ],
        vec!["proof", "--lake", t, "--epoch", "2026-W47", "--all"],
        vec!["explain", "--lake", t, "--epoch", "2026-W47", "0xdead"],
        vec!["export", "cells", "--lake", t, "--epoch", "2026-W47", "--output", &out],
        vec!["render", "--lake", t, "--epoch", "2026-W47", "--output", &out],
        vec!["sql", "--lake", t, "SELECT 1"],
        vec!["tables", "--lake", t],
        vec!["serve", "--lake", t, "--registry", "r.csv"],
    ] {
        let err = fails(&args);
        assert!(err.contains("is not a tessera lake"), "{args:?}: {err}");
        assert!(!typo.exists(), "{args:?} created the lake");
    }
}

#[test]
fn ingest_refuses_files_that_are_not_traces_with_a_per_file_json_result() {
    let d = tempfile::tempdir().unwrap();
    let l = s(&d.path().join("lake")).to_string();
    let video = d.path().join("clip.mp4");
    let mut mp4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41".to_vec();
    mp4.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(&video, mp4).unwrap();
    let note = d.path().join("note.txt");
    std::fs::write(&note, "drove to the airport\nfuel 40 l\n").unwrap();
    let good = sample().join("car-001/2026-W46-trip1.nmea");
    let o = run_in(
        None,
        &[
            "ingest",
            "--lake",
            &l,
            "--device",
            "cam-1",
            s(&video),
            s(&note),
            s(&good),
            "--json",
        ],
    );
    assert!(!o.status.success());
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = j["files"].as_array().unwrap();
    let status: Vec<&str> = files.iter().map(|f| f["status"].as_str().unwrap()).collect();
    assert_eq!(status, ["failed", "failed", "new"]);
    assert!(
        files[0]["error"].as_str().unwrap().contains("clip.mp4: not a trace"),
        "{j}"
    );
    assert!(files[1]["error"].as_str().unwrap().contains("2 lines"), "{j}");
    assert_eq!(j["new"], 1);
    let text = run_in(None, &["ingest", "--lake", &l, "--device", "cam-1", s(&note)]);
    assert!(!text.status.success());
    assert!(String::from_utf8_lossy(&text.stderr).contains("note.txt: not a trace"));
}

#[cfg(unix)]
#[test]
fn output_files_get_the_users_umask_and_secret_keys_stay_private() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let sh = |args: &str| {
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("umask 027 && exec \"{}\" {args}", common::bin()))
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args}: {}", String::from_utf8_lossy(&o.stderr));
    };
    sh("demo --lake lake");
    sh("export cells --lake lake --epoch 2026-W47 --output cells.parquet");
    sh("simulate --out fleet --drivers 4 --epochs 1");
    sh("keygen --out car.key");
    let mode = |p: &str| std::fs::metadata(d.path().join(p)).unwrap().permissions().mode() & 0o777;
    for f in std::fs::read_dir(d.path().join("lake/epochs/2026-W47")).unwrap() {
        let name = format!("lake/epochs/2026-W47/{}", f.unwrap().file_name().to_string_lossy());
        assert_eq!(mode(&name), 0o640, "{name}");
    }
    for f in ["cells.parquet", "fleet/registry.csv", "lake/registry.csv"] {
        assert_eq!(mode(f), 0o640, "{f}");
    }
    assert_eq!(mode("car.key"), 0o600);
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_quietly_with_status_0_or_sigpipe() {
    use std::os::unix::process::ExitStatusExt;
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    for args in [vec!["sql", "--lake", s(&lake), "SELECT * FROM fixes"], vec!["policy"]] {
        let mut c = std::process::Command::new(common::bin())
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(c.stdout.take()); // the reader goes away, like `| head` after its lines
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(
            o.status.success() || o.status.signal() == Some(13),
            "{args:?}: {:?} {err}",
            o.status
        );
    }
}

#[test]
fn errors_are_printed_once() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let err = fails(&["sql", "--lake", s(&lake), "SELECT * FROM no_such_table"]);
    assert_eq!(
        err.matches("no_such_table").count(),
        2,
        "the query and the cause, once each: {err}"
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error")).count(), 1, "{err}");
}

#[test]
fn explain_names_source_files_and_its_json_has_structured_rows() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let wallet = "0x73b691f6d5ec2a1206f164f7b8104d301e1147b7"; // car-001 and car-002
    let text = ok(&["explain", "--lake", s(&lake), "--epoch", "2026-W46", wallet]);
    assert!(text.contains("2026-W46-trip1.nmea"), "{text}");
    let j: serde_json::Value = serde_json::from_str(&ok(&[
        "explain",
        "--lake",
        s(&lake),
        "--epoch",
        "2026-W46",
        wallet,
        "--json",
    ]))
    .unwrap();
    let v = &j["top_visits"][0];
    assert!(
        v["rank"].is_u64() && v["points"].is_string() && v["cell"].is_string(),
        "{v}"
    );
    let dev = &j["devices"][0];
    assert!(dev["sources"][0]["name"].as_str().unwrap().ends_with(".nmea"), "{dev}");
}

#[test]
fn proof_of_a_device_says_it_wants_a_wallet_and_which_wallet_the_device_pays() {
    let d = tempfile::tempdir().unwrap();
    let lake = demo_lake(d.path());
    let err = fails(&["proof", "--lake", s(&lake), "--epoch", "2026-W46", "car-001"]);
    assert!(
        err.contains("is a device, not a wallet") && err.contains("0x73b691f6d5ec2a1206f164f7b8104d301e1147b7"),
        "{err}"
    );
}

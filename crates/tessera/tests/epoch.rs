//! End-to-end epoch properties on a simulated fleet: money adds up, every fix is accounted for,
//! dishonest drivers are caught, state carries over, and outputs are byte-identical across thread
//! counts, ingest order and repeated runs.

use std::collections::BTreeMap;
use tessera::epoch::Epoch;
use tessera::lake::Lake;
use tessera::pipeline::{self, no_progress, EpochInputs};
use tessera::registry::Registry;
use tessera::simulate::{simulate, Fleet, SimConfig};

fn fleet() -> Fleet {
    simulate(&SimConfig {
        drivers: 7,
        epochs: 2,
        trips: 2,
        minutes: 4,
        ..SimConfig::default()
    })
}

fn lake_with(fleet: &Fleet, reverse: bool) -> (tempfile::TempDir, Lake) {
    let d = tempfile::tempdir().unwrap();
    let lake = Lake::open(d.path()).unwrap();
    let mut files: Vec<_> = fleet.files.iter().collect();
    if reverse {
        files.reverse();
    }
    for f in files {
        lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
    }
    (d, lake)
}

fn inputs(fleet: &Fleet, epoch: &str, pool: u128) -> EpochInputs {
    EpochInputs::new(
        epoch.parse().unwrap(),
        pool,
        Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap(),
    )
}

fn epoch_files(lake: &Lake, e: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = lake.epoch_dir(&e.parse::<Epoch>().unwrap());
    let mut m = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        m.insert(
            p.file_name().unwrap().to_string_lossy().to_string(),
            std::fs::read(&p).unwrap(),
        );
    }
    m
}

#[test]
fn amounts_sum_to_pool_and_every_fix_is_accounted_for() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    for pool in [1u128, 999_999_937, 10u128.pow(38) - 1] {
        let out = pipeline::compute(&lake, &inputs(&f, "2026-W46", pool), &no_progress).unwrap();
        let s = &out.summary;
        assert_eq!(s.allocated, pool.to_string());
        assert_eq!(s.fixes_in, s.fixes_accepted + s.rejected.values().sum::<u64>());
        assert_eq!(s.status, tessera::manifest::Status::Allocated);
    }
}

#[test]
fn dishonest_and_unregistered_drivers_are_caught() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    let out = pipeline::compute(&lake, &inputs(&f, "2026-W46", 1_000_000), &no_progress).unwrap();
    let s = &out.summary;
    // Teleporter: one jump per trip; speeder: a 20 s leg per trip.
    assert!(s.rejected["teleport"] >= 2 + 2 * 19, "{:?}", s.rejected);
    // The unregistered driver's fixes are all rejected with that reason.
    assert_eq!(s.rejected["unregistered_device"], 2 * 4 * 60);
    // 7 drivers: 6 registered, two of them share a wallet → 5 recipients.
    assert_eq!(s.recipients, 5);
    let shared = s.top.iter().find(|r| r.devices == 2).expect("the shared wallet");
    assert!(shared.amount.parse::<u128>().unwrap() > 0);
}

#[test]
fn second_epoch_reads_the_first_epochs_coverage_state() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    let w46 = pipeline::run(&lake, &inputs(&f, "2026-W46", 1000), &no_progress).unwrap();
    let w47 = pipeline::run(&lake, &inputs(&f, "2026-W47", 1000), &no_progress).unwrap();
    assert_eq!(w46.summary.new_cells, w46.summary.cells);
    assert_eq!(w47.summary.previous_state.as_deref(), Some("2026-W46"));
    assert!(
        w47.summary.new_cells < w47.summary.cells,
        "drivers revisit their home area"
    );
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lake.epoch_dir(&"2026-W47".parse().unwrap()).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["previous_state"]["epoch"], "2026-W46");
    assert_eq!(
        m["previous_state"]["coverage_sha256"],
        w46.sha256["coverage.parquet"].as_str()
    );
    let on_disk = std::fs::read(lake.epoch_dir(&"2026-W46".parse().unwrap()).join("coverage.parquet")).unwrap();
    assert_eq!(w46.sha256["coverage.parquet"], tessera::lake::sha256_hex(&on_disk));
}

#[test]
fn an_epoch_without_points_allocates_nothing_and_says_so() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    let out = pipeline::run(&lake, &inputs(&f, "2026-W40", 5000), &no_progress).unwrap();
    assert_eq!(out.summary.status, tessera::manifest::Status::NoPoints);
    assert_eq!(out.summary.allocated, "0");
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lake.epoch_dir(&"2026-W40".parse().unwrap()).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(m["status"], "no_points");
}

#[test]
fn manifest_hashes_every_output_file() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    pipeline::run(&lake, &inputs(&f, "2026-W46", 1000), &no_progress).unwrap();
    let files = epoch_files(&lake, "2026-W46");
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    for (name, bytes) in &files {
        if name != "manifest.json" {
            assert_eq!(m["outputs"][name], tessera::lake::sha256_hex(bytes), "{name}");
        }
    }
    assert_eq!(
        m["inputs"].as_array().unwrap().len() as u64,
        m["counts"]["sources"].as_u64().unwrap()
    );
}

#[test]
fn rerun_is_byte_identical() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    pipeline::run(&lake, &inputs(&f, "2026-W46", 1000), &no_progress).unwrap();
    let first = epoch_files(&lake, "2026-W46");
    // Ingesting everything again is a no-op, and the rerun rewrites the same bytes.
    for file in &f.files {
        assert!(lake.ingest(&file.device, &file.name, &file.bytes).unwrap().duplicate);
    }
    pipeline::run(&lake, &inputs(&f, "2026-W46", 1000), &no_progress).unwrap();
    assert_eq!(first, epoch_files(&lake, "2026-W46"));
}

#[test]
fn outputs_do_not_depend_on_thread_count_or_ingest_order() {
    let f = fleet();
    let run = |threads: usize, reverse: bool| {
        let (_d, lake) = lake_with(&f, reverse);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            pipeline::run(&lake, &inputs(&f, "2026-W46", 123_456_789), &no_progress).unwrap();
            pipeline::run(&lake, &inputs(&f, "2026-W47", 123_456_789), &no_progress).unwrap();
        });
        (epoch_files(&lake, "2026-W46"), epoch_files(&lake, "2026-W47"))
    };
    let base = run(1, false);
    assert_eq!(base, run(2, true));
    assert_eq!(base, run(4, false));
}

#[test]
fn scoring_in_pieces_of_any_size_on_any_thread_count_gives_the_same_bytes() {
    // Pieces of 1, 2 or 3 visits (an odd or even number of them, scored two at a time while
    // the ones before are absorbed), one piece for everything, and a spilled run, each on 1 or
    // 3 threads: the same bytes in both epochs (W47 reads W46's state).
    let f = fleet();
    let run = |score_rows: usize, threads: usize, max_visits: Option<usize>| {
        let (_d, lake) = lake_with(&f, false);
        let lake = lake.with_score_rows(score_rows);
        let lake = match max_visits {
            Some(n) => lake.with_max_visits(n),
            None => lake,
        };
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let visits = pool.install(|| {
            let a = pipeline::run(&lake, &inputs(&f, "2026-W46", 987_654_321), &no_progress).unwrap();
            pipeline::run(&lake, &inputs(&f, "2026-W47", 987_654_321), &no_progress).unwrap();
            a.summary.visits
        });
        (visits, epoch_files(&lake, "2026-W46"), epoch_files(&lake, "2026-W47"))
    };
    let base = run(tessera::lake::DEFAULT_SCORE_ROWS, 2, None);
    assert!(base.0 > 1000, "many pieces: {} visits", base.0);
    for (rows, threads, max_visits) in [
        (1, 1, None),
        (2, 3, None),
        (3, 3, None),
        (64, 1, None),
        (5, 3, Some(300)),
    ] {
        let got = run(rows, threads, max_visits);
        assert!(
            got == base,
            "score_rows = {rows}, threads = {threads}, max_visits = {max_visits:?}"
        );
    }
}

#[test]
fn spilling_visits_to_disk_gives_the_same_bytes_as_holding_them_in_memory() {
    // A visit budget far below the epoch's visits spills after every source, splits every
    // bucket again down to single cells, and streams the prior coverage state; none of that may
    // change a byte of either epoch (W47 reads W46's state).
    let f = fleet();
    let run = |max_visits: Option<usize>| {
        let (_d, lake) = lake_with(&f, false);
        let lake = match max_visits {
            Some(n) => lake.with_max_visits(n),
            None => lake,
        };
        let a = pipeline::run(&lake, &inputs(&f, "2026-W46", 123_456_789), &no_progress).unwrap();
        let b = pipeline::run(&lake, &inputs(&f, "2026-W47", 123_456_789), &no_progress).unwrap();
        (
            a.summary.visits,
            b.summary.visits,
            epoch_files(&lake, "2026-W46"),
            epoch_files(&lake, "2026-W47"),
        )
    };
    let base = run(None);
    assert!(
        base.0 > 1000 && base.1 > 1000,
        "enough visits to spill: {} {}",
        base.0,
        base.1
    );
    assert!(
        !base.2.keys().any(|k| k.starts_with('.')),
        "no scratch left behind: {:?}",
        base.2.keys()
    );
    for n in [1, 17, 500] {
        let spilled = run(Some(n));
        assert!(!spilled.2.keys().any(|k| k.starts_with('.')), "no scratch left behind");
        assert_eq!(spilled, base, "max_visits = {n}");
    }
}

/// An engine's run of the staged epoch, in one process: sources covered in reverse order,
/// visits and the prior state grouped by `cell >> shift`, buckets scored in a scrambled order,
/// points summed per recipient, then folded and published.
fn staged_run(lake: &Lake, inputs: EpochInputs, shift: u32, tamper: bool) -> tessera::lake::Result<()> {
    use tessera::pipeline::staged::{RecipientPoints, StagedEpoch};
    let e = inputs.epoch;
    let staging = pipeline::prepare(lake, &e, Default::default())?;
    let scratch = staging.join(".engine");
    let driver = StagedEpoch::plan(lake.clone(), inputs, &scratch)?;
    let worker = StagedEpoch::open(&scratch)?;
    let mut visits: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for i in (0..worker.sources()).rev() {
        for v in worker.cover_source(i)? {
            visits.entry(v.cell >> shift).or_default().push(v);
        }
    }
    let done = driver.fold_sources(&staging)?;
    let mut prior: BTreeMap<u64, Vec<_>> = BTreeMap::new();
    for rg in 0..worker.prior_row_groups()? {
        for p in worker.prior_rows(rg)? {
            prior.entry(p.0 >> shift).or_default().push(p);
        }
    }
    let mut buckets: Vec<u64> = visits.keys().chain(prior.keys()).copied().collect();
    buckets.sort_unstable();
    buckets.dedup();
    buckets.sort_by_key(|b| b.wrapping_mul(0x9E37_79B9_7F4A_7C15)); // any order
    let mut sums: BTreeMap<String, RecipientPoints> = BTreeMap::new();
    for b in buckets {
        let (mut v, p) = (
            visits.remove(&b).unwrap_or_default(),
            prior.remove(&b).unwrap_or_default(),
        );
        v.reverse();
        for (w, r) in worker.score_bucket(b, v, p)? {
            let s = sums.entry(w).or_default();
            s.points += r.points;
            s.cells += r.cells;
            s.devices.extend(r.devices);
            s.devices.sort_unstable();
            s.devices.dedup();
        }
    }
    if tamper && let Some(s) = sums.values_mut().next() {
        s.points += 1;
    }
    match driver.finish(done, &staging, &sums) {
        Ok(run) => pipeline::commit(lake, &e, &staging, run, Default::default()).map(|_| ()),
        Err(x) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(x)
        }
    }
}

#[test]
fn a_staged_run_in_any_bucketing_and_order_gives_the_cli_runs_bytes() {
    // The stages Spark runs (tessera.spark), driven here in one process: whatever the bucket
    // size (one cell, a parent cell, everything) and the order sources and buckets are handled
    // in, both epochs (W47 reads W46's state, trust on) are byte for byte the CLI's.
    let f = fleet();
    let (_d, cli) = lake_with(&f, false);
    for e in ["2026-W46", "2026-W47"] {
        pipeline::run(&cli, &inputs(&f, e, 987_654_321), &no_progress).unwrap();
    }
    for shift in [0, 3 * (15 - 7), 63] {
        let (_d2, lake) = lake_with(&f, true);
        for e in ["2026-W46", "2026-W47"] {
            staged_run(&lake, inputs(&f, e, 987_654_321), shift, false).unwrap();
            let (a, b) = (epoch_files(&cli, e), epoch_files(&lake, e));
            assert_eq!(
                a.keys().collect::<Vec<_>>(),
                b.keys().collect::<Vec<_>>(),
                "shift {shift} {e}"
            );
            for (name, bytes) in &a {
                assert!(bytes == &b[name], "shift {shift} {e}: {name} differs");
            }
        }
    }
}

#[test]
fn rule_a_staged_run_whose_engine_sums_disagree_publishes_nothing() {
    let f = fleet();
    let (_d, lake) = lake_with(&f, false);
    let err = staged_run(&lake, inputs(&f, "2026-W46", 1_000_000), 24, true).unwrap_err();
    assert!(err.to_string().contains("the engine's sums disagree"), "{err}");
    assert!(lake.epochs().unwrap().is_empty());
    let left: Vec<_> = std::fs::read_dir(lake.root().join("epochs")).unwrap().collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");
}

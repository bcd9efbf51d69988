//! `tessera-bench [--drivers N] [--minutes M] [--trips T] [--python PY]`: throughput of ingest
//! and of a full epoch run on a simulated fleet, with the `nmea` crate's own stateful parser
//! (`Nmea::parse` over the same lines) and, given `--python`, pynmea2 (`benches/peer/parse_nmea.py`
//! on the same files) as in-run peers for parsing. Prints a table and a JSON line.

mod peer;

use std::time::Instant;
use tessera::lake::Lake;
use tessera::pipeline::{self, EpochInputs};
use tessera::registry::Registry;
use tessera::simulate::{simulate, SimConfig};

fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut out = None;
    for _ in 0..n {
        let t = Instant::now();
        let r = f();
        best = best.min(t.elapsed().as_secs_f64());
        out = Some(r);
    }
    (best, out.expect("n > 0"))
}

fn main() {
    let cfg = SimConfig {
        drivers: arg("--drivers", 60),
        epochs: 1,
        trips: arg("--trips", 2),
        minutes: arg("--minutes", 30),
        ..SimConfig::default()
    };
    eprintln!(
        "simulating {} drivers x {} trips x {} min ...",
        cfg.drivers, cfg.trips, cfg.minutes
    );
    let fleet = simulate(&cfg);
    let nmea_files: Vec<&[u8]> = fleet
        .files
        .iter()
        .map(|f| f.bytes.as_slice())
        .filter(|b| tessera::ingest::Format::detect(b) == tessera::ingest::Format::Nmea)
        .collect();
    let nmea_bytes: usize = nmea_files.iter().map(|b| b.len()).sum();

    // 1. Parse, one core: tessera's ingest parser vs the nmea crate's stateful parser.
    let (t_ours, fixes) = best_of(3, || {
        nmea_files
            .iter()
            .map(|b| tessera::ingest::parse(b).fixes.len())
            .sum::<usize>()
    });
    // 1a. NMEA → Parquet fixes in memory, one core: parse, then encode the fixes file exactly as
    //     ingest writes it (no hashing, no disk, no fsync).
    let (t_convert, parquet_bytes) = best_of(3, || {
        nmea_files
            .iter()
            .map(|b| {
                let p = tessera::ingest::parse(b);
                let batches = tessera::tables::fixes_to_batches("car", &p.fixes);
                tessera::tables::to_source_parquet(&tessera::tables::fixes_schema(), &batches)
                    .unwrap()
                    .len()
            })
            .sum::<usize>()
    });
    let (t_peer, peer_ok) = best_of(3, || {
        let mut ok = 0usize;
        for b in &nmea_files {
            let text = std::str::from_utf8(b).unwrap();
            let mut p = nmea::Nmea::default();
            for line in text.lines() {
                let s = line.trim_end_matches('\r');
                let s = s
                    .strip_prefix("NMEA,")
                    .map(|x| &x[..x.rfind(',').unwrap_or(x.len())])
                    .unwrap_or(s);
                let s = if s.starts_with('[') {
                    &s[s.find(']').map_or(0, |i| i + 1)..]
                } else {
                    s
                };
                if p.parse(s).is_ok() {
                    ok += 1;
                }
            }
        }
        ok
    });
    let mb = nmea_bytes as f64 / 1e6;

    // 1b. pynmea2 on the same bytes, when a Python with it is given.
    let args: Vec<String> = std::env::args().collect();
    let python = args
        .iter()
        .position(|a| a == "--python")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut t_py = f64::NAN;
    if let Some(py) = &python {
        let d = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (i, b) in nmea_files.iter().enumerate() {
            let p = d.path().join(format!("{i}.nmea"));
            std::fs::write(&p, b).unwrap();
            paths.push(p);
        }
        let script = peer::script("parse_nmea.py");
        let o = std::process::Command::new(py)
            .arg(script)
            .args(&paths)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pynmea2 peer: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        t_py = v["seconds"].as_f64().unwrap();
    }

    // 2. Durable ingest of the NMEA files into a lake (hash + parse + Parquet + atomic writes,
    //    fsync'd), all cores, best of three fresh lakes each: (a) one group commit for all
    //    files (what `tessera ingest DIR` does), (b) one commit per source (what the upload server
    //    does per request). GPX files are then added to the last lake, untimed, for the epochs.
    use rayon::prelude::*;
    let nmea_uploads: Vec<tessera::lake::Upload> = fleet
        .files
        .iter()
        .filter(|f| !f.name.ends_with(".gpx"))
        .map(|f| tessera::lake::Upload::new(&f.device, &f.name, &f.bytes))
        .collect();
    let mut dirs = Vec::new();
    let (t_ingest, total_fixes) = best_of(3, || {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let n: u64 = lake
            .ingest_batch(&nmea_uploads)
            .into_iter()
            .map(|o| o.unwrap().meta.fixes)
            .sum();
        dirs.push(dir);
        n
    });
    let (t_ingest_each, _) = best_of(3, || {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        nmea_uploads
            .par_iter()
            .map(|u| lake.ingest(u.device, u.name, u.bytes).unwrap().meta.fixes)
            .sum::<u64>()
    });
    let dir = dirs.pop().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    for f in fleet.files.iter().filter(|f| f.name.ends_with(".gpx")) {
        lake.ingest(&f.device, &f.name, &f.bytes).unwrap();
    }

    // 3. Epoch run (compute + atomic write), 1 thread and all threads.
    let registry = Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
    let inputs = EpochInputs::new(cfg.start, 1_000_000_000_000, registry);
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let (t_epoch1, _) = best_of(2, || {
        one.install(|| pipeline::run(&lake, &inputs, &pipeline::no_progress).unwrap())
    });
    let (t_epoch_n, out) = best_of(2, || pipeline::run(&lake, &inputs, &pipeline::no_progress).unwrap());
    let s = out.summary;

    let threads = rayon::current_num_threads();
    println!(
        "tessera-bench: {} NMEA files, {:.1} MB, {} fixes; {} threads",
        nmea_files.len(),
        mb,
        fixes,
        threads
    );
    println!("{:<44} {:>12} {:>14}", "stage", "MB/s", "fixes/s");
    println!(
        "{:<44} {:>12.1} {:>14.0}",
        "parse NMEA, tessera (1 core)",
        mb / t_ours,
        fixes as f64 / t_ours
    );
    println!(
        "{:<44} {:>12.1} {:>14.0}",
        "NMEA -> Parquet fixes in memory (1 core)",
        mb / t_convert,
        fixes as f64 / t_convert
    );
    println!(
        "{:<44} {:>12.1} {:>14}",
        "parse NMEA, nmea::Nmea::parse peer (1 core)",
        mb / t_peer,
        "-"
    );
    println!("{:<44} {:>12.2}x", "  ratio tessera / peer", t_peer / t_ours);
    println!(
        "{:<44} {:>12.1} {:>14}",
        "parse NMEA, pynmea2 peer (1 core)",
        mb / t_py,
        "-"
    );
    println!("{:<44} {:>12.2}x", "  ratio tessera / pynmea2", t_py / t_ours);
    println!(
        "{:<44} {:>12.1} {:>14.0}",
        format!("durable ingest, group commit ({threads} thr)"),
        mb / t_ingest,
        total_fixes as f64 / t_ingest
    );
    println!(
        "{:<44} {:>12.1} {:>14.0}",
        format!("durable ingest, commit per source ({threads} thr)"),
        mb / t_ingest_each,
        total_fixes as f64 / t_ingest_each
    );
    println!(
        "{:<44} {:>12} {:>14.0}",
        "epoch run (1 thread)",
        "-",
        s.fixes_in as f64 / t_epoch1
    );
    println!(
        "{:<44} {:>12} {:>14.0}",
        format!("epoch run ({threads} threads)"),
        "-",
        s.fixes_in as f64 / t_epoch_n
    );
    println!(
        "{}",
        serde_json::json!({
            "nmea_mb": mb, "fixes": fixes, "peer_sentences_ok": peer_ok,
            "parse_mb_s": mb / t_ours, "peer_parse_mb_s": mb / t_peer, "parse_ratio": t_peer / t_ours,
            "pynmea2_mb_s": mb / t_py, "pynmea2_ratio": t_py / t_ours,
            "ingest_fixes_s": total_fixes as f64 / t_ingest, "ingest_mb_s": mb / t_ingest,
            "ingest_each_mb_s": mb / t_ingest_each,
            "convert_mb_s": mb / t_convert, "convert_parquet_bytes": parquet_bytes,
            "epoch_fixes_s_1thread": s.fixes_in as f64 / t_epoch1, "epoch_fixes_s": s.fixes_in as f64 / t_epoch_n,
            "epoch_visits": s.visits, "epoch_cells": s.cells, "threads": threads,
        })
    );
}

//! `tessera demo`: the whole pipeline on the embedded sample fleet, with its self-checks
//! (Σ amounts = pool, every epoch file recomputed byte for byte by `epoch verify`).

use crate::output::{bar, fmt_n, print_json, print_summary, reasons_line};
use anyhow::{anyhow, bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use tessera::epoch::Epoch;
use tessera::lake::{Lake, Upload};
use tessera::manifest::Status;
use tessera::pipeline::{self, EpochInputs};
use tessera::registry::Registry;

/// A fresh lake at `dir` (an earlier demo lake is replaced; anything else is refused).
fn fresh_lake(dir: &Path) -> Result<Lake> {
    let marker = dir.join(".tessera-demo");
    if dir.exists() {
        if !marker.exists() {
            bail!(
                "{} exists and is not a demo lake; pass --lake with a new directory",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir)?;
    }
    let lake = Lake::open(dir)?;
    std::fs::write(&marker, b"created by tessera demo\n")?;
    Ok(lake)
}

pub fn run(lake_dir: &Path, pool: u128, json: bool) -> Result<()> {
    let lake = fresh_lake(lake_dir)?;
    let mut registry_csv = None;
    let mut uploads = Vec::new();
    for (rel, bytes) in crate::sample::SAMPLE {
        match rel.split_once('/') {
            Some((device, name)) => uploads.push(Upload::new(device, name, bytes)),
            None if *rel == "registry.csv" => registry_csv = Some(*bytes),
            None => {}
        }
    }
    let registry_csv = registry_csv.ok_or_else(|| anyhow!("sample has no registry.csv"))?;
    // The sample's places (its street grid as roads, two districts, a bounty) and their policy.
    let places_dir = lake_dir.join("places");
    for (rel, bytes) in crate::sample::SAMPLE {
        if rel.ends_with(".geojson") || *rel == "places.toml" {
            tessera::lake::write_atomic(&places_dir.join(rel), bytes)?;
        }
    }
    let (policy_text, _, places) = super::load_policy(Some(&places_dir.join("places.toml")))?;
    tessera::lake::write_atomic(&lake.path("registry.csv"), registry_csv)?;
    let registry = Registry::parse(registry_csv, "sample/registry.csv")?;
    let pb = bar(uploads.len() as u64, "ingest", json);
    let outcomes: Vec<tessera::lake::IngestOutcome> =
        lake.ingest_batch(&uploads).into_iter().collect::<Result<_, _>>()?;
    pb.finish_and_clear();
    let fixes: u64 = outcomes.iter().map(|o| o.meta.fixes).sum();
    let lines: u64 = outcomes.iter().map(|o| o.meta.lines.total).sum();
    let rejected: u64 = outcomes.iter().map(|o| o.meta.rejected).sum();
    let imu: u64 = outcomes.iter().map(|o| o.meta.imu).sum();
    let mut by_reason = BTreeMap::new();
    for o in &outcomes {
        for (k, n) in &o.meta.rejected_by_reason {
            *by_reason.entry(k.clone()).or_insert(0u64) += n;
        }
    }
    let epochs: BTreeSet<Epoch> = outcomes
        .iter()
        .filter_map(|o| o.meta.min_time_ms.and_then(Epoch::containing))
        .collect();
    let mut summaries = Vec::new();
    let mut replay_ok = true;
    for e in &epochs {
        let inputs = EpochInputs {
            policy_text: policy_text.clone(),
            places: places.clone(),
            ..EpochInputs::new(*e, pool, registry.clone())
        };
        let out = pipeline::run(&lake, &inputs, &pipeline::no_progress)?;
        // Replay: `epoch verify` recomputes every file from the lake and compares the bytes.
        replay_ok &= tessera::audit::verify(&lake, e, None, &pipeline::no_progress)?.ok;
        summaries.push(out.summary);
    }
    if json {
        print_json(
            &serde_json::json!({"lake": lake_dir, "sources": outcomes.len(), "lines": lines, "fixes": fixes, "imu_samples": imu, "lines_rejected": rejected, "epochs": summaries, "replay_identical": replay_ok}),
        )?;
    } else {
        let devices: BTreeSet<&str> = uploads.iter().map(|u| u.device).collect();
        println!(
            "tessera demo: {} sample traces from {} devices → lake {}",
            outcomes.len(),
            devices.len(),
            lake_dir.display()
        );
        println!(
            "ingest: {} lines and camera samples → {} fixes and {} IMU samples; {} rejected: {}",
            fmt_n(lines),
            fmt_n(fixes),
            fmt_n(imu),
            fmt_n(rejected),
            reasons_line(&by_reason)
        );
        for s in &summaries {
            println!();
            print_summary(s);
        }
        println!();
        let verdict = if replay_ok {
            "byte-identical ✓"
        } else {
            "DIFFERENT ✗"
        };
        println!("replay: every epochs/*/ file recomputed from the lake is {verdict}");
    }
    let unbalanced = summaries
        .iter()
        .any(|s| s.status == Status::Allocated && s.pool != s.allocated);
    if !replay_ok || unbalanced {
        bail!("demo self-check failed");
    }
    Ok(())
}

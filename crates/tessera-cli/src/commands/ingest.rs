//! `tessera ingest`: trace files into a lake in group commits; one result per file.

use crate::cli::IngestArgs;
use crate::output::{bar, fmt_n, print_json, reasons_line};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use tessera::lake::files::{tree_jobs, FileJob, FileResult};
use tessera::lake::Lake;

/// One file's result, as `--json` prints it.
#[derive(Serialize)]
struct FileLine {
    path: String,
    device: String,
    /// `new`, `duplicate` or `failed`.
    status: &'static str,
    source: Option<String>,
    fixes: u64,
    rejected: u64,
    error: Option<String>,
}

impl From<&FileResult> for FileLine {
    fn from(r: &FileResult) -> Self {
        let (status, meta, error) = match &r.result {
            Ok(o) if o.duplicate => ("duplicate", Some(&o.meta), None),
            Ok(o) => ("new", Some(&o.meta), None),
            Err(e) => ("failed", None, Some(e.to_string())),
        };
        FileLine {
            path: r.job.path.display().to_string(),
            device: r.job.device.clone(),
            status,
            source: meta.map(|m| m.hash.clone()),
            fixes: meta.map_or(0, |m| m.fixes),
            rejected: meta.map_or(0, |m| m.rejected),
            error,
        }
    }
}

pub fn run(a: &IngestArgs, json: bool) -> Result<()> {
    let mut lake = Lake::open(&a.lake)?.with_batch_rows(a.batch_rows);
    if let Some(p) = &a.policy {
        lake = lake.with_receipt_policy(tessera::policy::Policy::load(p)?.receipt);
    }
    let mut jobs = match (&a.tree, &a.device) {
        (Some(t), _) => tree_jobs(t)?,
        (None, Some(d)) => a
            .files
            .iter()
            .map(|f| FileJob {
                device: d.clone(),
                path: f.clone(),
                received_at_ms: None,
            })
            .collect(),
        (None, None) => bail!("pass --device ID FILES... or --tree DIR"),
    };
    for j in &mut jobs {
        j.received_at_ms = a.received_at;
    }
    // What killed writers left (`Lake::open` already dropped their temp files once an hour
    // old): only when asked, the arguments checked. The sweep waits for other writers' commits
    // in flight (the lake's lock), not for their staging (`Lake::remove_leftovers`).
    let leftovers = match a.remove_leftovers {
        Some(s) => lake.remove_leftovers(std::time::Duration::from_secs(s))?,
        None => Vec::new(),
    };
    if !json && !leftovers.is_empty() {
        eprintln!(
            "removed {} file(s) killed writers left in {}:",
            leftovers.len(),
            a.lake.display()
        );
        for p in &leftovers {
            eprintln!("  {}", p.display());
        }
    }
    let pb = bar(jobs.len() as u64, "ingest", json);
    let results = lake.ingest_files(&jobs, &|done, _| pb.set_position(done));
    pb.finish_and_clear();
    let lines: Vec<FileLine> = results.iter().map(FileLine::from).collect();
    let count = |s: &str| lines.iter().filter(|l| l.status == s).count();
    let (new, duplicates, failed) = (count("new"), count("duplicate"), count("failed"));
    let fixes: u64 = lines.iter().filter(|l| l.status == "new").map(|l| l.fixes).sum();
    let imu: u64 = results
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .filter(|o| !o.duplicate)
        .map(|o| o.meta.imu)
        .sum();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    for o in results
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .filter(|o| !o.duplicate)
    {
        for (k, n) in &o.meta.rejected_by_reason {
            *rejected.entry(k.clone()).or_default() += n;
        }
    }
    let errors: Vec<&str> = lines.iter().filter_map(|l| l.error.as_deref()).collect();
    if json {
        print_json(
            &serde_json::json!({"sources": new + duplicates, "new": new, "duplicates": duplicates, "fixes": fixes, "imu_samples": imu, "rejected": rejected, "failed": errors, "files": lines,
                "leftovers_removed": leftovers.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()}),
        )?;
    } else {
        let imu = match imu {
            0 => String::new(),
            n => format!(", {} IMU samples", fmt_n(n)),
        };
        println!(
            "ingested {} sources ({new} new, {duplicates} duplicates): {} fixes{imu}; rejected lines: {}",
            new + duplicates,
            fmt_n(fixes),
            reasons_line(&rejected)
        );
        for (l, e) in lines.iter().filter_map(|l| Some((l, l.error.as_deref()?))) {
            let file = std::path::Path::new(&l.path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            match e.starts_with(&l.path) || file.is_some_and(|f| e.starts_with(&format!("{f}:"))) {
                true => eprintln!("failed: {e}"),
                false => eprintln!("failed: {}: {e}", l.path),
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} file(s) could not be ingested", lines.len());
    }
    Ok(())
}

//! The epoch run, at the I/O edge: read the lake's sources for the epoch window, clean, cover,
//! score, allocate, and write `epochs/E/` atomically. [`compute`] produces every output file in
//! memory without writing (for verification and what-if runs); [`run`] writes them.
//!
//! Memory grows with the number of visits and cells, and with the largest single source; never
//! with the total number of fixes (sources are read one at a time per worker).

use crate::cells::{cover_segment, VisitMap};
use crate::epoch::Epoch;
use crate::fix::Fix;
use crate::ingest::{Reason, Rejection};
use crate::io::{self, RejectionRow};
use crate::lake::{sha256_hex, write_atomic, Error, Lake, Result, SourceMeta};
use crate::novelty::{self, Scored, VisitRow};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::rewards::{allocate, Share};
use crate::state::{self, Coverage};
use arrow_array::builder::{
    Float32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Everything an epoch run depends on besides the lake's sources and prior state.
#[derive(Debug, Clone)]
pub struct EpochInputs {
    /// The epoch.
    pub epoch: Epoch,
    /// Pool in base units.
    pub pool: u128,
    /// Policy text exactly as stored beside the outputs (its SHA-256 goes in the manifest).
    pub policy_text: String,
    /// Device registry.
    pub registry: Registry,
}

impl EpochInputs {
    /// Inputs with the default policy.
    pub fn new(epoch: Epoch, pool: u128, registry: Registry) -> Self {
        EpochInputs {
            epoch,
            pool,
            policy_text: Policy::default().to_toml(),
            registry,
        }
    }
}

/// One recipient in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientLine {
    /// Wallet.
    pub recipient: String,
    /// Amount, base units (decimal string: may exceed 2^53).
    pub amount: String,
    /// Points (decimal, 6 places).
    pub points: String,
    /// Devices.
    pub devices: u32,
    /// Cells with points.
    pub cells: u64,
}

/// What an epoch run did, for people (`demo`) and machines (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Epoch.
    pub epoch: String,
    /// Window start, RFC 3339.
    pub window_start: String,
    /// Window end (exclusive), RFC 3339.
    pub window_end: String,
    /// Sources whose fixes overlap the window.
    pub sources: u64,
    /// Fixes inside the window.
    pub fixes_in: u64,
    /// Fixes accepted by every gate.
    pub fixes_accepted: u64,
    /// Rejected fixes by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Distinct cells covered.
    pub cells: u64,
    /// Cells never covered before this epoch.
    pub new_cells: u64,
    /// Visits scored.
    pub visits: u64,
    /// Recipients paid.
    pub recipients: u64,
    /// Pool, base units.
    pub pool: String,
    /// Allocated, base units (equals the pool unless there were no points).
    pub allocated: String,
    /// Total points.
    pub points_total: String,
    /// `allocated` or `no_points` (nothing allocated, the pool stays unspent).
    pub status: String,
    /// Epoch whose coverage state this run started from.
    pub previous_state: Option<String>,
    /// Top recipients by amount.
    pub top: Vec<RecipientLine>,
}

/// The complete outputs of an epoch, in memory.
#[derive(Debug, Clone)]
pub struct EpochOutputs {
    /// File name → bytes, as they go into `epochs/E/`.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Summary.
    pub summary: Summary,
}

/// Progress callback: (stage, done, total).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// No progress reporting.
pub fn no_progress(_: &str, _: u64, _: u64) {}

struct SourceResult {
    fixes_sha: String,
    fixes_in: u64,
    accepted: u64,
    rejections: Vec<RejectionRow>,
    visits: VisitMap,
}

fn stage_of(r: Reason) -> &'static str {
    match r {
        Reason::TimeBackwards | Reason::DuplicateTime | Reason::Teleport => "trace",
        Reason::UnregisteredDevice => "registry",
        _ => "quality",
    }
}

fn process_source(
    lake: &Lake,
    meta: &SourceMeta,
    device_idx: u32,
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
) -> Result<SourceResult> {
    let (fixes, fixes_sha) = lake.read_fixes(&meta.hash)?;
    let e = &inputs.epoch;
    let (start, end) = (e.start_ms(), e.end_ms());
    let fixes: Vec<Fix> = fixes
        .into_iter()
        .filter(|f| f.time_ms >= start && f.time_ms < end)
        .collect();
    let mut out = SourceResult {
        fixes_sha,
        fixes_in: fixes.len() as u64,
        accepted: 0,
        rejections: Vec::new(),
        visits: VisitMap::default(),
    };
    let reject = |f: &Fix, reason: Reason, detail: String| RejectionRow {
        source: meta.hash.clone(),
        device: meta.device.clone(),
        stage: stage_of(reason),
        rejection: Rejection {
            line: f.line,
            reason,
            detail,
            time_ms: Some(f.time_ms),
            lat: Some(f.lat),
            lon: Some(f.lon),
        },
    };
    if inputs.registry.wallet(&meta.device).is_none() {
        out.rejections = fixes
            .iter()
            .map(|f| {
                reject(
                    f,
                    Reason::UnregisteredDevice,
                    format!("device {} is not in the registry", meta.device),
                )
            })
            .collect();
        return Ok(out);
    }
    let verdicts = crate::quality::clean(&fixes, k);
    let mut segment: Vec<&Fix> = Vec::new();
    let mut seg_id = None;
    for (f, v) in fixes.iter().zip(&verdicts) {
        match v {
            crate::quality::Verdict::Accepted(s) => {
                if seg_id != Some(*s) {
                    cover_segment(&segment, device_idx, k.resolution, &mut out.visits);
                    segment.clear();
                    seg_id = Some(*s);
                }
                segment.push(f);
                out.accepted += 1;
            }
            crate::quality::Verdict::Rejected(r, d) => out.rejections.push(reject(f, *r, d.clone())),
        }
    }
    cover_segment(&segment, device_idx, k.resolution, &mut out.visits);
    Ok(out)
}

fn ppm_str(v: u128) -> String {
    format!("{}.{:06}", v / 1_000_000, v % 1_000_000)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The latest epoch before `epoch` with outputs in the lake, and its coverage state.
fn prior_state(lake: &Lake, epoch: &Epoch) -> Result<(Option<(Epoch, String)>, Coverage)> {
    let Some(prev) = lake.epochs()?.into_iter().rev().find(|e| e < epoch) else {
        return Ok((None, Coverage::default()));
    };
    let p = lake.epoch_dir(&prev).join("coverage.parquet");
    let bytes = std::fs::read(&p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    let sha = sha256_hex(&bytes);
    let data = |message: String| Error::Data {
        path: p.display().to_string(),
        message,
    };
    let batches = io::from_parquet(bytes.into()).map_err(|e| data(e.to_string()))?;
    let cov = state::from_batches(&batches).map_err(data)?;
    Ok((Some((prev, sha)), cov))
}

fn parquet_bytes(name: &str, schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    io::to_parquet(schema, batches).map_err(|e| Error::Data {
        path: name.to_string(),
        message: e.to_string(),
    })
}

/// Compute every output of an epoch without writing anything.
pub fn compute(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochOutputs> {
    let policy = Policy::from_toml_str(&inputs.policy_text).map_err(|e| Error::Invalid(e.to_string()))?;
    let k = policy.kernels().map_err(|e| Error::Invalid(e.to_string()))?;
    let e = inputs.epoch;
    let (start, end) = (e.start_ms(), e.end_ms());
    let selected: Vec<SourceMeta> = lake
        .sources()?
        .into_iter()
        .filter(|m| matches!((m.min_time_ms, m.max_time_ms), (Some(a), Some(b)) if a < end && b >= start))
        .collect();
    let devices: Vec<String> = selected
        .iter()
        .map(|m| m.device.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let device_idx: HashMap<&str, u32> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i as u32))
        .collect();

    let done = AtomicU64::new(0);
    let total = selected.len() as u64;
    progress("clean + cover", 0, total);
    // Sources are processed a chunk at a time (in parallel within the chunk) and folded in hash
    // order, so memory holds the visits plus one chunk of sources, never all fixes.
    let chunk = (rayon::current_num_threads() * 4).max(8);
    let mut visits = VisitMap::default();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let pq_err = |e: parquet::errors::ParquetError| Error::Data {
        path: "rejections.parquet".into(),
        message: e.to_string(),
    };
    let mut sink = io::RejectionSink::new().map_err(pq_err)?;
    let (mut fixes_in, mut accepted) = (0u64, 0u64);
    let mut inputs_json = Vec::new();
    for group in selected.chunks(chunk) {
        let results: Vec<SourceResult> = group
            .par_iter()
            .map(|m| {
                let r = process_source(lake, m, device_idx[m.device.as_str()], inputs, &k);
                progress("clean + cover", done.fetch_add(1, Ordering::Relaxed) + 1, total);
                r
            })
            .collect::<Result<Vec<_>>>()?;
        for (m, r) in group.iter().zip(results) {
            fixes_in += r.fixes_in;
            accepted += r.accepted;
            for row in &r.rejections {
                *rejected.entry(row.rejection.reason.to_string()).or_default() += 1;
            }
            sink.extend(r.rejections).map_err(pq_err)?;
            for (key, v) in r.visits {
                visits.entry(key).and_modify(|e| *e = e.merge(v)).or_insert(v);
            }
            inputs_json
                .push(json!({"source": m.hash, "device": m.device, "name": m.name, "fixes_sha256": r.fixes_sha}));
        }
    }
    let mut rows: Vec<VisitRow> = visits
        .into_iter()
        .map(|((cell, device), visit)| VisitRow { cell, device, visit })
        .collect();
    rows.par_sort_unstable_by_key(|r| (r.cell, r.device)); // keys are unique: unstable is exact

    progress("score", 0, 1);
    let (prev, prior) = prior_state(lake, &e)?;
    let scored: Vec<Scored> = novelty::score(&rows, &devices, &|c| prior.get(&c).copied(), e.index(), &k);
    let visits_n = rows.len();
    drop(rows); // every scored row carries its visit
    progress("score", 1, 1);

    // Per recipient: points, devices, cells with points.
    let wallet_of: Vec<String> = devices
        .iter()
        .map(|d| inputs.registry.wallet(d).unwrap_or_default().to_string())
        .collect();
    let mut per: BTreeMap<&str, PerRecipient> = BTreeMap::new();
    for s in &scored {
        let w = wallet_of[s.row.device as usize].as_str();
        let ent = per.entry(w).or_default();
        ent.points += u128::from(s.points);
        ent.devices.insert(s.row.device);
        if s.points > 0 {
            // scored is sorted by cell: a recipient's rows of one cell are contiguous, so a
            // change of cell is a new distinct cell (no per-recipient cell set in memory).
            if ent.last_cell != Some(s.row.cell) {
                ent.cells += 1;
                ent.last_cell = Some(s.row.cell);
            }
        }
    }
    let pts: Vec<(String, u128)> = per.iter().map(|(w, v)| (w.to_string(), v.points)).collect();
    let shares: Vec<Share> = allocate(inputs.pool, &pts).map_err(|e| Error::Invalid(e.to_string()))?;
    let points_total: u128 = pts.iter().map(|p| p.1).sum();
    let amounts: Vec<(String, u128)> = shares.iter().map(|s| (s.recipient.clone(), s.amount)).collect();
    let dist = crate::merkle::build(k.merkle, &amounts).map_err(|err| Error::Invalid(format!("epoch {e}: {err}")))?;
    let allocated: u128 = shares.iter().map(|s| s.amount).sum();

    let mut files = BTreeMap::new();
    files.insert(
        "rewards.parquet".to_string(),
        parquet_bytes(
            "rewards.parquet",
            &io::rewards_schema(),
            &[rewards_batch(&shares, &per, &dist)],
        )?,
    );
    // The two big files encode in parallel (each file's bytes depend only on its rows).
    let (explain_pq, (coverage_pq, (cells_covered, new_cells))) = rayon::join(
        || -> Result<Vec<u8>> {
            // Streamed: batches are built a few at a time (in parallel) and written in order, so
            // memory holds the compressed file and a handful of batches, never every explain
            // row. Same batches, same writer settings as `io::to_parquet`: the same bytes.
            let pe = |x: parquet::errors::ParquetError| Error::Data {
                path: "explain.parquet".into(),
                message: x.to_string(),
            };
            let mut w = io::memory_writer(&io::explain_schema()).map_err(pe)?;
            for group in scored.chunks(io::BATCH_ROWS * 4) {
                let batches: Vec<RecordBatch> = group
                    .par_chunks(io::BATCH_ROWS)
                    .map(|c| explain_batch(c, &devices, &wallet_of))
                    .collect();
                for b in &batches {
                    w.write(b).map_err(pe)?;
                }
            }
            w.into_inner().map_err(pe)
        },
        || {
            // rows are sorted by cell: consecutive dedupe gives the sorted distinct cells.
            let mut cells: Vec<u64> = scored.iter().map(|s| s.row.cell).collect();
            cells.dedup();
            let new_cells = cells.iter().filter(|c| !prior.contains_key(c)).count() as u64;
            let next = state::advance(&prior, cells.iter().copied(), &e);
            (
                parquet_bytes("coverage.parquet", &io::coverage_schema(), &[state::to_batch(&next)]),
                (cells, new_cells),
            )
        },
    );
    files.insert("explain.parquet".to_string(), explain_pq?);
    files.insert("rejections.parquet".to_string(), sink.finish().map_err(pq_err)?);
    files.insert("coverage.parquet".to_string(), coverage_pq?);
    files.insert("policy.toml".to_string(), inputs.policy_text.as_bytes().to_vec());
    let mut dump = serde_json::to_vec_pretty(&dist.dump).expect("dump serializes");
    dump.push(b'\n');
    files.insert("merkle.json".to_string(), dump);
    files.insert("registry.csv".to_string(), inputs.registry.to_csv().into_bytes());

    let status = if shares.is_empty() { "no_points" } else { "allocated" };
    let outputs: BTreeMap<String, String> = files.iter().map(|(n, b)| (n.clone(), sha256_hex(b))).collect();
    let manifest = json!({
        "format": "tessera-epoch-manifest/1",
        "epoch": e.to_string(),
        "window": {"start": rfc3339(start), "end": rfc3339(end)},
        "pool": inputs.pool.to_string(),
        "allocated": allocated.to_string(),
        "status": status,
        "recipients": shares.len(),
        "points_total": ppm_str(points_total),
        "merkle": {"scheme": dist.scheme.as_str(), "root": dist.root},
        "counts": {
            "sources": selected.len(),
            "fixes_in": fixes_in,
            "fixes_accepted": accepted,
            "rejected": rejected,
            "visits": visits_n,
            "cells": cells_covered.len(),
            "new_cells": new_cells,
        },
        "previous_state": prev.as_ref().map(|(p, sha)| json!({"epoch": p.to_string(), "coverage_sha256": sha})),
        "policy_sha256": outputs["policy.toml"],
        "registry_sha256": outputs["registry.csv"],
        "inputs": inputs_json,
        "outputs": outputs,
        "software": {"name": "tessera", "version": env!("CARGO_PKG_VERSION")},
    });
    let mut mbytes = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    mbytes.push(b'\n');
    files.insert("manifest.json".to_string(), mbytes);

    let mut top: Vec<&Share> = shares.iter().collect();
    top.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.recipient.cmp(&b.recipient)));
    let summary = Summary {
        epoch: e.to_string(),
        window_start: rfc3339(start),
        window_end: rfc3339(end),
        sources: selected.len() as u64,
        fixes_in,
        fixes_accepted: accepted,
        rejected,
        cells: cells_covered.len() as u64,
        new_cells,
        visits: visits_n as u64,
        recipients: shares.len() as u64,
        pool: inputs.pool.to_string(),
        allocated: allocated.to_string(),
        points_total: ppm_str(points_total),
        status: status.to_string(),
        previous_state: prev.map(|(p, _)| p.to_string()),
        top: top
            .into_iter()
            .map(|s| {
                let v = &per[s.recipient.as_str()];
                RecipientLine {
                    recipient: s.recipient.clone(),
                    amount: s.amount.to_string(),
                    points: ppm_str(s.points),
                    devices: v.devices.len() as u32,
                    cells: v.cells,
                }
            })
            .collect(),
    };
    Ok(EpochOutputs { files, summary })
}

/// Compute the epoch and write `epochs/E/` atomically (all files or none). Re-running with the
/// same lake and inputs rewrites byte-identical files.
pub fn run(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochOutputs> {
    let out = compute(lake, inputs, progress)?;
    let staging = lake.staging_dir(&inputs.epoch)?;
    for (name, bytes) in &out.files {
        write_atomic(&staging.join(name), bytes)?;
        fail::fail_point!("epoch-staged-file");
    }
    lake.commit_epoch_dir(&staging, &inputs.epoch)?;
    Ok(out)
}

/// Per recipient: points, devices, distinct cells with points.
#[derive(Default)]
struct PerRecipient {
    points: u128,
    devices: BTreeSet<u32>,
    cells: u64,
    last_cell: Option<u64>,
}

fn dec(cap: usize, dt: arrow_schema::DataType) -> arrow_array::builder::Decimal128Builder {
    io::decimal_builder(cap, &dt)
}

fn rewards_batch(
    shares: &[Share],
    per: &BTreeMap<&str, PerRecipient>,
    dist: &crate::merkle::Distribution,
) -> RecordBatch {
    let n = shares.len();
    let mut r = StringBuilder::new();
    let mut amount = dec(n, io::amount_type());
    let mut points = dec(n, io::ppm_type());
    let mut devices = UInt32Builder::with_capacity(n);
    let mut cells = UInt64Builder::with_capacity(n);
    let mut leaf = StringBuilder::with_capacity(n, 66 * n);
    let mut proof = arrow_array::builder::ListBuilder::new(StringBuilder::new());
    for (s, c) in shares.iter().zip(&dist.claims) {
        debug_assert_eq!(s.recipient, c.recipient);
        leaf.append_value(&c.leaf);
        for p in &c.proof {
            proof.values().append_value(p);
        }
        proof.append(true);
        let v = &per[s.recipient.as_str()];
        r.append_value(&s.recipient);
        // Decimal128(38,0) holds up to 10^38-1 < 2^127: pools above that are refused at the CLI.
        amount.append_value(i128::try_from(s.amount).unwrap_or(i128::MAX));
        points.append_value(i128::try_from(s.points).unwrap_or(i128::MAX));
        devices.append_value(v.devices.len() as u32);
        cells.append_value(v.cells);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(r.finish()),
        Arc::new(amount.finish()),
        Arc::new(points.finish()),
        Arc::new(devices.finish()),
        Arc::new(cells.finish()),
        Arc::new(leaf.finish()),
        Arc::new(proof.finish()),
    ];
    RecordBatch::try_new(io::rewards_schema(), cols).expect("schema matches")
}

pub(crate) fn explain_batch(scored: &[Scored], devices: &[String], wallets: &[String]) -> RecordBatch {
    let n = scored.len();
    let mut cell = UInt64Builder::with_capacity(n);
    let mut cell_id = StringBuilder::with_capacity(n, 15 * n);
    let mut device = StringBuilder::new();
    let mut recipient = StringBuilder::with_capacity(n, 42 * n);
    let mut first = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut fixes = UInt32Builder::with_capacity(n);
    let mut hdop = Float32Builder::with_capacity(n);
    let mut rank = UInt32Builder::with_capacity(n);
    let mut age = Int64Builder::with_capacity(n);
    let (mut rw, mut fw, mut qw, mut gw, mut pts) = (
        dec(n, io::ppm_type()),
        dec(n, io::ppm_type()),
        dec(n, io::ppm_type()),
        dec(n, io::ppm_type()),
        dec(n, io::ppm_type()),
    );
    for s in scored {
        let d = s.row.device as usize;
        cell.append_value(s.row.cell);
        cell_id.append_value(format!("{:x}", s.row.cell));
        device.append_value(&devices[d]);
        recipient.append_value(&wallets[d]);
        first.append_value(s.row.visit.first_ms);
        last.append_value(s.row.visit.last_ms);
        fixes.append_value(s.row.visit.fixes);
        hdop.append_value(s.row.visit.best_hdop_centi as f32 / 100.0);
        rank.append_value(s.rank);
        age.append_option(s.age);
        rw.append_value(i128::from(s.rank_w));
        fw.append_value(i128::from(s.freshness_w));
        qw.append_value(i128::from(s.quality_w));
        gw.append_value(i128::from(s.region_w));
        pts.append_value(i128::from(s.points));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell.finish()),
        Arc::new(cell_id.finish()),
        Arc::new(device.finish()),
        Arc::new(recipient.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(fixes.finish()),
        Arc::new(hdop.finish()),
        Arc::new(rank.finish()),
        Arc::new(age.finish()),
        Arc::new(rw.finish()),
        Arc::new(fw.finish()),
        Arc::new(qw.finish()),
        Arc::new(gw.finish()),
        Arc::new(pts.finish()),
    ];
    RecordBatch::try_new(io::explain_schema(), cols).expect("schema matches")
}

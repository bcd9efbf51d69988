//! The epoch run, at the I/O edge: read the lake's sources for the epoch window, clean, cover,
//! score, allocate, and write `epochs/E/` atomically. [`compute_to_dir`] writes every output file
//! into a directory, [`compute`] into memory (for verification and what-if runs), [`run`] into
//! the lake.
//!
//! Memory is bounded: sources are read a chunk at a time, the visits are held in memory up to
//! the lake's budget ([`Lake::with_max_visits`]) and spilled to range buckets beyond it, the prior
//! coverage state is read in cell order a batch at a time, and the big files are streamed to
//! disk. What grows with the week is per recipient (wallets, devices) and per source (the
//! manifest's input list).

use crate::cells::{cover_segment, VisitMap};
use crate::epoch::Epoch;
use crate::fix::Fix;
use crate::ingest::{Reason, Rejection};
use crate::io::{self, RejectionRow};
use crate::lake::{sha256_file, sha256_hex, write_atomic, Error, Lake, Result, SourceMeta};
use crate::novelty::freshness::CellState;
use crate::novelty::{self, Scored, VisitRow};
use crate::policy::Policy;
use crate::registry::Registry;
use crate::rewards::{allocate, Share};
use crate::spill;
use crate::state;
use arrow_array::builder::{
    Float32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
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

/// The prior coverage state, read in cell order a batch at a time (it is never held whole: at
/// 10^8 cells it would not fit the memory budget).
struct PriorCursor {
    reader: Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>,
    buf: std::collections::VecDeque<(u64, CellState)>,
    last: Option<u64>,
    path: String,
}

impl PriorCursor {
    fn empty() -> PriorCursor {
        PriorCursor {
            reader: None,
            buf: Default::default(),
            last: None,
            path: String::new(),
        }
    }

    fn open(p: &Path) -> Result<PriorCursor> {
        let path = p.display().to_string();
        let f = std::fs::File::open(p).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.with_batch_size(io::BATCH_ROWS).build())
            .map_err(|e| Error::Data {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(PriorCursor {
            reader: Some(reader),
            buf: Default::default(),
            last: None,
            path,
        })
    }

    /// Refill the buffer; false at the end of the file.
    fn refill(&mut self) -> Result<bool> {
        let Some(r) = self.reader.as_mut() else {
            return Ok(false);
        };
        let data = |message: String| Error::Data {
            path: self.path.clone(),
            message,
        };
        match r.next() {
            None => {
                self.reader = None;
                Ok(false)
            }
            Some(b) => {
                let b = b.map_err(|e| data(e.to_string()))?;
                for (c, st) in state::rows_from_batch(&b).map_err(data)? {
                    if self.last.is_some_and(|l| c <= l) {
                        return Err(data(format!("cells not in ascending order at cell {c:x}")));
                    }
                    self.last = Some(c);
                    self.buf.push_back((c, st));
                }
                Ok(true)
            }
        }
    }

    /// Every remaining entry with cell < `hi` (all of them for `None`), in cell order.
    fn take_below(&mut self, hi: Option<u64>) -> Result<Vec<(u64, CellState)>> {
        let mut out = Vec::new();
        loop {
            while let Some(&(c, st)) = self.buf.front() {
                if hi.is_some_and(|h| c >= h) {
                    return Ok(out);
                }
                out.push((c, st));
                self.buf.pop_front();
            }
            if !self.refill()? {
                return Ok(out);
            }
        }
    }
}

/// The latest epoch before `epoch` with outputs in the lake: its name, the SHA-256 of its
/// coverage state and a cursor over that state.
fn prior_state(lake: &Lake, epoch: &Epoch) -> Result<(Option<(Epoch, String)>, PriorCursor)> {
    let Some(prev) = lake.epochs()?.into_iter().rev().find(|e| e < epoch) else {
        return Ok((None, PriorCursor::empty()));
    };
    let p = lake.epoch_dir(&prev).join("coverage.parquet");
    let sha = sha256_file(&p)?;
    Ok((Some((prev, sha)), PriorCursor::open(&p)?))
}

fn parquet_bytes(name: &str, schema: &arrow_schema::SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    io::to_parquet(schema, batches).map_err(|e| Error::Data {
        path: name.to_string(),
        message: e.to_string(),
    })
}

/// A Parquet output streamed into the output directory, hashed as it is written.
type Sink<T, B> = io::BatchSink<T, io::HashedFile, B>;
/// Builds explain batches (closes over the device and wallet tables).
type ExplainBuild<'a> = Box<dyn Fn(&[Scored]) -> RecordBatch + Send + Sync + 'a>;
/// Builds coverage batches.
type CoverageBuild = fn(&[(u64, CellState)]) -> RecordBatch;

fn sink<T: Send + Sync, B: Fn(&[T]) -> RecordBatch + Sync>(
    dir: &Path,
    name: &str,
    schema: &arrow_schema::SchemaRef,
    build: B,
) -> Result<Sink<T, B>> {
    let p = dir.join(name);
    let f = io::HashedFile::create(&p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    io::BatchSink::new(f, schema, build).map_err(|e| pq_error(name, e))
}

fn pq_error(name: &str, e: parquet::errors::ParquetError) -> Error {
    Error::Data {
        path: name.to_string(),
        message: e.to_string(),
    }
}

fn finish_sink<T: Send + Sync, B: Fn(&[T]) -> RecordBatch + Sync>(
    dir: &Path,
    name: &str,
    s: Sink<T, B>,
) -> Result<String> {
    let f = s.finish().map_err(|e| pq_error(name, e))?;
    let sha = f.finish().map_err(|source| Error::Io {
        path: dir.join(name).display().to_string(),
        source,
    })?;
    fail::fail_point!("epoch-staged-file");
    Ok(sha)
}

/// Write a small output file into the output directory; its SHA-256.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> Result<String> {
    write_atomic(&dir.join(name), bytes)?;
    fail::fail_point!("epoch-staged-file");
    Ok(sha256_hex(bytes))
}

/// Where the visits of the epoch are while sources are covered: in memory until they outgrow
/// the budget, then range buckets on disk (`spill.rs`).
struct VisitStore {
    map: VisitMap,
    max: usize,
    spill: Option<spill::Spill>,
    dir: PathBuf,
}

impl VisitStore {
    fn add(&mut self, visits: VisitMap) -> Result<()> {
        for (key, v) in visits {
            self.map.entry(key).and_modify(|e| *e = e.merge(v)).or_insert(v);
        }
        if self.map.len() > self.max {
            if self.spill.is_none() {
                let cells: Vec<u64> = self.map.keys().map(|k| k.0).collect();
                let bounds = spill::bounds_from(cells, spill::BUCKETS);
                self.spill = Some(spill::Spill::new(&self.dir, bounds)?);
            }
            self.spill.as_mut().expect("created above").drain(&mut self.map)?;
        }
        Ok(())
    }
}

/// Scores the visits a range of cells at a time, in cell order, and streams every per-visit and
/// per-cell output; what is left in memory is per recipient.
struct Scorer<'a> {
    devices: &'a [String],
    wallet_of: &'a [String],
    k: &'a crate::policy::Kernels,
    epoch: i64,
    prior: PriorCursor,
    per: BTreeMap<&'a str, PerRecipient>,
    explain: Sink<Scored, ExplainBuild<'a>>,
    coverage: Sink<(u64, CellState), CoverageBuild>,
    visits: u64,
    cells: u64,
    new_cells: u64,
}

/// Rows scored at a time: the scored rows and their batches stay this small whatever the size
/// of a bucket.
const SCORE_ROWS: usize = 1 << 18;

impl Scorer<'_> {
    /// Score the visits of the cells below `hi` (`None`: all remaining), sorted by (cell,
    /// device), in pieces of about [`SCORE_ROWS`] cut at cell boundaries; every earlier call
    /// covered lower cells.
    fn sorted(&mut self, rows: &[VisitRow], hi: Option<u64>) -> Result<()> {
        let mut start = 0;
        while start < rows.len() {
            let mut end = (start + SCORE_ROWS).min(rows.len());
            while end < rows.len() && rows[end].cell == rows[end - 1].cell {
                end += 1;
            }
            let piece_hi = if end < rows.len() { Some(rows[end].cell) } else { hi };
            self.part(&rows[start..end], piece_hi)?;
            start = end;
        }
        if rows.is_empty() {
            self.part(&[], hi)?;
        }
        Ok(())
    }

    fn part(&mut self, rows: &[VisitRow], hi: Option<u64>) -> Result<()> {
        let prior = self.prior.take_below(hi)?;
        let lookup = |c: u64| prior.binary_search_by_key(&c, |p| p.0).ok().map(|i| prior[i].1);
        let scored = novelty::score(rows, self.devices, &lookup, self.epoch, self.k);
        self.visits += rows.len() as u64;
        for s in &scored {
            let w = self.wallet_of[s.row.device as usize].as_str();
            let ent = self.per.entry(w).or_default();
            ent.points += u128::from(s.points);
            ent.devices.insert(s.row.device);
            if s.points > 0 {
                // scored is in cell order (across parts too): a recipient's rows of one cell are
                // contiguous, so a change of cell is a new distinct cell.
                if ent.last_cell != Some(s.row.cell) {
                    ent.cells += 1;
                    ent.last_cell = Some(s.row.cell);
                }
            }
        }
        // Coverage after the epoch: the prior cells of this range merged with the covered ones.
        let mut cells: Vec<u64> = scored.iter().map(|s| s.row.cell).collect();
        cells.dedup();
        self.cells += cells.len() as u64;
        let mut next = Vec::with_capacity(prior.len() + cells.len());
        let (mut i, mut j) = (0, 0);
        while i < prior.len() || j < cells.len() {
            let p = prior.get(i).copied();
            let c = cells.get(j).copied();
            match (p, c) {
                (Some((pc, ps)), Some(cc)) if pc == cc => {
                    next.push((cc, state::advance_cell(Some(ps), self.epoch)));
                    i += 1;
                    j += 1;
                }
                (Some((pc, ps)), Some(cc)) if pc < cc => {
                    next.push((pc, ps));
                    i += 1;
                }
                (Some((pc, ps)), None) => {
                    next.push((pc, ps));
                    i += 1;
                }
                (_, Some(cc)) => {
                    next.push((cc, state::advance_cell(None, self.epoch)));
                    self.new_cells += 1;
                    j += 1;
                }
                (None, None) => unreachable!("loop condition"),
            }
        }
        self.coverage
            .extend(next)
            .map_err(|e| pq_error("coverage.parquet", e))?;
        self.explain
            .extend(scored)
            .map_err(|e| pq_error("explain.parquet", e))?;
        Ok(())
    }
}

/// Compute every output of an epoch into memory without touching the lake (the files are
/// built in a temporary directory, then read).
pub fn compute(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochOutputs> {
    let tmp = tempfile::Builder::new()
        .prefix("tessera-epoch-")
        .tempdir()
        .map_err(|source| Error::Io {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?;
    let run = compute_to_dir(lake, inputs, tmp.path(), progress)?;
    let mut files = BTreeMap::new();
    for name in run.sha256.keys() {
        let p = tmp.path().join(name);
        let bytes = std::fs::read(&p).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })?;
        files.insert(name.clone(), bytes);
    }
    Ok(EpochOutputs {
        files,
        summary: run.summary,
    })
}

/// What [`compute_to_dir`] and [`run`] produced: the summary and each file's SHA-256.
#[derive(Debug, Clone)]
pub struct EpochRun {
    /// Summary.
    pub summary: Summary,
    /// File name → SHA-256 (hex) of every output file, `manifest.json` included.
    pub sha256: BTreeMap<String, String>,
}

/// Compute every output of an epoch and write the files into `dir` (which must exist and is
/// used as scratch space for spilled visits, removed before returning). Nothing else is written.
/// Memory stays within the lake's visit budget ([`Lake::with_max_visits`]) plus what is kept
/// per recipient; the big files are streamed.
pub fn compute_to_dir(lake: &Lake, inputs: &EpochInputs, dir: &Path, progress: Progress) -> Result<EpochRun> {
    let scratch = dir.join(".spill");
    let result = compute_inner(lake, inputs, dir, &scratch, progress);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn compute_inner(
    lake: &Lake,
    inputs: &EpochInputs,
    dir: &Path,
    scratch: &Path,
    progress: Progress,
) -> Result<EpochRun> {
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
    let mut store = VisitStore {
        map: VisitMap::default(),
        max: lake.max_visits(),
        spill: None,
        dir: scratch.to_path_buf(),
    };
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut rej_sink = sink(
        dir,
        "rejections.parquet",
        &io::rejections_schema(),
        io::rejections_to_batch,
    )?;
    rej_sink = rej_sink.with_empty_batch();
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
            rej_sink
                .extend(r.rejections)
                .map_err(|e| pq_error("rejections.parquet", e))?;
            store.add(r.visits)?;
            inputs_json
                .push(json!({"source": m.hash, "device": m.device, "name": m.name, "fixes_sha256": r.fixes_sha}));
        }
    }
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    outputs.insert(
        "rejections.parquet".into(),
        finish_sink(dir, "rejections.parquet", rej_sink)?,
    );

    progress("score", 0, 1);
    let (prev, prior) = prior_state(lake, &e)?;
    let wallet_of: Vec<String> = devices
        .iter()
        .map(|d| inputs.registry.wallet(d).unwrap_or_default().to_string())
        .collect();
    let explain_build: ExplainBuild = Box::new(|c: &[Scored]| explain_batch(c, &devices, &wallet_of));
    let mut scorer = Scorer {
        devices: &devices,
        wallet_of: &wallet_of,
        k: &k,
        epoch: e.index(),
        prior,
        per: BTreeMap::new(),
        explain: sink(dir, "explain.parquet", &io::explain_schema(), explain_build)?,
        coverage: sink(
            dir,
            "coverage.parquet",
            &io::coverage_schema(),
            state::rows_to_batch as CoverageBuild,
        )?,
        visits: 0,
        cells: 0,
        new_cells: 0,
    };
    match store.spill.take() {
        None => {
            let mut rows: Vec<VisitRow> = std::mem::take(&mut store.map)
                .into_iter()
                .map(|((cell, device), visit)| VisitRow { cell, device, visit })
                .collect();
            rows.par_sort_unstable_by_key(|r| (r.cell, r.device)); // keys are unique: unstable is exact
            scorer.sorted(&rows, None)?;
        }
        Some(mut sp) => {
            sp.drain(&mut store.map)?;
            drop(store);
            let mut queue: std::collections::VecDeque<spill::Bucket> = sp.finish()?.into();
            let parts = queue.len() as u64;
            let mut n_split = 0u64;
            let max = lake.max_visits() as u64;
            // Load the next bucket while the current one is scored.
            let mut loaded: Option<(Vec<VisitRow>, Option<u64>)> = None;
            loop {
                let next = loop {
                    match queue.pop_front() {
                        Some(b) if b.records > max => {
                            n_split += 1;
                            let sub = spill::split(b, &scratch.join(format!("split-{n_split}")), spill::BUCKETS)?;
                            if sub.len() == 1 {
                                break sub.into_iter().next();
                            }
                            for s in sub.into_iter().rev() {
                                queue.push_front(s);
                            }
                        }
                        other => break other,
                    }
                };
                let current = loaded.take();
                let (res_next, res_cur) = rayon::join(
                    || next.map(|b| spill::load(&b).map(|rows| (rows, b.hi))).transpose(),
                    || match &current {
                        Some((rows, hi)) => scorer.sorted(rows, *hi),
                        None => Ok(()),
                    },
                );
                res_cur?;
                drop(current);
                loaded = res_next?;
                progress("score", parts.saturating_sub(queue.len() as u64), parts);
                if loaded.is_none() {
                    break;
                }
            }
            // Prior cells above the last bucket's range.
            scorer.sorted(&[], None)?;
        }
    }
    progress("score", 1, 1);
    let Scorer {
        per,
        explain,
        coverage,
        visits: visits_n,
        cells: cells_covered,
        new_cells,
        ..
    } = scorer;
    outputs.insert("explain.parquet".into(), finish_sink(dir, "explain.parquet", explain)?);
    outputs.insert(
        "coverage.parquet".into(),
        finish_sink(dir, "coverage.parquet", coverage)?,
    );

    let pts: Vec<(String, u128)> = per.iter().map(|(w, v)| (w.to_string(), v.points)).collect();
    let shares: Vec<Share> = allocate(inputs.pool, &pts).map_err(|e| Error::Invalid(e.to_string()))?;
    let points_total: u128 = pts.iter().map(|p| p.1).sum();
    let amounts: Vec<(String, u128)> = shares.iter().map(|s| (s.recipient.clone(), s.amount)).collect();
    let dist = crate::merkle::build(k.merkle, &amounts).map_err(|err| Error::Invalid(format!("epoch {e}: {err}")))?;
    let allocated: u128 = shares.iter().map(|s| s.amount).sum();

    let rewards = parquet_bytes(
        "rewards.parquet",
        &io::rewards_schema(),
        &[rewards_batch(&shares, &per, &dist)],
    )?;
    outputs.insert("rewards.parquet".into(), put(dir, "rewards.parquet", &rewards)?);
    outputs.insert(
        "policy.toml".into(),
        put(dir, "policy.toml", inputs.policy_text.as_bytes())?,
    );
    let mut dump = serde_json::to_vec_pretty(&dist.dump).expect("dump serializes");
    dump.push(b'\n');
    outputs.insert("merkle.json".into(), put(dir, "merkle.json", &dump)?);
    outputs.insert(
        "registry.csv".into(),
        put(dir, "registry.csv", inputs.registry.to_csv().as_bytes())?,
    );

    let status = if shares.is_empty() { "no_points" } else { "allocated" };
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
            "cells": cells_covered,
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
    outputs.insert("manifest.json".into(), put(dir, "manifest.json", &mbytes)?);

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
        cells: cells_covered,
        new_cells,
        visits: visits_n,
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
    Ok(EpochRun {
        summary,
        sha256: outputs,
    })
}

/// Compute the epoch and write `epochs/E/` atomically (all files or none): the files are
/// written into a staging directory, which replaces `epochs/E` in one rename. Re-running with
/// the same lake and inputs rewrites byte-identical files.
pub fn run(lake: &Lake, inputs: &EpochInputs, progress: Progress) -> Result<EpochRun> {
    let staging = lake.staging_dir(&inputs.epoch)?;
    let out = compute_to_dir(lake, inputs, &staging, progress)?;
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

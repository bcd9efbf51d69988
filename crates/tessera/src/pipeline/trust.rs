//! Stage 2, trust (with `[trust] enabled`): the detectors that look across sources and devices —
//! one timeline per device, replays and co-travel against this epoch's and the last epochs'
//! fingerprints — then each device's reputation; writes `flags.parquet` (every finding, per-source
//! ones from stage 1 included), `fingerprints.parquet` and `trust.parquet`, and hands scoring the
//! windows to withhold per device and the `trust` multiplier.

use super::history;
use super::outputs::put;
use crate::epoch::Epoch;
use crate::fixed::Ppm;
use crate::lake::{Error, Lake, Result, SourceMeta};
use crate::tables::{self, FlagRow};
use crate::trust::policy::TrustKernels;
use crate::trust::{self, copies, reputation, timeline, Detector, Effect, Finding, Trace};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One source's per-segment findings and covered traces from stage 1.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SourceTrust {
    pub findings: Vec<Finding>,
    pub traces: Vec<(u32, Trace)>,
}

impl SourceTrust {
    /// Keep what checking segment `seg` found.
    pub fn add(&mut self, seg: u32, c: trust::SegmentCheck) {
        self.findings.extend(c.findings);
        if let Some(t) = c.trace {
            self.traces.push((seg, t));
        }
    }

    /// Runs of consecutive teleports (see [`trust::kinematics::teleport_runs`]).
    pub fn teleport_runs(&mut self, fixes: &[crate::fix::Fix], verdicts: &[crate::quality::Verdict], k: &TrustKernels) {
        use crate::quality::Verdict;
        let teleport: Vec<bool> = verdicts
            .iter()
            .map(|v| matches!(v, Verdict::Rejected(crate::report::Reason::Teleport, _)))
            .collect();
        let segment: Vec<Option<u32>> = verdicts
            .iter()
            .map(|v| match v {
                Verdict::Accepted(s) => Some(*s),
                Verdict::Rejected(..) => None,
            })
            .collect();
        for (a, b) in trust::kinematics::teleport_runs(&teleport, &segment, k) {
            let n = teleport[a..=b].iter().filter(|t| **t).count();
            self.findings.push(Finding {
                detector: Detector::ImpossibleSpeed,
                start_ms: fixes[a].time_ms,
                end_ms: fixes[b].time_ms,
                measured: format!("{n} fixes rejected as teleports"),
                threshold: format!("{} consecutive", k.max_teleports),
                policy_key: "trust.kinematics.max_teleports",
                effect: Effect::WithholdWindow,
                fixes: (b + 1 - a) as u64,
                meters: 0,
                detail: "a sustained speed no road vehicle reaches: the segments on both sides are withheld".into(),
            });
        }
    }

    /// Note a backward clock step between two segments (nothing withheld).
    pub fn clock_step(&mut self, last_ms: i64, next_ms: i64, k: Option<&TrustKernels>) {
        let Some(k) = k else { return };
        if next_ms < last_ms {
            self.findings.push(Finding {
                detector: Detector::ClockStep,
                start_ms: next_ms,
                end_ms: last_ms,
                measured: format!("clock back {:.0} s", (last_ms - next_ms) as f64 / 1000.0),
                threshold: format!("position within {:.0} m", k.clock_step_m),
                policy_key: "trust.time.clock_step_m",
                effect: Effect::None,
                fixes: 0,
                meters: 0,
                detail: "the receiver's clock stepped back while the position went on: the trace restarts".into(),
            });
        }
    }
}

/// RFC 3339 → UTC ms.
pub(crate) fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// What scoring needs from the trust stage.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Judged {
    /// Per device index: withheld windows `(start, end)` ms, sorted and merged.
    pub windows: Vec<Vec<(i64, i64)>>,
    /// Per device index: the trust multiplier (reputation entering the epoch).
    pub trust_w: Vec<Ppm>,
    /// Per device index: the wallet's index (devices of one wallet share it).
    pub wallet_idx: Vec<u32>,
    /// `trust.copies.one_rank_per_wallet`.
    pub one_rank_per_wallet: bool,
}

impl Judged {
    /// Whether the visit of device `d` spanning `first..=last` lies inside a withheld window.
    pub fn withheld(&self, d: u32, first: i64, last: i64) -> bool {
        let w = &self.windows[d as usize];
        let i = w.partition_point(|x| x.0 <= first);
        i > 0 && w[i - 1].1 >= last
    }
}

/// The findings of the cross-source detectors: (device index, selected-source index, finding).
type Placed = Vec<(u32, usize, Finding)>;

/// Everything the stage reads and writes besides the sources' results.
pub(super) struct Context<'a> {
    pub lake: &'a Lake,
    pub epoch: Epoch,
    pub selected: &'a [SourceMeta],
    pub devices: &'a [String],
    pub wallet_of: &'a [String],
    pub k: &'a TrustKernels,
    pub dir: &'a Path,
}

/// Run the stage: the verdicts scoring needs, and what the stage's files (`flags.parquet`,
/// `trust.parquet`, `fingerprints.parquet`) are written from ([`TrustFiles::write`]) — nothing
/// scored depends on them, so the pipeline writes them while the visits are scored (each write
/// is two fsyncs: ~15 ms of a 10^6-fix epoch's critical path when written here).
pub(super) fn judge(cx: &Context, per_source: Vec<SourceTrust>) -> Result<(Judged, TrustFiles)> {
    let device_of: Vec<u32> = cx
        .selected
        .iter()
        .map(|m| cx.devices.binary_search(&m.device).map_or(0, |i| i as u32))
        .collect();
    let mut placed: Placed = Vec::new();
    // 1. One timeline per device.
    let mut by_device: BTreeMap<u32, Vec<timeline::Piece>> = BTreeMap::new();
    for (s, st) in per_source.iter().enumerate() {
        for (seg, trace) in &st.traces {
            by_device.entry(device_of[s]).or_default().push(timeline::Piece {
                source: s,
                seg: *seg,
                trace,
            });
        }
    }
    for (d, pieces) in &by_device {
        for w in timeline::check(pieces, cx.k) {
            placed.push((*d, w.source, w.finding));
        }
    }
    // 2. Replays and co-travel, against this epoch and the last epochs' fingerprints.
    let copied = find_copies(cx, &per_source, &device_of, &mut placed)?;
    // 3. Windows, reputation, the files.
    let mut windows: Vec<Vec<(i64, i64)>> = vec![Vec::new(); cx.devices.len()];
    for (d, _, f) in &placed {
        windows[*d as usize].push((f.start_ms, f.end_ms));
    }
    for (s, st) in per_source.iter().enumerate() {
        for f in st.findings.iter().filter(|f| f.effect == Effect::WithholdWindow) {
            windows[device_of[s] as usize].push((f.start_ms, f.end_ms));
        }
    }
    for w in &mut windows {
        merge(w);
    }
    let mut cheating: BTreeSet<u32> = placed.iter().filter(|p| p.2.is_cheating()).map(|p| p.0).collect();
    for (s, st) in per_source.iter().enumerate() {
        if st.findings.iter().any(Finding::is_cheating) {
            cheating.insert(device_of[s]);
        }
    }
    let (trust_w, trust_rows) = reputations(cx, &cheating, &device_of, &mut placed)?;
    let mut wallets: Vec<&str> = cx.wallet_of.iter().map(String::as_str).collect();
    wallets.sort_unstable();
    wallets.dedup();
    let judged = Judged {
        windows,
        trust_w,
        wallet_idx: cx
            .wallet_of
            .iter()
            .map(|w| wallets.binary_search(&w.as_str()).map_or(0, |i| i as u32))
            .collect(),
        one_rank_per_wallet: cx.k.one_rank_per_wallet,
    };
    let files = TrustFiles {
        per_source,
        device_of,
        copied,
        placed,
        trust_rows,
    };
    Ok((judged, files))
}

/// What the trust stage's files are written from, once the sources are judged: their traces and
/// findings, the device of each, the sources found to be copies (left out of the fingerprints),
/// the cross-source findings and the devices' next reputations.
pub(super) struct TrustFiles {
    per_source: Vec<SourceTrust>,
    device_of: Vec<u32>,
    copied: BTreeSet<usize>,
    placed: Placed,
    trust_rows: Vec<TrustRow>,
}

/// A row of `trust.parquet`: device, reputation after this epoch (ppm), flagged this epoch.
type TrustRow = (String, u64, bool);

impl TrustFiles {
    /// Write `flags.parquet`, `trust.parquet` and `fingerprints.parquet` into `cx.dir`; each
    /// file's name and SHA-256.
    pub(super) fn write(self, cx: &Context) -> Result<Vec<(String, String)>> {
        let flags = write_flags(cx, &self.per_source, &self.device_of, self.placed)?;
        let bytes = tables::to_parquet(&tables::trust_schema(), &[tables::trust_batch(&self.trust_rows)])
            .map_err(|e| super::outputs::pq_error("trust.parquet", e))?;
        let trust = put(cx.dir, "trust.parquet", &bytes)?;
        let prints = write_fingerprints(cx, &self.per_source, &self.device_of, &self.copied)?;
        Ok(vec![
            ("flags.parquet".into(), flags),
            ("trust.parquet".into(), trust),
            ("fingerprints.parquet".into(), prints),
        ])
    }
}

fn merge(w: &mut Vec<(i64, i64)>) {
    w.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(w.len());
    for &(a, b) in w.iter() {
        match out.last_mut() {
            Some(l) if a <= l.1 => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *w = out;
}

/// The last `history_epochs` epochs' fingerprints files, newest first, each with its epoch's window
/// (UTC ms).
fn past_fingerprints(cx: &Context) -> Result<Vec<(std::path::PathBuf, std::ops::Range<i64>)>> {
    let past: Vec<Epoch> = cx.lake.epochs()?.into_iter().filter(|e| *e < cx.epoch).collect();
    Ok(past
        .iter()
        .rev()
        .take(cx.k.history_epochs as usize)
        .map(|e| {
            (
                cx.lake.epoch_dir(e).join("fingerprints.parquet"),
                e.start_ms()..e.end_ms(),
            )
        })
        .filter(|(p, _)| p.exists())
        .collect())
}

/// Call `f` on each record batch of the Parquet file `p`, read a batch at a time.
fn for_each_batch(
    p: &Path,
    mut f: impl FnMut(&arrow_array::RecordBatch) -> std::result::Result<(), String>,
) -> Result<()> {
    let data = |message: String| Error::Data {
        path: p.display().to_string(),
        message,
    };
    let file = std::fs::File::open(p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(tables::BATCH_ROWS).build())
        .map_err(|e| data(e.to_string()))?;
    for b in reader {
        f(&b.map_err(|e| data(e.to_string()))?).map_err(data)?;
    }
    Ok(())
}

fn read_rows<T>(
    p: &Path,
    rows: fn(&arrow_array::RecordBatch) -> std::result::Result<Vec<T>, String>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for_each_batch(p, |b| {
        out.extend(rows(b)?);
        Ok(())
    })?;
    Ok(out)
}

/// Compare every current source with every other and with history (a source's segments are
/// one anchor sequence: an outlier that splits a segment must not split a copy); the copies'
/// findings are placed; returns the sources that are copies (not kept as fingerprints).
fn find_copies(
    cx: &Context,
    per_source: &[SourceTrust],
    device_of: &[u32],
    placed: &mut Placed,
) -> Result<BTreeSet<usize>> {
    let groups = copy_groups(cx, per_source, device_of);
    // a lone source with one sorted trace is borrowed, not copied (16 bytes an anchor)
    let seqs: Vec<std::borrow::Cow<[(u64, i64)]>> = groups
        .iter()
        .map(|g| match (&g.members[..], &per_source[g.members[0].0].traces[..]) {
            ([_], [(_, t)]) if t.anchors.is_sorted_by_key(|x| x.1) => t.anchors.as_slice().into(),
            _ => {
                let mut a: Vec<(u64, i64)> = g
                    .members
                    .iter()
                    .flat_map(|m| {
                        per_source[m.0]
                            .traces
                            .iter()
                            .flat_map(|(_, t)| t.anchors.iter().copied())
                    })
                    .collect();
                a.sort_by_key(|x| x.1);
                a.into()
            }
        })
        .collect();
    let traces: Vec<copies::CopyTrace> = seqs
        .iter()
        .zip(&groups)
        .map(|(a, g)| copies::CopyTrace {
            device: u64::from(g.device),
            received: g.received,
            historic: false,
            anchors: a,
        })
        .collect();
    let search = copies::CopySearch::new(&traces, cx.k);
    // (copy, original: a current trace's index, or groups.len() + the n-th earlier trace, its name)
    let mut found: Vec<(usize, usize, String, Finding)> = search
        .among()
        .into_iter()
        .map(|m| (m.copy, m.original, groups[m.original].name(cx), m.finding))
        .collect();
    found.extend(copies_of_history(cx, &search, groups.len())?);
    found.sort_by_key(|f| (f.0, f.1));
    let mut copied = BTreeSet::new();
    for (copy, _, original, finding) in found {
        let g = &groups[copy];
        for (s, mut f) in g.split(&finding) {
            f.detail = format!("follows the trace of {original}; only the first received is paid on the matched part");
            if g.members.len() > 1 {
                f.detail.push_str(&format!(
                    " (matched on this device's {} sources joined in time order, trust rule set 7)",
                    g.members.len()
                ));
            }
            copied.insert(s);
            placed.push((g.device, s, f));
        }
    }
    Ok(copied)
}

/// What the copy search compares as one trace: one source, or from trust rule set 7 a run of one
/// device's sources that follow each other, each starting after the last ended and within
/// `trust.timeline.journey_gap_s` of it — a drive uploaded as several files (a dashcam's
/// five-minute files, or a copy cut up so that no part reaches `min_anchors`) is matched whole.
struct CopyGroup {
    device: u32,
    /// `(source, first fix ms, last fix ms)` in time order.
    members: Vec<(usize, i64, i64)>,
    /// The earliest receipt of its sources: `(ms, source)`.
    received: (i64, u64),
}

impl CopyGroup {
    /// How the evidence names it as an original.
    fn name(&self, cx: &Context) -> String {
        let o = &cx.selected[self.members[0].0];
        let more = match self.members.len() {
            1 => String::new(),
            n => format!(" and {} more sources", n - 1),
        };
        format!(
            "{} (source {}{more}, received {})",
            o.device,
            o.name,
            o.received_at.as_deref().unwrap_or("unknown")
        )
    }

    /// A finding on the group, as one finding per source it reaches (its window cut to the
    /// source's time; the first and last sources keep the window's ends).
    fn split(&self, f: &Finding) -> Vec<(usize, Finding)> {
        if let [(s, ..)] = self.members[..] {
            return vec![(s, f.clone())];
        }
        let last = self.members.len() - 1;
        let mut out = Vec::new();
        for (n, &(s, from, to)) in self.members.iter().enumerate() {
            let lo = if n == 0 { f.start_ms } else { f.start_ms.max(from) };
            let hi = if n == last { f.end_ms } else { f.end_ms.min(to) };
            if lo <= hi {
                let mut g = f.clone();
                (g.start_ms, g.end_ms) = (lo, hi);
                out.push((s, g));
            }
        }
        out
    }
}

/// The copy search's traces ([`CopyGroup`]), ordered by their first source: sources with anchors,
/// each alone before trust rule set 7 (`k.join_sources`).
fn copy_groups(cx: &Context, per_source: &[SourceTrust], device_of: &[u32]) -> Vec<CopyGroup> {
    let span = |st: &SourceTrust| {
        let from = st.traces.iter().map(|(_, t)| t.start_ms).min().unwrap_or(i64::MAX);
        (from, st.traces.iter().map(|(_, t)| t.end_ms).max().unwrap_or(i64::MIN))
    };
    let received = |s: usize| {
        let rx = cx.selected[s]
            .received_at
            .as_deref()
            .and_then(parse_ms)
            .unwrap_or(i64::MAX);
        (rx, s as u64)
    };
    let with_anchors = |s: &usize| per_source[*s].traces.iter().any(|(_, t)| !t.anchors.is_empty());
    let mut by_device: BTreeMap<u32, Vec<(i64, i64, usize)>> = BTreeMap::new();
    for s in (0..per_source.len()).filter(with_anchors) {
        let (from, to) = span(&per_source[s]);
        by_device.entry(device_of[s]).or_default().push((from, to, s));
    }
    let mut groups: Vec<CopyGroup> = Vec::new();
    for (device, mut srcs) in by_device {
        srcs.sort_unstable();
        let mut open: Option<CopyGroup> = None;
        for (from, to, s) in srcs {
            if let Some(g) = open.as_mut() {
                let end = g.members[g.members.len() - 1].2;
                if cx.k.join_sources && from > end && from - end <= cx.k.journey_gap_ms {
                    g.members.push((s, from, to));
                    g.received = g.received.min(received(s));
                    continue;
                }
                groups.extend(open.take());
            }
            open = Some(CopyGroup {
                device,
                members: vec![(s, from, to)],
                received: received(s),
            });
        }
        groups.extend(open);
    }
    groups.sort_by_key(|g| g.members[0].0);
    groups
}

/// Anchors of earlier traces compared per parallel step, while the next step's are read.
const HISTORY_CHUNK_ANCHORS: usize = 1 << 20;

/// The current traces that follow an earlier epoch's trace: the earlier traces read a chunk at a
/// time (the next chunk decoded while this one is searched), each searched against the index of
/// the current ones. Originals are numbered from `first` in (source, device) order.
fn copies_of_history(
    cx: &Context,
    search: &copies::CopySearch,
    first: usize,
) -> Result<Vec<(usize, usize, String, Finding)>> {
    use rayon::prelude::*;
    let paths = past_fingerprints(cx)?;
    let mut whole = BTreeSet::new();
    'again: loop {
        // A file out of (source, device) order is read whole on the next try (once: a file
        // read whole is in order).
        let halt = |h: history::Halt, whole: &mut BTreeSet<usize>| match h {
            history::Halt::Disorder(i) if whole.insert(i) => Ok(()),
            history::Halt::Disorder(i) => Err(Error::Data {
                path: paths[i].0.display().to_string(),
                message: "fingerprints out of order after a whole read".into(),
            }),
            history::Halt::Error(e) => Err(e),
        };
        let mut past = match history::History::open(&paths, &whole) {
            Ok(h) => h,
            Err(h) => {
                halt(h, &mut whole)?;
                continue 'again;
            }
        };
        let mut out = Vec::new();
        let mut chunk = past.next_chunk(HISTORY_CHUNK_ANCHORS);
        let mut n = first;
        loop {
            let traces = match chunk {
                Ok(c) if c.is_empty() => return Ok(out),
                Ok(c) => c,
                Err(h) => {
                    halt(h, &mut whole)?;
                    continue 'again;
                }
            };
            let search_chunk = || {
                traces
                    .par_iter()
                    .enumerate()
                    .flat_map_iter(|(i, t)| {
                        let name = || format!("{} (source {}, an earlier epoch)", t.device, t.source);
                        search
                            .of_earlier(n + i, &t.anchors)
                            .into_iter()
                            .map(move |m| (m.copy, m.original, name(), m.finding))
                    })
                    .collect::<Vec<_>>()
            };
            let (matches, next) = rayon::join(search_chunk, || past.next_chunk(HISTORY_CHUNK_ANCHORS));
            out.extend(matches);
            n += traces.len();
            chunk = next;
        }
    }
}

/// Reputation entering the epoch (the multiplier) and after it (written to `trust.parquet`);
/// a `reputation` finding for every active device below 1.
fn reputations(
    cx: &Context,
    cheating: &BTreeSet<u32>,
    device_of: &[u32],
    placed: &mut Placed,
) -> Result<(Vec<Ppm>, Vec<TrustRow>)> {
    let mut state: BTreeMap<String, (u64, bool)> = BTreeMap::new();
    if let Some(prev) = cx.lake.epochs()?.into_iter().rev().find(|e| *e < cx.epoch) {
        let p = cx.lake.epoch_dir(&prev).join("trust.parquet");
        if p.exists() {
            for (d, r, _) in read_rows(&p, tables::trust_rows)? {
                state.insert(d, (r, false));
            }
        }
    }
    let first_source: BTreeMap<u32, usize> = device_of.iter().enumerate().rev().map(|(s, d)| (*d, s)).collect();
    let mut trust_w = Vec::with_capacity(cx.devices.len());
    for (d, name) in cx.devices.iter().enumerate() {
        let before = state.get(name).map_or(cx.k.initial, |s| s.0);
        trust_w.push(before);
        let flagged = cheating.contains(&(d as u32));
        state.insert(name.clone(), (reputation::next(before, flagged, cx.k), flagged));
        if before < crate::fixed::SCALE {
            placed.push((
                d as u32,
                first_source.get(&(d as u32)).copied().unwrap_or(usize::MAX),
                Finding {
                    detector: Detector::Reputation,
                    start_ms: cx.epoch.start_ms(),
                    end_ms: cx.epoch.end_ms() - 1,
                    measured: format!("trust {}.{:06}", before / 1_000_000, before % 1_000_000),
                    threshold: "1.000000".into(),
                    policy_key: "trust.reputation.penalty",
                    effect: Effect::Multiplier,
                    fixes: 0,
                    meters: 0,
                    detail: "points multiplied by the reputation earlier evidence left (trust.reputation.recovery per clean epoch)".into(),
                },
            ));
        }
    }
    let rows: Vec<TrustRow> = state.into_iter().map(|(d, (r, f))| (d, r, f)).collect();
    Ok((trust_w, rows))
}

fn write_flags(cx: &Context, per_source: &[SourceTrust], device_of: &[u32], placed: Placed) -> Result<String> {
    let row = |d: u32, s: usize, f: Finding| {
        let meta = cx.selected.get(s);
        FlagRow {
            device: cx.devices[d as usize].clone(),
            start_ms: f.start_ms,
            end_ms: f.end_ms,
            detector: f.detector.as_str().into(),
            source: meta.map(|m| m.hash.clone()).unwrap_or_default(),
            source_name: meta.map(|m| m.name.clone()).unwrap_or_default(),
            effect: f.effect.as_str().into(),
            measured: f.measured,
            threshold: f.threshold,
            policy_key: f.policy_key.into(),
            fixes: f.fixes,
            meters: f.meters,
            detail: f.detail,
        }
    };
    let mut rows: Vec<FlagRow> = placed.into_iter().map(|(d, s, f)| row(d, s, f)).collect();
    for (s, st) in per_source.iter().enumerate() {
        rows.extend(st.findings.iter().cloned().map(|f| row(device_of[s], s, f)));
    }
    rows.sort_unstable();
    let batches: Vec<_> = rows.chunks(tables::BATCH_ROWS).map(tables::flags_batch).collect();
    let batches = if batches.is_empty() {
        vec![tables::flags_batch(&[])]
    } else {
        batches
    };
    let bytes = tables::to_parquet(&tables::flags_schema(), &batches)
        .map_err(|e| super::outputs::pq_error("flags.parquet", e))?;
    put(cx.dir, "flags.parquet", &bytes)
}

fn write_fingerprints(
    cx: &Context,
    per_source: &[SourceTrust],
    device_of: &[u32],
    copied: &BTreeSet<usize>,
) -> Result<String> {
    use rayon::prelude::*;
    // Rows in (source hash, segment, time, cell) order: sources in hash order (hashes are
    // unique), each source's rows sorted as integers (segment, time, cell) — equal keys are equal
    // rows, so the unstable sort is exact. Streamed into the file a few batches at a time (at
    // 10^9 fixes the rows are ~5·10^7 and their batches, held whole, took ~5 GB); the batches
    // are cut every `BATCH_ROWS` rows as before, so the bytes are the same.
    let mut by_hash: Vec<usize> = (0..per_source.len()).filter(|s| !copied.contains(s)).collect();
    by_hash.sort_unstable_by(|a, b| cx.selected[*a].hash.cmp(&cx.selected[*b].hash));
    let row = |&(s, seg, time, cell): &(u32, u32, i64, u64)| {
        let s = s as usize;
        let dev = cx.devices[device_of[s] as usize].as_str();
        (dev, cx.selected[s].hash.as_str(), seg, cell, time)
    };
    let build = |rows: &[(u32, u32, i64, u64)]| tables::fingerprints_batch_of(rows.iter().map(row));
    let name = "fingerprints.parquet";
    let path = cx.dir.join(name);
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let file = tables::HashedFile::create(&path).map_err(io)?;
    let pq = |e| super::outputs::pq_error(name, e);
    let mut sink = tables::BatchSink::new(file, &tables::fingerprints_schema(), build)
        .map_err(pq)?
        .with_empty_batch();
    for group in by_hash.chunks(SOURCES_PER_WRITE) {
        let rows: Vec<Vec<(u32, u32, i64, u64)>> = group
            .par_iter()
            .map(|&s| {
                let mut rows: Vec<(u32, u32, i64, u64)> = Vec::new();
                for (seg, t) in &per_source[s].traces {
                    rows.extend(t.anchors.iter().map(|&(c, time)| (s as u32, *seg, time, c)));
                }
                rows.sort_unstable();
                rows
            })
            .collect();
        for r in rows {
            sink.append(r).map_err(pq)?;
        }
    }
    let sha = sink.finish().map_err(pq)?.finish().map_err(io)?;
    fail::fail_point!("epoch-staged-file");
    Ok(sha)
}

/// Sources whose fingerprint rows are gathered (in parallel) per write in `write_fingerprints`.
const SOURCES_PER_WRITE: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(hash: String, device: &str) -> SourceMeta {
        serde_json::from_value(serde_json::json!({
            "hash": hash, "device": device, "name": "x.parquet", "format": "parquet", "bytes": 1,
            "lines": {"total": 0, "fix": 0, "aux": 0, "ignored": 0, "blank": 0, "comment": 0,
                      "rejected": 0, "ignored_types": {}},
            "fixes": 0, "rejected": 0, "rejected_by_reason": {}
        }))
        .unwrap()
    }

    /// What `write_fingerprints` wrote before it streamed: every row gathered, sorted at once,
    /// cut into `BATCH_ROWS` batches and encoded as one file.
    fn all_at_once(cx: &Context, per_source: &[SourceTrust], device_of: &[u32], copied: &BTreeSet<usize>) -> Vec<u8> {
        let mut by_hash: Vec<usize> = (0..per_source.len()).collect();
        by_hash.sort_unstable_by(|a, b| cx.selected[*a].hash.cmp(&cx.selected[*b].hash));
        let mut rank = vec![0u32; per_source.len()];
        for (r, s) in by_hash.iter().enumerate() {
            rank[*s] = r as u32;
        }
        let mut rows: Vec<(u32, u32, i64, u64)> = Vec::new();
        for (s, st) in per_source.iter().enumerate().filter(|(s, _)| !copied.contains(s)) {
            for (seg, t) in &st.traces {
                rows.extend(t.anchors.iter().map(|&(c, time)| (rank[s], *seg, time, c)));
            }
        }
        rows.sort_unstable();
        let row = |&(r, seg, time, cell): &(u32, u32, i64, u64)| {
            let s = by_hash[r as usize];
            let dev = cx.devices[device_of[s] as usize].as_str();
            (dev, cx.selected[s].hash.as_str(), seg, cell, time)
        };
        let mut batches: Vec<_> = rows
            .chunks(tables::BATCH_ROWS)
            .map(|c| tables::fingerprints_batch_of(c.iter().map(row)))
            .collect();
        if batches.is_empty() {
            batches.push(tables::fingerprints_batch(&[]));
        }
        tables::to_parquet_parallel(&tables::fingerprints_schema(), &batches).unwrap()
    }

    #[test]
    fn fingerprints_streamed_a_few_sources_at_a_time_are_the_bytes_of_one_sort() {
        let d = tempfile::tempdir().unwrap();
        let lake = Lake::open(d.path().join("lake")).unwrap();
        let devices: Vec<String> = (0..7).map(|i| format!("car-{i}")).collect();
        // 300 sources (> SOURCES_PER_WRITE) of 1..3 traces, hashes not in source order,
        // anchors out of time order across traces, ~4.5·10^5 rows (> 4 batches per write).
        let mut rng = crate::test_rng::xorshift(0x9E37_79B9_7F4A_7C15);
        let mut next = |n: u64| rng() % n;
        let (mut selected, mut per_source, mut device_of) = (Vec::new(), Vec::new(), Vec::new());
        for s in 0..300u64 {
            let dev = next(7) as u32;
            selected.push(meta(
                format!("{:016x}", s.wrapping_mul(0x2545_F491_4F6C_DD1D) % (1 << 63)),
                &devices[dev as usize],
            ));
            device_of.push(dev);
            let traces = (0..1 + next(3) as u32)
                .map(|seg| {
                    let anchors = (0..next(3000)).map(|_| (next(50), next(1_000_000) as i64)).collect();
                    (
                        seg * 2,
                        Trace {
                            anchors,
                            ..Trace::default()
                        },
                    )
                })
                .collect();
            per_source.push(SourceTrust {
                findings: Vec::new(),
                traces,
            });
        }
        let k = crate::trust::policy::TrustPolicy::default().kernels().unwrap().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let cx = Context {
            lake: &lake,
            epoch: "2026-W47".parse().unwrap(),
            selected: &selected,
            devices: &devices,
            wallet_of: &[],
            k: &k,
            dir: &out,
        };
        for copied in [BTreeSet::new(), BTreeSet::from([0, 5, 299]), (0..300).collect()] {
            let sha = write_fingerprints(&cx, &per_source, &device_of, &copied).unwrap();
            let written = std::fs::read(out.join("fingerprints.parquet")).unwrap();
            assert_eq!(
                written,
                all_at_once(&cx, &per_source, &device_of, &copied),
                "{copied:?}"
            );
            assert_eq!(sha, crate::lake::sha256_hex(&written));
        }
    }
}

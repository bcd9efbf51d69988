//! Stage 1, sources: select the sources overlapping the epoch window and, in parallel (folded in
//! selection order, a bounded window ahead), read each one's fixes, apply the fix gates and trace
//! checks, and cover the accepted segments with H3 cells; rejections stream to
//! `rejections.parquet`, visits into the store.

use super::outputs::{finish_sink, pq_error, sink};
use super::visits::VisitStore;
use super::{EpochInputs, Progress};
use crate::cells::VisitMap;
use crate::epoch::Epoch;
use crate::fix::Fix;
use crate::lake::{Lake, Result, SourceMeta};
use crate::manifest;
use crate::report::{Reason, Rejection};
use crate::tables::{self, RejectionRow};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The lake's sources with fixes inside the epoch window (of `only`, when given), in hash order.
pub(super) fn select(lake: &Lake, e: &Epoch, only: Option<&BTreeSet<String>>) -> Result<Vec<SourceMeta>> {
    let (start, end) = (e.start_ms(), e.end_ms());
    Ok(lake
        .sources()?
        .into_iter()
        .filter(|m| matches!((m.min_time_ms, m.max_time_ms), (Some(a), Some(b)) if a < end && b >= start))
        .filter(|m| only.is_none_or(|o| o.contains(&m.hash)))
        .collect())
}

/// The devices of the selected sources, in name order (a device's index is its position).
pub(super) fn devices(selected: &[SourceMeta]) -> Vec<String> {
    let set: BTreeSet<&str> = selected.iter().map(|m| m.device.as_str()).collect();
    set.into_iter().map(str::to_string).collect()
}

/// What covering every source gave, besides the visits in the store.
pub(super) struct Covered {
    pub store: VisitStore,
    pub fixes_in: u64,
    pub accepted: u64,
    pub rejected: BTreeMap<String, u64>,
    pub inputs: Vec<manifest::Input>,
    /// `rejections.parquet` with every row in, not yet closed: [`close_rejections`]
    /// encodes its last row groups (the pipeline does that on a thread of its own while trust
    /// and scoring run).
    pub rejections: RejectionSink,
    /// Per selected source (same order): its trust findings and traces (empty with trust off).
    pub trust: Vec<super::trust::SourceTrust>,
}

/// Clean and cover every selected source into a visit store (spilling to `dir/.spill` past the
/// lake's budget); rejections stream into `dir/rejections.parquet`. Worker threads (as many as
/// the rayon pool has) take the sources in selection order, one at a time as they free up (a
/// long source does not hold the others back), while this thread folds the results in selection order; at most a window of
/// `threads × 4` results, or more while they hold at most [`AHEAD_FIXES`] fixes, waits to be
/// folded, so memory holds the visits plus that window.
pub(super) fn cover_all(
    lake: &Lake,
    plan: &super::Plan,
    inputs: &EpochInputs,
    dir: &Path,
    progress: Progress,
) -> Result<Covered> {
    let (selected, devices, k) = (&plan.selected, &plan.devices, &plan.k);
    let device_idx: HashMap<&str, u32> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i as u32))
        .collect();
    let done = AtomicU64::new(0);
    let total = selected.len() as u64;
    progress("clean + cover", 0, total);
    let mut fold = SourceFold::new(dir, inputs.layout)?;
    // Sized once for every fix (a visit holds one fix or more) up to the budget, instead of
    // grown by doubling on this thread while the workers wait for it: address space only — a
    // page of it is backed once a row is written there. (A quarter of the fixes, the simulated
    // fleet's visits per fix, fell short by 3 % at 10^7 fixes: the last doubling, a copy of
    // 100 MB into 200 MB of fresh pages, stalled the fold for ~25 ms at the end of the stage.)
    let fixes: u64 = selected.iter().map(|m| m.fixes).sum();
    let mut store = VisitStore {
        rows: Vec::with_capacity(fixes.min(lake.max_visits() as u64) as usize),
        max: lake.max_visits(),
        spill: None,
        dir: dir.join(super::SPILL_DIR),
        sorted: false,
    };
    // Sources are read a window ahead of the ones being covered: on a lake the page cache does
    // not hold, the disk reads the next files while the cores cover these (a hint, no effect on
    // any output).
    let window = (rayon::current_num_threads() * 4).max(8);
    let process = |i: usize| {
        let ahead = if i == 0 {
            1..window.min(selected.len())
        } else {
            i + window - 1..i + window
        };
        for m in selected.get(ahead).into_iter().flatten() {
            lake.prefetch_fixes(&m.hash);
        }
        let m = &selected[i];
        let r = process_source(
            lake,
            m,
            device_idx[m.device.as_str()],
            inputs,
            k,
            plan.road_cells.as_ref(),
        );
        progress("clean + cover", done.fetch_add(1, Ordering::Relaxed) + 1, total);
        r
    };
    let ahead = Window::by_cost(window, selected.iter().map(|m| m.fixes + m.rejected), AHEAD_FIXES);
    in_order(selected.len(), ahead, &process, |i, r| {
        let r = r?;
        store.add(r.visits)?;
        fold.add(&selected[i], r.part)
    })?;
    fold.finish(store)
}

/// Fixes (accepted and rejected) the sources computed ahead of the fold may hold past the
/// window of `threads × 4`: the fold stops a few times for a second or more (each spill of the
/// visit store writes a budget of visits to disk), and a window of 8 results (~0.1 s of work)
/// left the workers waiting for most of it: ~2.8 CPU-seconds idle in a 31 s run at 10^8 fixes,
/// 349.6 → 324.3 s at 10^9. 2^22 fixes are ~100 MB of results (~25 bytes a fix: visits, trust
/// traces, rejections).
const AHEAD_FIXES: u64 = 1 << 22;

/// How far [`in_order`]'s workers may run ahead of the fold: always `min` items, and past that
/// while the items from the oldest not yet folded to the one about to start cost at most
/// `budget` together.
#[derive(Debug, Clone)]
pub(super) struct Window {
    min: usize,
    /// `prefix[i]`: the summed cost of items `0..i` (empty: nothing allowed past `min`).
    prefix: Vec<u64>,
    budget: u64,
}

impl From<usize> for Window {
    fn from(min: usize) -> Window {
        Window {
            min,
            prefix: Vec::new(),
            budget: 0,
        }
    }
}

impl Window {
    /// `min` items, or more while the items in flight cost at most `budget` (`costs`: one per
    /// item, in order).
    pub fn by_cost(min: usize, costs: impl Iterator<Item = u64>, budget: u64) -> Window {
        let mut prefix = vec![0u64];
        prefix.extend(costs.scan(0u64, |sum, c| {
            *sum = sum.saturating_add(c);
            Some(*sum)
        }));
        Window { min, prefix, budget }
    }

    /// Whether item `i` may start while the items below `folded` have been folded.
    fn allows(&self, folded: usize, i: usize) -> bool {
        i < folded + self.min.max(1)
            || self
                .prefix
                .get(i + 1)
                .is_some_and(|&end| end - self.prefix[folded.min(i)] <= self.budget)
    }
}

/// Run `work(0..n)` on as many threads as the rayon pool has and hand each result to `fold` on
/// this thread in index order, with at most a `window` of results computed ahead of the fold.
/// The first error `fold` returns stops the run (no new item starts) and is returned.
///
/// The workers are scoped threads of their own, not pool tasks: a worker waits while it is a
/// window ahead, and `fold` may itself use the pool (the rejections sink encodes in parallel) —
/// pool threads parked on the window would leave it no thread to run on. From inside a pool
/// thread it works a window at a time on the pool instead.
fn in_order<T: Send>(
    n: usize,
    window: impl Into<Window>,
    work: &(dyn Fn(usize) -> T + Sync),
    mut fold: impl FnMut(usize, T) -> Result<()>,
) -> Result<()> {
    let ahead: Window = window.into();
    if rayon::current_thread_index().is_some() {
        let window = ahead.min.max(1);
        for start in (0..n).step_by(window) {
            let results: Vec<T> = (start..(start + window).min(n)).into_par_iter().map(work).collect();
            for (i, r) in (start..).zip(results) {
                fold(i, r)?;
            }
        }
        return Ok(());
    }
    let next = AtomicU64::new(0);
    // (folded so far, stop): workers wait while the window does not allow their item yet.
    let gate = (std::sync::Mutex::new((0usize, false)), std::sync::Condvar::new());
    // A worker's panic travels to this thread as a value, so the fold never waits for an index
    // that will not come.
    type Handed<T> = (usize, std::thread::Result<T>);
    let (tx, rx) = std::sync::mpsc::channel::<Handed<T>>();
    let worker = |tx: std::sync::mpsc::Sender<Handed<T>>| loop {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
        if i >= n {
            return;
        }
        {
            let mut g = gate.0.lock().unwrap_or_else(|e| e.into_inner());
            while !g.1 && !ahead.allows(g.0, i) {
                g = gate.1.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            if g.1 {
                return;
            }
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(i)));
        if tx.send((i, r)).is_err() {
            return;
        }
    };
    std::thread::scope(|s| {
        for _ in 0..rayon::current_num_threads() {
            let tx = tx.clone();
            s.spawn(|| worker(tx));
        }
        drop(tx);
        // However this thread leaves (done, an error, a panic), waiting workers are released.
        let _release = Release(&gate);
        let mut waiting: BTreeMap<usize, std::thread::Result<T>> = BTreeMap::new();
        for i in 0..n {
            let r = loop {
                if let Some(r) = waiting.remove(&i) {
                    break r;
                }
                let (j, r) = rx.recv().expect("a worker hands in every index below n");
                waiting.insert(j, r);
            };
            fold(i, r.unwrap_or_else(|p| std::panic::resume_unwind(p)))?;
            gate.0.lock().unwrap_or_else(|e| e.into_inner()).0 = i + 1;
            gate.1.notify_all();
        }
        Ok(())
    })
}

/// Sets the stop flag of an [`in_order`] gate when dropped.
struct Release<'a>(&'a (std::sync::Mutex<(usize, bool)>, std::sync::Condvar));

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0 .0.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.0 .1.notify_all();
    }
}

/// Fold the sources' parts, in selection order, into the counts, the manifest's inputs,
/// `rejections.parquet` (streamed) and the trust stage's input.
pub(super) struct SourceFold {
    fixes_in: u64,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    inputs: Vec<manifest::Input>,
    rejections: RejectionSink,
    trust: Vec<super::trust::SourceTrust>,
}

/// The streamed `rejections.parquet`.
pub(super) type RejectionSink = super::outputs::Sink<RejectionRow, fn(&[RejectionRow]) -> arrow_array::RecordBatch>;

/// Close `rejections.parquet` in `dir`; its SHA-256.
pub(super) fn close_rejections(dir: &Path, rejections: RejectionSink) -> Result<String> {
    finish_sink(dir, "rejections.parquet", rejections)
}

impl SourceFold {
    pub(super) fn new(dir: &Path, layout: tables::Layout) -> Result<SourceFold> {
        let build: fn(&[RejectionRow]) -> arrow_array::RecordBatch = tables::rejections_to_batch;
        Ok(SourceFold {
            fixes_in: 0,
            accepted: 0,
            rejected: BTreeMap::new(),
            inputs: Vec::new(),
            rejections: sink(dir, "rejections.parquet", &tables::rejections_schema(), layout, build)?
                .with_empty_batch(),
            trust: Vec::new(),
        })
    }

    /// Add the next source (in selection order).
    pub(super) fn add(&mut self, m: &SourceMeta, r: SourcePart) -> Result<()> {
        self.fixes_in += r.fixes_in;
        self.accepted += r.accepted;
        // Counted by reason first (a source's rejections come in runs of one reason), then by
        // name: one string and one map entry per reason, not per rejected fix.
        let mut by_reason: std::collections::BTreeMap<crate::report::Reason, u64> = Default::default();
        for row in &r.rejections {
            *by_reason.entry(row.rejection.reason).or_default() += 1;
        }
        for (reason, n) in by_reason {
            *self.rejected.entry(reason.to_string()).or_default() += n;
        }
        self.rejections
            .extend(r.rejections)
            .map_err(|e| pq_error("rejections.parquet", e))?;
        self.trust.push(r.trust);
        self.inputs.push(manifest::Input {
            source: m.hash.clone(),
            device: m.device.clone(),
            name: m.name.clone(),
            fixes_sha256: r.fixes_sha,
        });
        Ok(())
    }

    /// What was covered, with the visits in `store` (`rejections.parquet` still open).
    pub(super) fn finish(self, store: VisitStore) -> Result<Covered> {
        Ok(Covered {
            store,
            fixes_in: self.fixes_in,
            accepted: self.accepted,
            rejected: self.rejected,
            inputs: self.inputs,
            rejections: self.rejections,
            trust: self.trust,
        })
    }
}

/// One source's stage-1 result besides its visits: what the fold over the sources needs.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct SourcePart {
    pub fixes_sha: String,
    pub fixes_in: u64,
    pub accepted: u64,
    pub rejections: Vec<RejectionRow>,
    pub trust: super::trust::SourceTrust,
}

pub(super) struct SourceResult {
    pub part: SourcePart,
    pub visits: VisitMap,
}

fn stage_of(r: Reason) -> &'static str {
    match r {
        Reason::TimeBackwards | Reason::DuplicateTime | Reason::Teleport => "trace",
        Reason::UnregisteredDevice => "registry",
        _ => "quality",
    }
}

/// Camera telemetry: the IMU readings the trust rules hold against the track, in time order
/// (none without trust or without a camera).
fn source_imu(
    lake: &Lake,
    meta: &SourceMeta,
    k: &crate::policy::Kernels,
) -> Result<Vec<crate::ingest::telemetry::ImuSample>> {
    if k.trust.is_none() || meta.imu == 0 {
        return Ok(Vec::new());
    }
    let mut v = lake.read_imu(&meta.hash)?;
    v.sort_by_key(|s| (s.time_us, s.sensor, s.line));
    Ok(v)
}

pub(super) fn process_source(
    lake: &Lake,
    meta: &SourceMeta,
    device_idx: u32,
    inputs: &EpochInputs,
    k: &crate::policy::Kernels,
    road_cells: Option<&crate::places::CellSet>,
) -> Result<SourceResult> {
    let (mut fixes, fixes_sha) = lake.read_epoch_fixes(&meta.hash)?;
    let e = &inputs.epoch;
    let (start, end) = (e.start_ms(), e.end_ms());
    // In place, without moving a fix while none has been dropped (most sources lie inside the
    // window).
    fixes.retain(|f| f.time_ms >= start && f.time_ms < end);
    let mut out = SourceResult {
        part: SourcePart {
            fixes_sha,
            fixes_in: fixes.len() as u64,
            ..SourcePart::default()
        },
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
        out.part.rejections = fixes
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
    // A source's visits are about a quarter of its fixes (a car at 1 Hz spends several fixes
    // in a res-12 cell): sized once instead of grown from empty (the map's order never reaches
    // an output, visits are sorted before scoring).
    out.visits.reserve(fixes.len() / 4);
    let (verdicts, geo) = crate::quality::clean_geo(&fixes, k);
    if let Some(tk) = &k.trust {
        out.part.trust.teleport_runs(&fixes, &verdicts, tk);
    }
    let received = meta.received_at.as_deref().and_then(super::trust::parse_ms);
    let cells = index_accepted(&fixes, &verdicts, k);
    let imu_withheld = whole_source_checks(lake, meta, &fixes, &verdicts, &cells, &geo, k, road_cells, &mut out)?;
    let cover = |segment: &[usize], seg: u32, out: &mut SourceResult| {
        let seg_fixes: Vec<&Fix> = segment.iter().map(|&i| &fixes[i]).collect();
        let seg_cells: Vec<crate::cells::Indexed> =
            segment.iter().map(|&i| cells[i].0.map(|c| (c, cells[i].2))).collect();
        let Some(tk) = &k.trust else {
            crate::cells::cover_indexed(&seg_fixes, &seg_cells, device_idx, k.resolution, &mut out.visits);
            return;
        };
        if imu_withheld {
            return; // the source's IMU contradicts its track: no segment covers a cell
        }
        let anchor: Vec<Option<u64>> = segment.iter().map(|&i| cells[i].1).collect();
        let (points, step_m) = segment_geo(&geo, segment, &fixes);
        let c = crate::trust::check_segment_with(&seg_fixes, Some(&anchor), Some((&points, &step_m)), received, tk);
        let (mut run, mut run_cells): (Vec<&Fix>, Vec<crate::cells::Indexed>) = (Vec::new(), Vec::new());
        for r in &c.runs {
            run.clear();
            run.extend(r.iter().map(|&i| seg_fixes[i]));
            run_cells.clear();
            run_cells.extend(r.iter().map(|&i| seg_cells[i]));
            crate::cells::cover_indexed(&run, &run_cells, device_idx, k.resolution, &mut out.visits);
        }
        out.part.trust.add(seg, c);
    };
    let mut segment: Vec<usize> = Vec::new();
    let mut seg_id = None;
    // The verdicts are consumed: each rejection's detail moves into its row.
    for (i, (f, v)) in fixes.iter().zip(verdicts).enumerate() {
        match v {
            crate::quality::Verdict::Accepted(s) => {
                if seg_id != Some(s) {
                    if let (Some(prev), Some(&last)) = (seg_id, segment.last()) {
                        out.part
                            .trust
                            .clock_step(fixes[last].time_ms, f.time_ms, k.trust.as_ref());
                        cover(&segment, prev, &mut out);
                    }
                    segment.clear();
                    seg_id = Some(s);
                }
                segment.push(i);
                out.part.accepted += 1;
            }
            crate::quality::Verdict::Rejected(r, d) => out.part.rejections.push(reject(f, r, d)),
        }
    }
    if let Some(seg) = seg_id {
        cover(&segment, seg, &mut out);
    }
    Ok(out)
}

/// Per fix, its cell at the scoring resolution and (with trust on) its replay-anchor cell at
/// `anchor_resolution` — indexed once per accepted fix (one face projection for both
/// resolutions: [`crate::cells::PointIndexer::to_cells`], the same cells as two h3o `to_cell` calls) and shared by the
/// cover, the replay anchors and the off-road check; `(None, None)` for a rejected fix or a
/// position h3o refuses.
fn index_accepted(
    fixes: &[Fix],
    verdicts: &[crate::quality::Verdict],
    k: &crate::policy::Kernels,
) -> Vec<(Option<h3o::CellIndex>, Option<u64>, Option<crate::cells::Hex>)> {
    // Consecutive fixes are close: the indexer reuses the previous fix's cell and parents.
    let mut ix = crate::cells::PointIndexer::default();
    fixes
        .iter()
        .zip(verdicts)
        .map(|(f, v)| {
            if !matches!(v, crate::quality::Verdict::Accepted(_)) {
                return (None, None, None);
            }
            let Ok(ll) = h3o::LatLng::new(f.lat, f.lon) else {
                return (None, None, None);
            };
            match &k.trust {
                None => {
                    let (cell, hex) = ix.to_cell_hex(ll, k.resolution);
                    (Some(cell), None, hex)
                }
                Some(tk) => {
                    let [(cell, hex), (anchor, _)] = ix.to_cells_hex(ll, [k.resolution, tk.anchor_resolution]);
                    (Some(cell), Some(u64::from(anchor)), hex)
                }
            }
        })
        .collect()
}

/// What cleaning measured for one segment (`segment`: indices of its accepted fixes, in order):
/// each fix's point, and the metres from the previous accepted fix of the segment (which is
/// `segment[q - 1]`; `NaN` for the first or when not measured).
fn segment_geo(
    geo: &crate::quality::Geo,
    segment: &[usize],
    fixes: &[Fix],
) -> (Vec<crate::quality::GeoPoint>, Vec<f64>) {
    let points = segment
        .iter()
        .map(|&i| geo.points[i].unwrap_or_else(|| crate::quality::GeoPoint::new(fixes[i].lat, fixes[i].lon)))
        .collect();
    let step_m = segment
        .iter()
        .enumerate()
        .map(|(q, &i)| if q == 0 { f64::NAN } else { geo.step_m[i] })
        .collect();
    (points, step_m)
}

/// The off-road detector over a source's accepted segments (trust on and a road network
/// configured; `None` otherwise); `cells` as [`index_accepted`]; the steps cleaning measured
/// (`geo`) are not measured again; `road_cells` the road network's cells as a set.
fn off_road(
    fixes: &[Fix],
    verdicts: &[crate::quality::Verdict],
    cells: &[(Option<h3o::CellIndex>, Option<u64>, Option<crate::cells::Hex>)],
    geo: &crate::quality::Geo,
    road_cells: Option<&crate::places::CellSet>,
    k: &crate::policy::Kernels,
) -> Option<crate::trust::Finding> {
    let roads = road_cells?;
    let rk = k.off_road?;
    k.trust.as_ref()?;
    // Each accepted fix as it comes, with its step from the previous accepted fix of its segment
    // (`Geo::step_m`) and its position (`Geo::points`); a fresh pass per call.
    let track = || {
        // Consecutive fixes mostly share a grandparent cell: its mask answers without a search.
        let mut near = crate::places::Near::default();
        let mut last = None;
        let accepted = fixes.iter().zip(verdicts).zip(cells).enumerate();
        accepted.filter_map(move |(i, ((f, v), c))| {
            let crate::quality::Verdict::Accepted(s) = v else {
                return None;
            };
            let first = last != Some(*s);
            last = Some(*s);
            Some(crate::trust::roads::TrackFix {
                time_ms: f.time_ms,
                first,
                on_road: c.0.is_some_and(|c| roads.contains_near(u64::from(c), &mut near)),
                step_m: geo.step_m[i],
                point: geo.points[i].unwrap_or_else(|| crate::quality::GeoPoint::new(f.lat, f.lon)),
            })
        })
    };
    crate::trust::roads::off_road_over(track, &rk)
}

/// Whole-source trust checks before any cell is covered: the camera's IMU against the track
/// (withholds every segment) and the off-road share. Returns whether the IMU withheld the source.
#[allow(clippy::too_many_arguments)]
fn whole_source_checks(
    lake: &Lake,
    meta: &SourceMeta,
    fixes: &[Fix],
    verdicts: &[crate::quality::Verdict],
    cells: &[(Option<h3o::CellIndex>, Option<u64>, Option<crate::cells::Hex>)],
    geo: &crate::quality::Geo,
    k: &crate::policy::Kernels,
    road_cells: Option<&crate::places::CellSet>,
    out: &mut SourceResult,
) -> Result<bool> {
    let imu_withheld = match (&k.trust, source_imu(lake, meta, k)?) {
        (Some(tk), imu) if !imu.is_empty() => {
            let accepted: Vec<&Fix> = fixes
                .iter()
                .zip(verdicts)
                .filter(|(_, v)| matches!(v, crate::quality::Verdict::Accepted(_)))
                .map(|(f, _)| f)
                .collect();
            let found = crate::trust::imu::check_source(&accepted, &imu, tk);
            let withheld = !found.is_empty();
            out.part.trust.findings.extend(found);
            withheld
        }
        _ => false,
    };
    if !imu_withheld && let Some(f) = off_road(fixes, verdicts, cells, geo, road_cells, k) {
        out.part.trust.findings.push(f);
    }
    Ok(imu_withheld)
}

#[cfg(test)]
mod tests {
    use super::{in_order, Window};
    use crate::lake::Error;

    #[test]
    fn rule_window_allows_min_items_ahead_then_more_while_the_items_in_flight_fit_the_budget() {
        // Costs 5, 1, 1, 1, 10, 1: prefix 0, 5, 6, 7, 8, 18, 19.
        let w = Window::by_cost(2, [5, 1, 1, 1, 10, 1].into_iter(), 8);
        let table = [
            // (folded, item, allowed)
            (0, 0, true),  // within min
            (0, 1, true),  // within min
            (0, 3, true),  // items 0..=3 cost 8 <= 8
            (0, 4, false), // items 0..=4 cost 18
            (1, 4, false), // items 1..=4 cost 13
            (4, 4, true),  // within min again
            (4, 5, true),  // within min
            (3, 5, false), // items 3..=5 cost 12, past min
            (0, 6, false), // past the last item: no cost known
        ];
        for (folded, i, want) in table {
            assert_eq!(w.allows(folded, i), want, "folded {folded}, item {i}");
        }
        // A plain count: exactly `min` ahead.
        let count = Window::from(3);
        assert!(count.allows(10, 12) && !count.allows(10, 13));
    }

    #[test]
    fn in_order_keeps_the_items_in_flight_within_a_cost_window() {
        let costs: Vec<u64> = (0..200u64).map(|i| 1 + (i * 7) % 13).collect();
        let w = Window::by_cost(2, costs.iter().copied(), 20);
        let folded = std::sync::atomic::AtomicUsize::new(0);
        let violations = std::sync::atomic::AtomicUsize::new(0);
        let work = |i: usize| {
            // `folded` is stored before the gate moves, so it is never behind what the gate saw.
            if !w.allows(folded.load(std::sync::atomic::Ordering::SeqCst), i) {
                violations.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_micros(((i as u64 * 31) % 7) * 30));
            i
        };
        let mut seen = Vec::new();
        in_order(costs.len(), w.clone(), &work, |i, r| {
            assert_eq!(i, r);
            seen.push(i);
            if i % 10 == 0 {
                // A slow fold (a spill): the workers would run far ahead without the window.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            folded.store(i + 1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, (0..costs.len()).collect::<Vec<_>>());
        assert_eq!(violations.into_inner(), 0);
    }

    #[test]
    fn in_order_folds_every_index_in_order_whatever_the_finishing_order() {
        for window in [1, 2, 8, 100] {
            let mut seen = Vec::new();
            // Early items are slow: later ones finish first and must wait to be folded.
            let work = |i: usize| {
                std::thread::sleep(std::time::Duration::from_micros((50 - i as u64 % 50) * 20));
                i * 3
            };
            in_order(120, window, &work, |i, r| {
                assert_eq!(r, i * 3);
                seen.push(i);
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, (0..120).collect::<Vec<_>>(), "window {window}");
        }
        // From inside a one-thread pool (the fold cannot block the only worker).
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let mut seen = Vec::new();
        pool.install(|| {
            in_order(30, 4, &|i| i, |i, r| {
                seen.push((i, r));
                Ok(())
            })
        })
        .unwrap();
        assert_eq!(seen, (0..30).map(|i| (i, i)).collect::<Vec<_>>());
    }

    #[test]
    fn in_order_fold_may_use_the_pool_while_workers_wait_a_window_ahead() {
        // The fold encodes on the pool (as the rejections sink does) while workers are parked a
        // window ahead: this must finish, in order.
        let mut sums = Vec::new();
        in_order(
            64,
            2,
            &|i| (0..20_000u64).map(|x| x * i as u64).collect::<Vec<_>>(),
            |i, v| {
                use rayon::prelude::*;
                sums.push((i, v.par_chunks(1000).map(|c| c.iter().sum::<u64>()).sum::<u64>()));
                Ok(())
            },
        )
        .unwrap();
        let want: Vec<(usize, u64)> = (0..64).map(|i| (i, (0..20_000u64).sum::<u64>() * i as u64)).collect();
        assert_eq!(sums, want);
    }

    #[test]
    fn in_order_stops_at_the_first_folded_error() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let work = |i: usize| {
            started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            i
        };
        let mut folded = 0;
        let e = in_order(10_000, 4, &work, |i, _| {
            folded += 1;
            if i == 37 {
                Err(Error::Invalid(format!("item {i}")))
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(e.to_string().contains("item 37"), "{e}");
        assert_eq!(folded, 38);
        // Nothing ran more than a window (plus one per thread) past the error.
        assert!(started.into_inner() < 38 + 4 + 2 * rayon::current_num_threads() + 2);
    }

    #[test]
    fn in_order_hands_a_workers_panic_to_the_caller_without_hanging() {
        let work = |i: usize| {
            assert!(i != 5, "boom at 5");
            i
        };
        let r = std::panic::catch_unwind(|| in_order(50, 2, &work, |_, _| Ok(())));
        assert!(r.is_err());
    }
}

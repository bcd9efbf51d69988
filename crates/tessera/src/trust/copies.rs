//! Replays, copies and co-travel: a trace that follows another trace.
//!
//! A trace is fingerprinted by its *anchors*: the H3 cells at `trust.copies.anchor_resolution`
//! it passes through, kept when a hash of the cell falls in one of `trust.copies.anchor_sampling`
//! buckets (so every trace over a road samples the same cells, and the fingerprint is small),
//! each with the middle time of the trace's stay in it. The fingerprints of paid traces are kept
//! in the lake (`epochs/E/fingerprints.parquet`) for `trust.copies.history_epochs` epochs.
//!
//! Two traces *match* when at least `trust.copies.min_anchors` consecutive anchors, over at least
//! `trust.copies.min_match_s`, are the same cells with a constant time offset: the offsets spread
//! by at most `trust.copies.max_spread_s`. From trust rule set 5 a match beyond
//! `trust.copies.co_travel_s` (a `replay`) also needs the original to depart from a steady pace
//! by `trust.copies.min_unsteady_m` over it ([`super::warp`]'s measure): two honest vehicles at
//! one steady speed — trucks at their limiters — keep a constant offset too.
//! A copy keeps its original's timing (noise, resampling, re-encoding and a shifted clock do not
//! change the time between anchors); two honest drivers on one road do not (lights, traffic and
//! speed drift their offset by more than a few seconds within a few anchors). Candidates are found
//! through shingles — pairs of consecutive anchors with the time between them, bucketed — so the
//! search is by hash, not over all pairs of traces.
//!
//! A copy whose clock is scaled (its offset drifting) is matched by [`super::warp`] from the
//! same votes; a copy driven the other way by `trust::reverse`, each trace looked up a second
//! time, reversed.
//!
//! Of two matching traces only the first *received* is paid on the matched part (a trace from an
//! earlier epoch always came first; equal receipt times fall back to the source hash order, never
//! to a device id). An offset within `trust.copies.co_travel_s` (for a scaled clock: at both ends
//! of the match) is `co_travel` (devices in one car or a convoy, ranked as one contributor),
//! beyond it `replay`.

use super::policy::TrustKernels;
use super::{reverse, Detector, Effect, Finding};
use crate::fix::Fix;
use std::collections::HashMap;

/// A deterministic 64-bit mix (splitmix64 finaliser).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The anchors of the fixes `idx` (in time order): `(cell, middle time of the stay)`.
///
/// ```
/// use tessera::{fix::Fix, trust::copies::anchors};
/// let k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// let f: Vec<Fix> = (0..600).map(|i| Fix::new(i * 1000, 60.0 + i as f64 * 1e-4, 25.0)).collect();
/// let refs: Vec<&Fix> = f.iter().collect();
/// let idx: Vec<usize> = (0..600).collect();
/// let a = anchors(&refs, &idx, &k);
/// assert!(a.len() > 10 && a.windows(2).all(|w| w[0].1 < w[1].1));
/// ```
pub fn anchors(fixes: &[&Fix], idx: &[usize], k: &TrustKernels) -> Vec<(u64, i64)> {
    // Consecutive fixes are close: the indexer reuses the previous fix's cell and parents.
    let mut ix = crate::cells::PointIndexer::default();
    anchors_from(fixes, idx, k, |i| {
        let f = fixes[i];
        h3o::LatLng::new(f.lat, f.lon)
            .ok()
            .map(|ll| u64::from(ix.to_cell(ll, k.anchor_resolution)))
    })
}

/// [`anchors`] with the fixes' cells at `k.anchor_resolution` given by `cell(i)` (`None`: a
/// position h3o refuses), for a caller that indexed them already.
pub(crate) fn anchors_from(
    fixes: &[&Fix],
    idx: &[usize],
    k: &TrustKernels,
    mut cell: impl FnMut(usize) -> Option<u64>,
) -> Vec<(u64, i64)> {
    let mut out = Vec::new();
    let mut run: Option<(u64, i64, i64)> = None;
    let close = |r: Option<(u64, i64, i64)>, out: &mut Vec<(u64, i64)>| {
        if let Some((c, a, b)) = r
            && mix(c).is_multiple_of(k.anchor_sampling)
        {
            out.push((c, a + (b - a) / 2));
        }
    };
    for &i in idx {
        let f = fixes[i];
        let Some(c) = cell(i) else {
            continue;
        };
        match &mut run {
            Some((rc, _, b)) if *rc == c => *b = f.time_ms,
            _ => {
                close(run.take(), &mut out);
                run = Some((c, f.time_ms, f.time_ms));
            }
        }
    }
    close(run, &mut out);
    out
}

/// One trace to compare.
#[derive(Debug, Clone, Copy)]
pub struct CopyTrace<'a> {
    /// The device (any numbering; equal numbers are the same device).
    pub device: u64,
    /// Receipt order: (received at, UTC ms; tie-break such as the source hash's rank).
    pub received: (i64, u64),
    /// From an earlier epoch (an original, never a copy).
    pub historic: bool,
    /// Anchors in time order.
    pub anchors: &'a [(u64, i64)],
}

/// A trace found following an earlier-received one.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyMatch {
    /// Index of the copy.
    pub copy: usize,
    /// Index of the original.
    pub original: usize,
    /// The evidence; `start_ms..=end_ms` (the copy's time) is withheld.
    pub finding: Finding,
}

/// Low bits of a shingle that hold its time bucket; the high bits are a hash of its two cells.
const DQ_BITS: u32 = 24;

/// The shingle of the anchor pair `a` → `b` in time bucket `dq`: the pair's hash in the high
/// bits, the bucket (offset to be non-negative, clamped) in the low [`DQ_BITS`], so the three
/// buckets a pair is compared within are adjacent keys. Two pairs can share a key without
/// sharing their cells or bucket (a 40-bit hash, a clamped bucket): matches are checked on the
/// anchors themselves ([`CopySearch::hits`]).
fn shingle(a: u64, b: u64, dq: i64) -> u64 {
    let half = 1i64 << (DQ_BITS - 1);
    let bucket = dq.saturating_add(half).clamp(0, (1 << DQ_BITS) - 1) as u64;
    (mix(a ^ mix(b)) & !((1u64 << DQ_BITS) - 1)) | bucket
}

/// Find the copies among `traces`; the result is sorted by (copy, original).
///
/// The same matches as [`CopySearch`] gives: the traces that are not `historic` indexed, queried
/// by each of them ([`CopySearch::among`]) and by each historic one
/// ([`CopySearch::of_earlier`]).
///
/// ```
/// use tessera::trust::copies::{detect, CopyTrace};
/// let mut k = tessera::policy::Policy::default().kernels().unwrap().trust.unwrap();
/// // made-up cells have no centres to measure a departure from a steady pace by
/// // (`trust.copies.min_unsteady_m`, which a `replay` needs from trust rule set 5)
/// k.unsteady_replays = false;
/// // the same 16 anchors, 86 400 s later (+/- 1 s of noise), received later
/// let a: Vec<(u64, i64)> = (0..16).map(|i| (1000 + i as u64, i * 27_000 + (i * i) * 900)).collect();
/// let b: Vec<(u64, i64)> = a.iter().enumerate().map(|(i, &(c, t))| (c, t + 86_400_000 + (i as i64 % 3 - 1) * 700)).collect();
/// let t = [CopyTrace { device: 1, received: (1, 0), historic: false, anchors: &a },
///          CopyTrace { device: 2, received: (2, 0), historic: false, anchors: &b }];
/// let m = detect(&t, &k);
/// assert_eq!((m[0].copy, m[0].original, m[0].finding.detector.as_str()), (1, 0, "replay"));
/// ```
pub fn detect(traces: &[CopyTrace], k: &TrustKernels) -> Vec<CopyMatch> {
    use rayon::prelude::*;
    let search = CopySearch::new(traces, k);
    let mut out = search.among();
    out.par_extend(
        traces
            .par_iter()
            .enumerate()
            .filter(|(_, t)| t.historic)
            .flat_map_iter(|(a, t)| search.of_earlier(a, t.anchors)),
    );
    out.sort_by_key(|m| (m.copy, m.original));
    out
}

/// The copy search over one epoch's traces: the consecutive anchor pairs of the traces that are
/// not `historic` indexed by shingle, then queried by each of those traces (copies among them,
/// [`CopySearch::among`]) and by each earlier trace passed by ([`CopySearch::of_earlier`]) —
/// so the earlier epochs' fingerprints can be read one trace at a time, never held or indexed
/// whole. A pair of traces gets the same votes from either side (a shingle matches within one
/// time bucket either way), and `best_run` sorts them: the matches do not depend on which side
/// asked.
pub struct CopySearch<'a> {
    traces: &'a [CopyTrace<'a>],
    index: ShingleIndex,
    q: i64,
    k: &'a TrustKernels,
}

impl<'a> CopySearch<'a> {
    /// Index the anchor pairs of `traces` that are not `historic` (16 bytes per pair).
    ///
    /// ```
    /// // see `detect`
    /// ```
    pub fn new(traces: &'a [CopyTrace<'a>], k: &'a TrustKernels) -> CopySearch<'a> {
        let q = k.max_spread_ms.max(1000);
        CopySearch {
            traces,
            index: ShingleIndex::new(traces, q),
            q,
            k,
        }
    }

    /// The indexed traces that follow an earlier-received indexed trace, sorted by (copy,
    /// original); indices are into the `traces` given to [`CopySearch::new`].
    ///
    /// ```
    /// // see `detect`
    /// ```
    pub fn among(&self) -> Vec<CopyMatch> {
        // Each trace's candidates are independent: queried in parallel, then put in (copy,
        // original) order — one forward match and one reversed at most per pair, in that order,
        // so the order of the work does not show.
        use rayon::prelude::*;
        let mut out: Vec<CopyMatch> = self
            .traces
            .par_iter()
            .enumerate()
            .flat_map_iter(|(b, tb)| originals_of(self, b, tb))
            .collect();
        out.sort_by_key(|m| (m.copy, m.original));
        out
    }

    /// The indexed traces that follow the earlier trace `anchors` (time order; from an earlier
    /// epoch, so always the first received), sorted by copy; `original` is put in the matches
    /// as given.
    ///
    /// ```
    /// // see `detect`
    /// ```
    pub fn of_earlier(&self, original: usize, anchors: &[(u64, i64)]) -> Vec<CopyMatch> {
        let k = self.k;
        // candidate copy → votes (i in the copy, j in the original)
        let mut votes = Votes::default();
        let long = |b: u32| self.traces[b as usize].anchors.len() >= k.fewest_anchors();
        self.hits(anchors, long, |j, b, i| votes.entry(b).or_default().push((i, j)));
        let mut out = best_runs(votes, k, |b, v| {
            best_run((anchors, original), (self.traces[b as usize].anchors, b as usize), v, k)
        });
        if k.reversed {
            // the earlier trace reversed against the indexed ones forward: the votes counted
            // as the copy reversed against the earlier trace forward, as `originals_of` counts
            let mut votes = Votes::default();
            let na = anchors.len();
            self.hits(&reverse::reversed(anchors), long, |p, b, i| {
                let nb = self.traces[b as usize].anchors.len();
                let vote = (reverse::flipped_pair(nb, i), reverse::flipped_pair(na, p));
                votes.entry(b).or_default().push(vote);
            });
            out.extend(best_runs(votes, k, |b, v| {
                let rb = reverse::reversed(self.traces[b as usize].anchors);
                reverse::reversed_match((anchors, original), (&rb, b as usize), v, k)
                    .into_iter()
                    .collect()
            }));
            out.sort_by_key(|m| m.copy); // stable: a forward match before a reversed one
        }
        out
    }

    /// Call `hit(pair, trace, trace's pair)` for each indexed anchor pair of a trace that
    /// passes `keep` with the cells of consecutive anchors `pair` of `anchors` and a time bucket
    /// within one of theirs: one index lookup per pair (the three buckets are adjacent keys),
    /// each entry found checked on the indexed trace's anchors.
    ///
    /// The pairs go [`LOOKAHEAD`] at a time, each step over all of them before the next (the
    /// directory slots, then the slots' first entries, then the entries' anchors): a step's
    /// loads do not wait on each other, so their cache misses overlap where one pair after the
    /// other waited for three in a row (the index outgrows the caches from ~10^8 fixes). The
    /// same calls in the same order.
    fn hits(&self, anchors: &[(u64, i64)], keep: impl Fn(u32) -> bool, mut hit: impl FnMut(u32, u32, u32)) {
        let bucket = |w: &[(u64, i64)]| (w[1].1 - w[0].1).div_euclid(self.q);
        let pairs = anchors.len().saturating_sub(1);
        // per pair of the step: its time bucket, its shingles in buckets dq - 1 and dq + 1, and
        // the range of index entries (first its directory slot, then the entries between them)
        let mut found = [(0i64, 0u64, 0u64, 0usize, 0usize); LOOKAHEAD];
        for start in (0..pairs).step_by(LOOKAHEAD) {
            let batch = start..pairs.min(start + LOOKAHEAD);
            let mut touched = 0u64;
            for (p, f) in batch.clone().zip(&mut found) {
                let w = &anchors[p..p + 2];
                let dq = bucket(w);
                let (lo, hi) = (
                    shingle(w[0].0, w[1].0, dq.saturating_sub(1)),
                    shingle(w[0].0, w[1].0, dq.saturating_add(1)),
                );
                let (from, to) = self.index.slot_range(lo);
                *f = (dq, lo, hi, from, to);
                touched ^= self.index.entries.get(from).map_or(0, |e| e.0);
            }
            for f in found.iter_mut().take(batch.len()) {
                (f.3, f.4) = self.index.within((f.3, f.4), f.1, f.2);
                for &(_, t, j) in &self.index.entries[f.3..f.4] {
                    touched ^= self.traces[t as usize].anchors[j as usize].0;
                }
            }
            std::hint::black_box(touched);
            for (p, &(dq, _, _, from, to)) in batch.zip(&found) {
                let w = &anchors[p..p + 2];
                for &(_, t, j) in &self.index.entries[from..to] {
                    if !keep(t) {
                        continue;
                    }
                    let x = &self.traces[t as usize].anchors[j as usize..j as usize + 2];
                    if x[0].0 == w[0].0 && x[1].0 == w[1].0 && (bucket(x) - dq).abs() <= 1 {
                        hit(p as u32, t, j);
                    }
                }
            }
        }
    }
}

/// Anchor pairs looked up together in [`CopySearch::hits`].
const LOOKAHEAD: usize = 16;

/// Candidate trace → votes `(i in the copy, j in the original)`.
type Votes = HashMap<u32, Vec<(u32, u32)>, rustc_hash::FxBuildHasher>;

/// The candidates with enough votes, in trace order, through `best` (a [`best_run`]).
fn best_runs(votes: Votes, k: &TrustKernels, best: impl Fn(u32, Vec<(u32, u32)>) -> Vec<CopyMatch>) -> Vec<CopyMatch> {
    let mut cands: Vec<(u32, Vec<(u32, u32)>)> = votes
        .into_iter()
        .filter(|v| v.1.len() + 1 >= k.fewest_anchors())
        .collect();
    cands.sort_unstable_by_key(|c| c.0);
    cands.into_iter().flat_map(|(t, v)| best(t, v)).collect()
}

/// Every consecutive anchor pair of every trace that is not `historic` by shingle: `(shingle,
/// trace, pair)` entries sorted, so the three time buckets of a pair of cells are one slice,
/// found through a directory on the shingle's top bits (its hash bits: ~4 entries per slot), one
/// lookup where a shingle per bucket took three cache misses at 10^8 fixes. One array of
/// 16 bytes per entry, not split in two after sorting (at 2·10^8 entries the split held 6 GB).
/// (A hash map of one `Vec` per shingle cost seconds of allocation at 10^8 fixes; a binary
/// search of the whole array, seconds of cache misses.)
struct ShingleIndex {
    entries: Vec<(u64, u32, u32)>,
    /// `dir[s]..dir[s + 1]`: the entries whose shingle's top `bits` bits are `s`.
    dir: Vec<usize>,
    bits: u32,
}

impl ShingleIndex {
    fn new(traces: &[CopyTrace], q: i64) -> ShingleIndex {
        use rayon::prelude::*;
        let mut entries: Vec<(u64, u32, u32)> = traces
            .par_iter()
            .enumerate()
            .filter(|(_, tr)| !tr.historic)
            .flat_map_iter(|(t, tr)| {
                tr.anchors.windows(2).enumerate().map(move |(i, w)| {
                    let key = shingle(w[0].0, w[1].0, (w[1].1 - w[0].1).div_euclid(q));
                    (key, t as u32, i as u32)
                })
            })
            .collect();
        entries.par_sort_unstable(); // (trace, pair) is unique: the unstable sort is exact
        let bits = (entries.len() / 4).max(1).ilog2().min(64 - DQ_BITS); // slots on the hash bits only
        let mut dir = vec![0usize; (1usize << bits) + 1];
        for e in &entries {
            dir[slot(e.0, bits) + 1] += 1;
        }
        for i in 1..dir.len() {
            dir[i] += dir[i - 1];
        }
        ShingleIndex { entries, dir, bits }
    }

    /// The range of `entries` in the directory slot of shingle `lo` (one slot for every time
    /// bucket of a pair of cells: the slot is on the hash bits).
    fn slot_range(&self, lo: u64) -> (usize, usize) {
        let s = slot(lo, self.bits);
        (self.dir[s], self.dir[s + 1])
    }

    /// The entries of `slot` (a [`ShingleIndex::slot_range`]) with a shingle from `lo` to `hi`:
    /// those of a pair of cells in buckets `dq - 1` to `dq + 1` (and any other pair of the same
    /// 40-bit hash and bucket).
    fn within(&self, slot: (usize, usize), lo: u64, hi: u64) -> (usize, usize) {
        let near = &self.entries[slot.0..slot.1];
        let from = near.partition_point(|e| e.0 < lo);
        let to = from + near[from..].partition_point(|e| e.0 <= hi);
        (slot.0 + from, slot.0 + to)
    }
}

/// The directory slot of a shingle: its top `bits` bits (0 with no bits).
fn slot(key: u64, bits: u32) -> usize {
    key.checked_shr(64 - bits).unwrap_or(0) as usize
}

/// The matches of trace `b` against the earlier-received indexed traces.
fn originals_of(search: &CopySearch, b: usize, tb: &CopyTrace) -> Vec<CopyMatch> {
    let (traces, k) = (search.traces, search.k);
    if tb.historic || tb.anchors.len() < k.fewest_anchors() {
        return Vec::new();
    }
    // candidate original → votes (i in b, j in a)
    let mut votes = Votes::default();
    let first = |a: u32| {
        let ta = &traces[a as usize];
        a as usize != b && ta.received < tb.received && ta.device != tb.device
    };
    search.hits(tb.anchors, first, |i, a, j| votes.entry(a).or_default().push((i, j)));
    let mut out = best_runs(votes, k, |a, v| {
        best_run((traces[a as usize].anchors, a as usize), (tb.anchors, b), v, k)
    });
    if k.reversed {
        // driven the other way: this trace reversed against the indexed ones forward
        let rb = reverse::reversed(tb.anchors);
        let mut votes = Votes::default();
        search.hits(&rb, first, |i, a, j| votes.entry(a).or_default().push((i, j)));
        out.extend(best_runs(votes, k, |a, v| {
            reverse::reversed_match((traces[a as usize].anchors, a as usize), (&rb, b), v, k)
                .into_iter()
                .collect()
        }));
        out.sort_by_key(|m| m.original); // stable: a forward match before a reversed one
    }
    out
}

/// The matches of the copy `b` against the original `a` from the votes `v` `(i in the copy, j
/// in the original)`: the longest run of consecutive matched anchors with a constant offset, or
/// with a scaled clock ([`super::warp`]) where that covers more of the copy's time; from trust
/// rule set 7 (`k.every_chain`), after a `replay`, the same again on the votes off its clock —
/// a copy cut into files, each shifted by its own offset, is caught on every clock (at most
/// [`MAX_CLOCKS`]).
fn best_run(
    (ta, a): (&[(u64, i64)], usize),
    (tb, b): (&[(u64, i64)], usize),
    mut v: Vec<(u32, u32)>,
    k: &TrustKernels,
) -> Vec<CopyMatch> {
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    while v.len() + 1 >= k.fewest_anchors() && out.len() < MAX_CLOCKS {
        let constant = constant_run(ta, tb, &v, k);
        let scaled = super::warp::scaled_run(ta, tb, &v, k)
            .map(|r| (scaled_finding(ta, tb, &r, &v, k), r.on_clock(ta, tb, &v, k)));
        let (finding, on) = match (constant, scaled) {
            (Some(c), Some(s)) if s.0.end_ms - s.0.start_ms > c.0.end_ms - c.0.start_ms => s,
            (Some(c), _) => c,
            (None, Some(s)) => s,
            (None, None) => break,
        };
        let again = k.every_chain && finding.detector == Detector::Replay;
        out.push(CopyMatch {
            copy: b,
            original: a,
            finding,
        });
        if !again {
            break;
        }
        v.retain(|p| on.binary_search(p).is_err());
    }
    out
}

/// The most clocks a copy is matched on against one original (trust rule set 7).
pub const MAX_CLOCKS: usize = 8;

/// `replay`, or `co_travel` for an offset within `trust.copies.co_travel_s`.
fn copy_detector(offsets: &[i64], k: &TrustKernels) -> Detector {
    if offsets.iter().all(|o| o.abs() <= k.co_travel_ms) {
        Detector::CoTravel
    } else {
        Detector::Replay
    }
}

/// The finding of a time-scaled run: the copy's time from its first to its last anchor.
fn scaled_finding(
    ta: &[(u64, i64)],
    tb: &[(u64, i64)],
    r: &super::warp::ScaledRun,
    v: &[(u32, u32)],
    k: &TrustKernels,
) -> Finding {
    let (first, last) = (r.anchors[0], r.anchors[r.anchors.len() - 1]);
    let off = |p: (u32, u32)| tb[p.0 as usize].1 - ta[p.1 as usize].1;
    let (o0, o1) = (off(first), off(last));
    let mut f = Finding {
        detector: copy_detector(&[o0, o1], k),
        start_ms: tb[first.0 as usize].1,
        end_ms: tb[last.0 as usize].1,
        measured: format!(
            "{} anchors at a time scale {:.3} (offset {:.1} s to {:.1} s, spread {:.1} s), where the \
             original departs {} from a steady pace",
            r.anchors.len(),
            r.scale,
            o0 as f64 / 1000.0,
            o1 as f64 / 1000.0,
            r.spread_ms / 1000.0,
            r.departure().measured()
        ),
        threshold: format!(
            "{} anchors over {} s, scale within 1/{s}..{s}, spread ≤ {} s, departure {}",
            k.scaled_anchors,
            2 * k.min_match_ms / 1000,
            k.max_spread_ms / 1000,
            super::warp::Departure::threshold(k),
            s = k.max_time_scale
        ),
        policy_key: "trust.copies.max_time_scale",
        effect: Effect::WithholdWindow,
        fixes: 0,
        meters: 0,
        detail: String::new(),
    };
    if k.every_chain && f.detector == Detector::Replay {
        let on = r.on_clock(ta, tb, v, k);
        let (a0, b0) = (ta[first.1 as usize].1, tb[first.0 as usize].1);
        let to_original = |t: i64| a0 + ((t - b0) as f64 / r.scale).round() as i64;
        let span = (first.0 as usize, last.0 as usize);
        let reach = super::bridge::reach(ta, tb, &on, span, to_original, k.bridge_m);
        widen(&mut f, tb, reach, k.bridge_m, "on this clock");
    }
    f
}

/// The longest run of consecutive matched anchors with a constant offset, if long enough (`v`
/// sorted and deduplicated); from trust rule set 5 the longest whose original departs from a
/// steady pace, when it is a `replay`.
fn constant_run(
    ta: &[(u64, i64)],
    tb: &[(u64, i64)],
    v: &[(u32, u32)],
    k: &TrustKernels,
) -> Option<(Finding, Vec<(u32, u32)>)> {
    let off = |&(i, j): &(u32, u32)| tb[i as usize].1 - ta[j as usize].1;
    // the densest offset window of width max_spread
    let mut offs: Vec<i64> = v.iter().map(off).collect();
    offs.sort_unstable();
    let (mut best, mut lo) = ((0usize, 0i64), 0usize);
    for hi in 0..offs.len() {
        while offs[hi] - offs[lo] > k.max_spread_ms {
            lo += 1;
        }
        if hi + 1 - lo > best.0 {
            best = (hi + 1 - lo, offs[lo]);
        }
    }
    let in_window = |p: &(u32, u32)| (best.1..=best.1 + k.max_spread_ms).contains(&off(p));
    // chains of shingles in that window with i and j advancing together (gaps of ≤ 2), longest
    // first (of equal lengths, the first found)
    let mut chains: Vec<Vec<(u32, u32)>> = vec![Vec::new()];
    for p in v.iter().filter(|p| in_window(p)) {
        let chain = chains.last_mut().expect("one chain at least");
        match chain.last() {
            Some(l) if p.0 == l.0 => continue,
            Some(l) if p.0 <= l.0 + 3 && p.1 > l.1 && p.1 <= l.1 + 3 => chain.push(*p),
            None => chain.push(*p),
            _ => chains.push(vec![*p]),
        }
    }
    chains.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for chain in chains.iter().filter(|c| !c.is_empty()) {
        match constant_finding(ta, tb, chain, k) {
            Ok(mut f) => {
                let on: Vec<(u32, u32)> = v.iter().copied().filter(in_window).collect();
                if k.every_chain && f.detector == Detector::Replay {
                    let mut o: Vec<i64> = chain.iter().map(off).collect();
                    o.sort_unstable();
                    let (median, span) = (
                        o[o.len() / 2],
                        (chain[0].0 as usize, chain[chain.len() - 1].0 as usize + 1),
                    );
                    let reach = super::bridge::reach(ta, tb, &on, span, |t| t - median, k.bridge_m);
                    widen(&mut f, tb, reach, k.bridge_m, "at this offset");
                }
                return Some((f, on));
            }
            Err(Miss::Steady) => continue,
            Err(Miss::Short) => return None,
        }
    }
    None
}

/// Trust rule set 7: widen a `replay`'s window to the copy's anchors `r.lo..=r.hi` (its chains
/// on the replay's clock, [`super::bridge::reach`] within `max_m`), with their count in the
/// evidence.
fn widen(f: &mut Finding, tb: &[(u64, i64)], r: super::bridge::Reach, max_m: f64, clock: &str) {
    f.start_ms = f.start_ms.min(tb[r.lo].1);
    f.end_ms = f.end_ms.max(tb[r.hi].1);
    if r.more > 0 {
        f.measured.push_str(&format!(
            "; withheld with {} more anchor pairs matched {clock}, the anchors between within {max_m} m \
             of the original's track",
            r.more
        ));
    }
}

/// Why a chain of matched anchors is not a finding.
enum Miss {
    /// Fewer than `min_anchors` anchors or shorter than `min_match_s` (so is every shorter chain).
    Short,
    /// A `replay` where the original keeps a steady pace (trust rule set 5).
    Steady,
}

/// The finding of one chain of matched anchors with a constant offset.
fn constant_finding(
    ta: &[(u64, i64)],
    tb: &[(u64, i64)],
    chain: &[(u32, u32)],
    k: &TrustKernels,
) -> Result<Finding, Miss> {
    let off = |&(i, j): &(u32, u32)| tb[i as usize].1 - ta[j as usize].1;
    let anchors = chain.len() + 1;
    if anchors < k.min_anchors {
        return Err(Miss::Short);
    }
    let (first, last) = (chain[0], chain[chain.len() - 1]);
    let mut o: Vec<i64> = chain.iter().map(off).collect();
    o.sort_unstable();
    let (median, spread) = (o[o.len() / 2], o[o.len() - 1] - o[0]);
    let start_ms = tb[first.0 as usize].1;
    let end_ms = tb[last.0 as usize + 1].1;
    if end_ms - start_ms < k.min_match_ms {
        return Err(Miss::Short);
    }
    let detector = copy_detector(&[median], k);
    let mut measured = format!(
        "{anchors} anchors at an offset of {:.1} s (spread {:.1} s)",
        median as f64 / 1000.0,
        spread as f64 / 1000.0
    );
    let mut threshold = format!("{} anchors, spread ≤ {} s", k.min_anchors, k.max_spread_ms / 1000);
    if detector == Detector::Replay && k.unsteady_replays {
        // one steady speed is not a fingerprint: trucks at their limiters match at any offset
        let d = super::warp::departure(ta, chain, k);
        if !d.reaches(k) {
            return Err(Miss::Steady);
        }
        measured.push_str(&format!(", the original departs {} from a steady pace", d.measured()));
        threshold.push_str(&if k.paced_departure {
            format!(", a departure {}", super::warp::Departure::threshold(k))
        } else {
            format!(", a departure ≥ {:.0} m", k.min_unsteady_m)
        });
    }
    Ok(Finding {
        detector,
        start_ms,
        end_ms,
        measured,
        threshold,
        policy_key: "trust.copies.min_anchors",
        effect: Effect::WithholdWindow,
        fixes: 0,
        meters: 0,
        detail: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::testing::*;

    #[test]
    fn rule_each_anchor_pair_hits_the_indexed_pairs_of_its_cells_within_one_time_bucket() {
        // Few distinct cells and times: many pairs share cells, across and within traces; gaps
        // of years put buckets past the shingle's clamp, where keys collide and the anchors decide.
        let mut next = lcg(7);
        let k = k();
        for n_traces in [0usize, 1, 3, 40] {
            let owned: Vec<Vec<(u64, i64)>> = (0..n_traces)
                .map(|_| {
                    let mut t = 0;
                    (0..next(60))
                        .map(|_| {
                            t += 1000 * (1 + next(3) as i64) * (k.max_spread_ms / 1000).max(1);
                            t += [0, 0, 0, 0, 0, 5 << 40, 6 << 40][next(7) as usize];
                            (next(5), t)
                        })
                        .collect()
                })
                .collect();
            let traces: Vec<CopyTrace> = owned
                .iter()
                .map(|a| CopyTrace {
                    device: 0,
                    received: (0, 0),
                    historic: false,
                    anchors: a,
                })
                .collect();
            let search = CopySearch::new(&traces, &k);
            let bucket = |w: &[(u64, i64)]| (w[1].1 - w[0].1).div_euclid(search.q);
            let mut hits = 0;
            for tr in &traces {
                let mut got: Vec<(u32, u32, u32)> = Vec::new();
                search.hits(tr.anchors, |_| true, |p, t, j| got.push((p, t, j)));
                got.sort_unstable();
                let mut want = Vec::new();
                for (p, w) in tr.anchors.windows(2).enumerate() {
                    for (t, other) in traces.iter().enumerate() {
                        for (j, x) in other.anchors.windows(2).enumerate() {
                            if x[0].0 == w[0].0 && x[1].0 == w[1].0 && (bucket(x) - bucket(w)).abs() <= 1 {
                                want.push((p as u32, t as u32, j as u32));
                            }
                        }
                    }
                }
                assert_eq!(got, want, "{n_traces} traces");
                hits += got.len();
            }
            let pairs: usize = traces.iter().map(|t| t.anchors.len().saturating_sub(1)).sum();
            assert_eq!(search.index.entries.len(), pairs);
            assert!(hits >= pairs, "every pair hits itself");
        }
    }

    /// Every pair of traces compared anchor pair by anchor pair: the votes of `detect` without
    /// the shingle index, from the copy's side only.
    fn detect_pair_by_pair(traces: &[CopyTrace], k: &TrustKernels) -> Vec<CopyMatch> {
        let q = k.max_spread_ms.max(1000);
        let dq = |w: &[(u64, i64)]| (w[1].1 - w[0].1).div_euclid(q);
        let mut out = Vec::new();
        for (b, tb) in traces.iter().enumerate() {
            if tb.historic || tb.anchors.len() < k.fewest_anchors() {
                continue;
            }
            for (a, ta) in traces.iter().enumerate() {
                let first = ta.historic || ta.received < tb.received;
                if a == b || !first || (ta.device == tb.device && !ta.historic) {
                    continue;
                }
                let mut v = Vec::new();
                for (i, wb) in tb.anchors.windows(2).enumerate() {
                    for (j, wa) in ta.anchors.windows(2).enumerate() {
                        if wa[0].0 == wb[0].0 && wa[1].0 == wb[1].0 && (dq(wa) - dq(wb)).abs() <= 1 {
                            v.push((i as u32, j as u32));
                        }
                    }
                }
                if v.len() + 1 >= k.fewest_anchors() {
                    out.extend(best_run((ta.anchors, a), (tb.anchors, b), v, k));
                }
            }
        }
        out
    }

    #[test]
    fn rule_earlier_traces_streamed_past_the_index_find_the_matches_of_comparing_every_pair() {
        let mut next = lcg(11);
        // the search, not the evidence: these made-up cells have no centres to measure a pace by
        let k = TrustKernels {
            unsteady_replays: false,
            ..k()
        };
        let mut found = [0usize; 2]; // matches with a current, a historic original
        for round in 0..30 {
            // a few base routes over 6 cells; traces are noisy, shifted copies of them
            let routes: Vec<Vec<(u64, i64)>> = (0..3)
                .map(|_| {
                    let mut t = 0;
                    (0..10 + next(30))
                        .map(|_| {
                            t += 20_000 + next(40_000) as i64;
                            (next(6), t)
                        })
                        .collect()
                })
                .collect();
            let owned: Vec<Vec<(u64, i64)>> = (0..2 + next(12))
                .map(|_| {
                    let r = &routes[next(3) as usize];
                    let shift = [0, 60_000, 86_400_000][next(3) as usize] + next(2000) as i64;
                    let from = next(r.len() as u64 / 2) as usize;
                    let mut copy = Vec::new();
                    for &(c, t) in &r[from..] {
                        let noise = next(1500) as i64 * (next(2) as i64 * 2 - 1);
                        if next(10) > 0 {
                            copy.push((c, t + shift + noise));
                        }
                    }
                    copy
                })
                .collect();
            let traces: Vec<CopyTrace> = owned
                .iter()
                .map(|a| CopyTrace {
                    device: next(4),
                    received: (next(5) as i64, next(3)),
                    historic: next(3) == 0,
                    anchors: a,
                })
                .collect();
            let got = detect(&traces, &k);
            let mut want = detect_pair_by_pair(&traces, &k);
            want.sort_by_key(|m| (m.copy, m.original));
            assert_eq!(got, want, "round {round}");
            for m in &got {
                found[usize::from(traces[m.original].historic)] += 1;
            }
        }
        assert!(found[0] > 10 && found[1] > 10, "{found:?}");
    }

    fn anchors_of(f: &[Fix]) -> Vec<(u64, i64)> {
        let idx: Vec<usize> = (0..f.len()).collect();
        anchors(&refs(f), &idx, &k())
    }

    fn shifted(f: &[Fix], dt_ms: i64, noise_m: f64, resample_ms: i64) -> Vec<Fix> {
        f.iter()
            .enumerate()
            .map(|(i, g)| {
                let mut h = g.clone();
                h.time_ms += dt_ms + resample_ms;
                let s = ((i * 7919) % 11) as f64 / 5.0 - 1.0;
                h.lat += noise_m * s / 111_195.0;
                h.lon += noise_m * -s / 55_000.0;
                h
            })
            .collect()
    }

    /// Two traces of devices 1 and 2, received at `ra` and `rb` (the first `historic` or not).
    fn two<'a>(a: &'a [(u64, i64)], ra: i64, historic: bool, b: &'a [(u64, i64)], rb: i64) -> [CopyTrace<'a>; 2] {
        [
            CopyTrace {
                device: 1,
                received: (ra, 0),
                historic,
                anchors: a,
            },
            CopyTrace {
                device: 2,
                received: (rb, 0),
                historic: false,
                anchors: b,
            },
        ]
    }

    fn run(orig: &[Fix], other: &[Fix]) -> Vec<CopyMatch> {
        copy_pair(orig, other, &k())
    }

    /// A 1,200-fix drive at 12 m/s with three stops of 35 s.
    fn stop_and_go() -> Vec<Fix> {
        along(1200, 1_763_000_000_000, stops(&[200, 600, 1000], 35))
    }

    #[test]
    fn rule_a_replay_shifted_by_a_day_with_noise_and_resampling_is_found() {
        let orig = stop_and_go();
        for (dt, noise, resample) in [(86_400_000, 4.0, 500), (3_600_000, 2.0, 0), (-10, 0.0, 0)] {
            let copy = shifted(&orig, dt, noise, resample);
            let m = run(&orig, &copy);
            assert_eq!(m.len(), 1, "{dt}: {m:?}");
            assert_eq!(m[0].copy, 1);
            // (the 4 m jitter of the first copy moves stopped fixes across a cell edge: its
            // chain ends at a stop, after 573 s)
            let span = m[0].finding.end_ms - m[0].finding.start_ms;
            assert!(span > 500_000, "{span}");
            let want = if dt.abs() <= 120_000 {
                Detector::CoTravel
            } else {
                Detector::Replay
            };
            assert_eq!(m[0].finding.detector, want);
        }
    }

    #[test]
    fn rule_min_unsteady_m_a_replay_needs_the_original_to_depart_from_a_steady_pace() {
        // Two vehicles at one steady speed a day apart (trucks at their limiters) keep a
        // constant offset: not a replay from trust rule set 5, a replay under set 4.
        let steady = drive(1200, 12.0, 2.0);
        let later = shifted(&steady, 86_400_000, 2.0, 0);
        assert!(run(&steady, &later).is_empty());
        let m = copy_pair(&steady, &later, &k().under_rules(4));
        assert_eq!(m[0].finding.detector, Detector::Replay);
        assert!(
            !m[0].finding.measured.contains("steady pace"),
            "{}",
            m[0].finding.measured
        );
        // one car or a convoy: co-travel needs no departure
        let m = run(&steady, &shifted(&steady, 30_000, 2.0, 0));
        assert_eq!(m[0].finding.detector, Detector::CoTravel);
        // a drive with stops: the replay is found, the departure its evidence
        let go = stop_and_go();
        let m = run(&go, &shifted(&go, 86_400_000, 2.0, 0));
        let f = &m[0].finding;
        assert_eq!(
            (f.detector, f.policy_key),
            (Detector::Replay, "trust.copies.min_anchors")
        );
        assert!(
            f.measured.contains("s at its pace) from a steady pace"),
            "{}",
            f.measured
        );
        assert_eq!(f.threshold, "14 anchors, spread ≤ 3 s, a departure ≥ 300 m and ≥ 25 s");
        // rule set 5's texts, for the epochs published under it
        let m = copy_pair(&go, &shifted(&go, 86_400_000, 2.0, 0), &k().under_rules(5));
        assert!(
            m[0].finding.measured.ends_with(" m from a steady pace"),
            "{}",
            m[0].finding.measured
        );
        assert_eq!(m[0].finding.threshold, "14 anchors, spread ≤ 3 s, a departure ≥ 300 m");
        // a higher threshold than the stops' 420 m: not matched
        let strict = TrustKernels {
            min_unsteady_m: 2000.0,
            ..k()
        };
        assert!(copy_pair(&go, &shifted(&go, 86_400_000, 2.0, 0), &strict).is_empty());
    }

    #[test]
    fn rule_min_unsteady_s_a_departure_must_also_last_at_the_originals_pace() {
        // The stop-and-go drive's stops last 35 s at 12 m/s: found with min_unsteady_s 25, not
        // with 60; its evidence gives the seconds at the measured pace.
        let go = stop_and_go();
        let copy = shifted(&go, 86_400_000, 2.0, 0);
        let m = copy_pair(&go, &copy, &k());
        let measured = &m[0].finding.measured;
        let secs: f64 = measured
            .split(" m (")
            .nth(1)
            .and_then(|r| r.split(" s at its pace").next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{measured}"));
        eprintln!("{measured}");
        assert!((25.0..=60.0).contains(&secs), "{measured}");
        let long = TrustKernels {
            min_unsteady_s: 60.0,
            ..k()
        };
        assert!(copy_pair(&go, &copy, &long).is_empty());
        // under rule set 5 there is no bound in seconds
        assert!(!copy_pair(&go, &copy, &long.under_rules(5)).is_empty());
    }

    #[test]
    fn rule_every_chain_a_replay_withholds_its_chains_on_the_clock_across_gaps_near_the_track() {
        // A copy a day later whose anchors 20-22 fell into neighbouring cells (receiver noise,
        // within 150 m of the original's track) and 40-42 into cells 2 km away (a drive of its
        // own): three chains at one offset. Rule set 7 withholds the first two chains and the
        // gap between (anchors 0-39); set 6 only the longest chain (anchors 0-19).
        let mut k = k();
        (k.unsteady_replays, k.max_time_scale) = (false, 1.0);
        let cell = |lat: f64, lng: f64| u64::from(h3o::LatLng::new(lat, lng).unwrap().to_cell(h3o::Resolution::Ten));
        let a: Vec<(u64, i64)> = (0..60)
            .map(|i| (cell(60.0, 25.0 + 0.004 * i as f64), i * 20_000))
            .collect();
        let mut b: Vec<(u64, i64)> = a
            .iter()
            .map(|&(c, t)| (c, t + 86_400_000 + (t / 20_000 % 2) * 500))
            .collect();
        for n in 20..23 {
            // a neighbouring cell that is no anchor of the original, near its track
            let near = h3o::CellIndex::try_from(a[n].0)
                .unwrap()
                .grid_disk::<Vec<_>>(1)
                .into_iter()
                .map(u64::from)
                .filter(|c| a.iter().all(|x| x.0 != *c))
                .find(|&c| super::super::bridge::off_track_m(&a, c, a[n].1).is_some_and(|d| d <= 150.0))
                .expect("a neighbour near the track");
            b[n].0 = near;
        }
        for (n, x) in b.iter_mut().enumerate().take(43).skip(40) {
            x.0 = cell(60.018, 25.0 + 0.004 * n as f64);
        }
        let t = two(&a, 1, false, &b, 2);
        let k7 = TrustKernels {
            every_chain: true,
            ..k.clone()
        };
        let f = &detect(&t, &k7)[0].finding;
        assert_eq!((f.start_ms, f.end_ms), (b[0].1, b[39].1));
        assert!(
            f.measured.ends_with(
                "; withheld with 16 more anchor pairs matched at this offset, the anchors between within \
                 150 m of the original's track"
            ),
            "{}",
            f.measured
        );
        let f = &detect(
            &t,
            &TrustKernels {
                every_chain: false,
                ..k
            },
        )[0]
        .finding;
        assert_eq!((f.start_ms, f.end_ms), (b[0].1, b[19].1));
        assert!(!f.measured.contains("withheld with"), "{}", f.measured);
    }

    #[test]
    fn rule_every_chain_a_copy_is_caught_on_every_clock_it_keeps() {
        // A copy uploaded as two files, the second shifted 360 s further (anchors 0-34 a day
        // later, 35-59 a day and 6 minutes later): rule set 7 matches both clocks, set 6 the
        // longer one only.
        let mut k = k();
        (k.unsteady_replays, k.max_time_scale) = (false, 1.0);
        let a: Vec<(u64, i64)> = (0..60).map(|i| (1000 + i as u64, i * 20_000)).collect();
        let b: Vec<(u64, i64)> = a
            .iter()
            .enumerate()
            .map(|(i, &(c, t))| (c, t + 86_400_000 + if i >= 35 { 360_000 } else { 0 }))
            .collect();
        let t = two(&a, 1, false, &b, 2);
        let k7 = TrustKernels {
            every_chain: true,
            ..k.clone()
        };
        let windows = |k: &TrustKernels| -> Vec<(i64, i64)> {
            detect(&t, k)
                .iter()
                .map(|m| (m.finding.start_ms, m.finding.end_ms))
                .collect()
        };
        assert_eq!(windows(&k7), [(b[0].1, b[34].1), (b[35].1, b[59].1)]);
        assert_eq!(
            windows(&TrustKernels {
                every_chain: false,
                ..k
            }),
            [(b[0].1, b[34].1)]
        );
    }

    #[test]
    fn rule_a_driver_on_the_same_road_at_another_speed_is_not_a_copy() {
        let orig = drive(1200, 12.0, 2.0);
        // same path, 8 % slower with its own stops: resample the path by distance
        let other: Vec<Fix> = (0..1300)
            .map(|i| {
                let s = (i as f64 * 0.92 + 40.0 * (i as f64 / 97.0).sin()).clamp(0.0, 1199.0);
                let (lo, f) = (s.floor() as usize, s.fract());
                let hi = (lo + 1).min(1199);
                let mut g = orig[lo].clone();
                g.lat += f * (orig[hi].lat - orig[lo].lat);
                g.lon += f * (orig[hi].lon - orig[lo].lon);
                g.time_ms = orig[0].time_ms + 7_200_000 + i as i64 * 1000;
                g
            })
            .collect();
        let m = run(&orig, &other);
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn rule_only_the_first_received_is_paid_and_history_is_always_first() {
        let orig = stop_and_go();
        let copy = shifted(&orig, 86_400_000, 2.0, 0);
        let (a, b) = (anchors_of(&orig), anchors_of(&copy));
        // the copy received first: the "original" is the copy
        let t = two(&a, 5, false, &b, 2);
        assert_eq!(detect(&t, &k())[0].copy, 0);
        let t = two(&a, 5, true, &b, 2);
        assert_eq!(detect(&t, &k())[0].copy, 1);
    }
}

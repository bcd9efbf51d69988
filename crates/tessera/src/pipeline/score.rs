//! Stage 3, score: the visits a range of cells at a time, in cell order, against the prior
//! coverage state of those cells; explain and coverage rows stream to their files, and what is
//! kept in memory is per recipient.

use super::outputs::{finish_sink, parts_sink, pq_error, sink, CoverageBuild, ExplainBuild, ExplainRows, Sink};
use super::prior::PriorCursor;
use super::visits::VisitStore;
use super::Progress;
use crate::lake::Result;
use crate::novelty::freshness::CellState;
use crate::novelty::{self, Scored, VisitRow};
use crate::spill;
use crate::state;
use crate::tables::{self, explain_batch_parts};
use rayon::prelude::*;
use std::collections::VecDeque;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Per recipient: points, devices, distinct cells with points.
#[derive(Default, Clone)]
pub(super) struct PerRecipient {
    pub points: u128,
    pub devices: BTreeSet<u32>,
    pub cells: u64,
    last_cell: Option<u64>,
}

/// Per-recipient totals while scoring, kept by index (no string lookup or set insertion per
/// scored row); [`Recipients::finish`] gives them keyed by recipient, as before.
struct Recipients<'a> {
    /// Distinct recipients, sorted.
    names: Vec<&'a str>,
    /// Each device's recipient (index into `names`).
    of_device: Vec<u32>,
    /// Per recipient; `None` until it has a scored row.
    per: Vec<Option<PerRecipient>>,
    /// Devices with a scored row.
    seen: Vec<bool>,
}

impl<'a> Recipients<'a> {
    fn new(wallet_of: &'a [String]) -> Recipients<'a> {
        let names: Vec<&str> = wallet_of
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let of_device = wallet_of
            .iter()
            .map(|w| names.binary_search(&w.as_str()).expect("every wallet is a name") as u32)
            .collect();
        Recipients {
            per: vec![None; names.len()],
            names,
            of_device,
            seen: vec![false; wallet_of.len()],
        }
    }

    fn add(&mut self, s: &Scored) {
        let d = s.row.device as usize;
        self.seen[d] = true;
        let ent = self.per[self.of_device[d] as usize].get_or_insert_with(PerRecipient::default);
        ent.points += u128::from(s.points);
        // Scored rows come in cell order (across parts too): a recipient's rows of one cell are
        // contiguous, so a change of cell is a new distinct cell.
        if s.points > 0 && ent.last_cell != Some(s.row.cell) {
            ent.cells += 1;
            ent.last_cell = Some(s.row.cell);
        }
    }

    fn finish(mut self) -> BTreeMap<&'a str, PerRecipient> {
        for (d, _) in self.seen.iter().enumerate().filter(|(_, s)| **s) {
            let r = self.of_device[d] as usize;
            self.per[r]
                .as_mut()
                .expect("a seen device's recipient has a row")
                .devices
                .insert(d as u32);
        }
        self.names
            .into_iter()
            .zip(self.per)
            .filter_map(|(n, p)| p.map(|p| (n, p)))
            .collect()
    }
}

/// Scores the visits a range of cells at a time, in cell order, and streams every per-visit and
/// per-cell output; what is left in memory is per recipient.
pub(super) struct Scorer<'a> {
    devices: &'a [String],
    trust: Option<&'a super::trust::Judged>,
    wallet_of: &'a [String],
    k: &'a crate::policy::Kernels,
    epoch: i64,
    prior: PriorCursor,
    per: Recipients<'a>,
    places: &'a crate::places::Places,
    place_stats: super::places::PlaceStats<'a>,
    explain: Sink<Scored, ExplainBuild<'a>>,
    coverage: Sink<(u64, CellState), CoverageBuild>,
    visits: u64,
    cells: u64,
    new_cells: u64,
    /// Visits scored at a time ([`crate::lake::Lake::score_rows`]).
    piece_rows: usize,
}

/// Visits from which an epoch's explain and coverage are encoded on threads of their own
/// ([`Scorer::new`]): at 10^7 fixes (2.6 M visits) and 10^8 that is 1–2 % faster (alternated
/// runs, same bytes); at 10^6 (0.25 M visits) starting the threads cost more than it gained.
const PIPELINED_VISITS: usize = 1 << 20;

/// Pieces scored at once (in parallel) while the ones before them are absorbed: the first
/// pieces of an epoch are scored on both cores instead of on one while nothing is there to
/// absorb yet.
const PIECES_AT_ONCE: usize = 2;

impl<'a> Scorer<'a> {
    /// Score the visits of the cells below `hi` (`None`: all remaining), sorted by (cell,
    /// device), in pieces of about `piece_rows` (the lake's [`crate::lake::Lake::score_rows`])
    /// cut at cell boundaries; every earlier call covered lower cells. Pipelined: while
    /// [`PIECES_AT_ONCE`] pieces are scored (in parallel), the parts scored before them are
    /// absorbed (their explain and coverage rows encoded) — the same parts, absorbed in the same
    /// order, so the same bytes.
    fn sorted(&mut self, rows: &[VisitRow], hi: Option<u64>) -> Result<()> {
        let mut pieces: Vec<(usize, usize, Option<u64>)> = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let mut end = (start + self.piece_rows).min(rows.len());
            while end < rows.len() && rows[end].cell == rows[end - 1].cell {
                end += 1;
            }
            let piece_hi = if end < rows.len() { Some(rows[end].cell) } else { hi };
            pieces.push((start, end, piece_hi));
            start = end;
        }
        if rows.is_empty() {
            pieces.push((0, 0, hi));
        }
        let mut scored: Vec<Part> = Vec::new();
        for pair in pieces.chunks(PIECES_AT_ONCE) {
            let work = pair
                .iter()
                .map(|&(start, end, piece_hi)| Ok((start..end, self.prior.take_below(piece_hi)?)))
                .collect::<Result<Vec<_>>>()?;
            let cx = self.part_context();
            let (parts, absorbed) = rayon::join(
                || {
                    work.par_iter()
                        .map(|(range, prior)| score_part(&cx, &rows[range.clone()], prior))
                        .collect::<Vec<Part>>()
                },
                || std::mem::take(&mut scored).into_iter().try_for_each(|p| self.absorb(p)),
            );
            absorbed?;
            scored = parts;
        }
        scored.into_iter().try_for_each(|p| self.absorb(p))
    }

    /// The rules a piece is scored under (references the scorer holds, not the scorer: a piece
    /// is scored while the previous one is absorbed).
    fn part_context(&self) -> PartContext<'a> {
        PartContext {
            devices: self.devices,
            trust: self.trust,
            k: self.k,
            epoch: self.epoch,
            places: self.places,
        }
    }

    /// Fold one scored range of cells (every earlier one covered lower cells) into the totals
    /// and the streamed files.
    pub(super) fn absorb(&mut self, part: Part) -> Result<()> {
        let Part {
            scored,
            coverage,
            visits,
            new_cells,
        } = part;
        self.place_stats.add(&scored, self.wallet_of);
        self.visits += visits;
        for s in &scored {
            self.per.add(s);
        }
        let mut last = None;
        for s in &scored {
            if last != Some(s.row.cell) {
                self.cells += 1;
                last = Some(s.row.cell);
            }
        }
        self.new_cells += new_cells;
        self.coverage
            .append(coverage)
            .map_err(|e| pq_error("coverage.parquet", e))?;
        self.explain
            .append(scored)
            .map_err(|e| pq_error("explain.parquet", e))?;
        Ok(())
    }
}

/// What scoring one range of cells gives: its scored visits (explain rows, in (cell, device)
/// order) and its coverage state after the epoch (in cell order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    /// Scored visits.
    pub scored: Vec<Scored>,
    /// The range's cells after the epoch: the prior ones merged with the covered ones.
    pub coverage: Vec<(u64, CellState)>,
    /// Visits scored (those inside a withheld trust window are not).
    pub visits: u64,
    /// Cells covered for the first time.
    pub new_cells: u64,
}

/// The rules one range of cells is scored under.
pub(super) struct PartContext<'a> {
    pub devices: &'a [String],
    pub trust: Option<&'a super::trust::Judged>,
    pub k: &'a crate::policy::Kernels,
    pub epoch: i64,
    pub places: &'a crate::places::Places,
}

/// Score the visits of a range of cells (sorted by (cell, device), keys unique) against the
/// prior state of the same range (sorted by cell): a pure function of its arguments, so a
/// range scored anywhere (a Spark worker) gives the same part as here.
pub(super) fn score_part(cx: &PartContext, rows: &[VisitRow], prior: &[(u64, CellState)]) -> Part {
    let lookup = |c: u64| prior.binary_search_by_key(&c, |p| p.0).ok().map(|i| prior[i].1);
    let kept: Vec<VisitRow>;
    let (rows, trust) = match cx.trust {
        None => (rows, None),
        Some(j) => {
            // Visits inside a withheld window (timeline, copies) are not scored at all: they
            // take no rank from anyone. The evidence is in flags.parquet.
            kept = rows
                .iter()
                .filter(|r| !j.withheld(r.device, r.visit.first_ms, r.visit.last_ms))
                .copied()
                .collect();
            let t = novelty::TrustScoring {
                trust_w: &j.trust_w,
                wallet: &j.wallet_idx,
                one_rank_per_wallet: j.one_rank_per_wallet,
            };
            (&kept[..], Some(t))
        }
    };
    let scored = novelty::score(rows, cx.devices, &lookup, cx.epoch, cx.k, cx.places, trust);
    // Coverage after the epoch: the prior cells of this range merged with the covered ones.
    let mut cells: Vec<u64> = scored.iter().map(|s| s.row.cell).collect();
    cells.dedup();
    let (coverage, new_cells) = state::merge(prior, &cells, cx.epoch);
    Part {
        scored,
        coverage,
        visits: rows.len() as u64,
        new_cells,
    }
}

/// Who is scored and under which rules.
pub(super) struct Context<'a> {
    /// Devices by index.
    pub devices: &'a [String],
    /// Each device's wallet (empty: unregistered).
    pub wallet_of: &'a [String],
    /// The policy's integer kernels.
    pub k: &'a crate::policy::Kernels,
    /// Epoch index.
    pub epoch: i64,
    /// The trust stage's verdicts (`None`: trust off).
    pub trust: Option<&'a super::trust::Judged>,
    /// Regions, roads and bounty areas.
    pub places: &'a crate::places::Places,
    /// (index into `places.bounties`, min_age_epochs) of the bounties paying this epoch.
    pub active_bounties: Vec<(usize, u32)>,
    /// How `explain.parquet` and `coverage.parquet` are encoded.
    pub layout: tables::Layout,
}

/// What scoring produced besides the streamed files.
pub(super) struct Totals<'a> {
    pub per: BTreeMap<&'a str, PerRecipient>,
    pub places: super::places::PlaceStats<'a>,
    pub visits: u64,
    pub cells: u64,
    pub new_cells: u64,
    pub explain_sha: String,
    pub coverage_sha: String,
}

/// Score every visit of the store against the prior state, streaming `explain.parquet` and
/// `coverage.parquet` into `dir`. Spilled visits are scored a bucket at a time (an oversized
/// bucket is split again in the spill directory), the next bucket loading while the current one scores.
pub(super) fn score_all<'a>(
    cx: &Context<'a>,
    mut store: VisitStore,
    prior: PriorCursor,
    dir: &Path,
    piece_rows: usize,
    progress: Progress,
) -> Result<Totals<'a>> {
    // Large epochs encode explain and coverage on threads of their own (small ones would pay
    // for the threads more than the overlap gains).
    let pipelined = store.spill.is_some() || store.rows.len() >= PIPELINED_VISITS;
    let mut scorer = Scorer::new(cx, prior, dir, pipelined)?;
    scorer.piece_rows = piece_rows.max(1);
    match store.spill.take() {
        None => {
            store.sort_in_memory();
            let rows = std::mem::take(&mut store.rows);
            scorer.sorted(&rows, None)?;
        }
        Some(mut sp) => {
            let max = store.max as u64;
            sp.drain(&mut store.rows)?;
            drop(store);
            let scratch = dir.join(super::SPILL_DIR);
            score_buckets(&mut scorer, sp.finish()?.into(), max, &scratch, progress)?;
        }
    }
    scorer.finish(dir)
}

impl<'a> Scorer<'a> {
    /// A scorer streaming `explain.parquet` and `coverage.parquet` into `dir`, reading the prior
    /// state from `prior` (a scorer that only [`Scorer::absorb`]s parts scored elsewhere never
    /// reads it); `pipelined`: both files encoded on threads of their own
    /// ([`tables::BatchSink::pipelined`]), so that absorbing a part overlaps the encoding of the
    /// ones before. The same bytes either way.
    pub(super) fn new(cx: &Context<'a>, prior: PriorCursor, dir: &Path, pipelined: bool) -> Result<Scorer<'a>> {
        let (devices, wallet_of) = (cx.devices, cx.wallet_of);
        let regions = &cx.places.regions;
        let explain_build: ExplainRows =
            Box::new(move |c: &[&[Scored]]| explain_batch_parts(c, devices, wallet_of, regions));
        Ok(Scorer {
            devices,
            trust: cx.trust,
            wallet_of,
            k: cx.k,
            epoch: cx.epoch,
            prior,
            per: Recipients::new(wallet_of),
            places: cx.places,
            place_stats: super::places::PlaceStats::new(cx.places, cx.active_bounties.clone()),
            explain: parts_sink(
                dir,
                "explain.parquet",
                &tables::explain_schema(),
                cx.layout,
                explain_build,
            )?
            .eager()
            .pipelined_if(pipelined),
            coverage: sink(
                dir,
                "coverage.parquet",
                &tables::coverage_schema(),
                cx.layout,
                tables::coverage_batch as CoverageBuild,
            )?
            .eager()
            .pipelined_if(pipelined),
            visits: 0,
            cells: 0,
            new_cells: 0,
            piece_rows: crate::lake::DEFAULT_SCORE_ROWS,
        })
    }

    /// Close the files; the totals.
    pub(super) fn finish(self, dir: &Path) -> Result<Totals<'a>> {
        let Scorer {
            per,
            place_stats,
            explain,
            coverage,
            visits,
            cells,
            new_cells,
            ..
        } = self;
        // The two files' last row groups are encoded at once.
        let (explain_sha, coverage_sha) = rayon::join(
            || finish_sink(dir, "explain.parquet", explain),
            || finish_sink(dir, "coverage.parquet", coverage),
        );
        Ok(Totals {
            per: per.finish(),
            places: place_stats,
            visits,
            cells,
            new_cells,
            explain_sha: explain_sha?,
            coverage_sha: coverage_sha?,
        })
    }
}

/// Score spilled buckets in cell order; a bucket above `max` records is split first.
fn score_buckets<'a>(
    scorer: &mut Scorer<'a>,
    mut queue: VecDeque<spill::Bucket>,
    max: u64,
    scratch: &Path,
    progress: Progress,
) -> Result<()> {
    let parts = queue.len() as u64;
    let mut n_split = 0u64;
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
    scorer.sorted(&[], None)
}

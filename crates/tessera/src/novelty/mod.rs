//! Novelty scoring, policy v1: `points = rank × freshness × quality × region × trust`, each a ppm
//! multiplier (one module each), multiplied in 256-bit integers and rounded down once. Points are
//! integers in millionths, so totals do not depend on summation order. Scored per cell in
//! parallel with rayon; the output order is fixed (cell, then rank).

pub mod freshness;
pub mod quality;
pub mod rank;
pub mod region;

use crate::cells::Visit;
use crate::fixed::{mul_ppm, Ppm};
use crate::policy::Kernels;
use freshness::CellState;
use rayon::prelude::*;

/// One visit to score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitRow {
    /// H3 cell.
    pub cell: u64,
    /// Index into the epoch's sorted device table.
    pub device: u32,
    /// The visit.
    pub visit: Visit,
}

/// A scored visit: one row of `explain.parquet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    /// The visit scored.
    pub row: VisitRow,
    /// 1-based rank among the cell's devices.
    pub rank: u32,
    /// Epochs since the cell was last covered (`None`: never).
    pub age: Option<i64>,
    /// Rank multiplier.
    pub rank_w: Ppm,
    /// Freshness multiplier.
    pub freshness_w: Ppm,
    /// Quality multiplier.
    pub quality_w: Ppm,
    /// Region multiplier.
    pub region_w: Ppm,
    /// The cell's region (index into [`crate::places::Places::regions`]), if any.
    pub region: Option<u32>,
    /// Whether the cell is on the road network (`None`: no network configured). Off the
    /// network a visit earns 0 points.
    pub on_road: Option<bool>,
    /// Trust multiplier: the device's reputation (1 with the trust policy off).
    pub trust_w: Ppm,
    /// Points in millionths.
    pub points: u64,
}

impl Scored {
    /// What [`score`] fills its output with before each row is written (never returned).
    const PLACEHOLDER: Scored = Scored {
        row: VisitRow {
            cell: 0,
            device: 0,
            visit: Visit {
                first_ms: 0,
                last_ms: 0,
                fixes: 0,
                best_hdop_centi: 0,
            },
        },
        rank: 0,
        age: None,
        rank_w: 0,
        freshness_w: 0,
        quality_w: 0,
        region_w: 0,
        region: None,
        on_road: None,
        trust_w: 0,
        points: 0,
    };
}

/// The trust layer's part in scoring, per device index.
#[derive(Debug, Clone, Copy)]
pub struct TrustScoring<'a> {
    /// Trust multiplier (reputation entering the epoch), ppm.
    pub trust_w: &'a [Ppm],
    /// Wallet index (equal for devices of one wallet).
    pub wallet: &'a [u32],
    /// A wallet's later devices in a cell share its rank with rank weight 0.
    pub one_rank_per_wallet: bool,
}

/// Score visits sorted by (cell, device). `devices[i]` is the id of device index `i` and
/// `prior(cell)` the coverage state before the epoch; `places` gives the region multiplier and
/// the road rule (points are 0 off the road network when one is configured); `trust` adds the
/// trust multiplier and the one-rank-per-wallet rule (`None`: policy v1).
///
/// ```
/// use tessera::{cells::Visit, novelty::{score, VisitRow}, policy::Policy};
/// let k = Policy::default().kernels().unwrap();
/// let v = |device, first_ms| VisitRow { cell: 1, device, visit: Visit { first_ms, last_ms: first_ms, fixes: 1, best_hdop_centi: 100 } };
/// let places = tessera::places::Places::default();
/// let s = score(&[v(0, 50), v(1, 10)], &["a".into(), "b".into()], &|_| None, 0, &k, &places, None);
/// // b came first: rank 1, discovery ×2 → 2 points; a: rank 2 → 1 point.
/// assert_eq!(s.iter().map(|x| (x.row.device, x.points)).collect::<Vec<_>>(), [(1, 2_000_000), (0, 1_000_000)]);
/// ```
pub fn score<F>(
    visits: &[VisitRow],
    devices: &[String],
    prior: &F,
    epoch_index: i64,
    k: &Kernels,
    places: &crate::places::Places,
    trust: Option<TrustScoring>,
) -> Vec<Scored>
where
    F: Fn(u64) -> Option<CellState> + Sync,
{
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 1..=visits.len() {
        if i == visits.len() || visits[i].cell != visits[start].cell {
            ranges.push(start..i);
            start = i;
        }
    }
    let rules = Rules {
        devices,
        epoch_index,
        k,
        places,
        trust,
    };
    // Cells in runs of CELLS_PER_TASK per rayon task, each run's rows written straight into its
    // own part of the output (one row per visit, so a run's part is as long as its visits):
    // within a run, cells come in order and the region and road tables are searched from the
    // previous cell's position. The output is filled with a placeholder first (in parallel) so
    // that no run's rows are copied again.
    let mut out: Vec<Scored> = Vec::with_capacity(visits.len());
    out.par_extend(rayon::iter::repeat_n(Scored::PLACEHOLDER, visits.len()));
    let mut tasks: Vec<(&[std::ops::Range<usize>], &mut [Scored])> = Vec::new();
    let mut rest = &mut out[..];
    for run in ranges.chunks(CELLS_PER_TASK) {
        let (part, tail) = rest.split_at_mut(run.iter().map(ExactSizeIterator::len).sum());
        tasks.push((run, part));
        rest = tail;
    }
    tasks.into_par_iter().for_each(|(run, part)| {
        let mut at = (0usize, 0usize);
        let mut scratch = Vec::new();
        let mut part = part;
        for r in run {
            let (cell_part, tail) = part.split_at_mut(r.len());
            rules.cell(
                &visits[r.clone()],
                prior(visits[r.start].cell),
                &mut at,
                &mut scratch,
                cell_part,
            );
            part = tail;
        }
    });
    out
}

/// What [`score`] scores a cell under.
struct Rules<'a> {
    devices: &'a [String],
    epoch_index: i64,
    k: &'a Kernels,
    places: &'a crate::places::Places,
    trust: Option<TrustScoring<'a>>,
}

impl Rules<'_> {
    /// Score one cell's visits (`group`, one cell, any order) against its prior `state`,
    /// writing them into `out` (as long as `group`) in rank order; `at` = (region, road) table
    /// positions of the last lookup; `scratch` holds the visits while they are ranked.
    fn cell(
        &self,
        group: &[VisitRow],
        state: Option<CellState>,
        at: &mut (usize, usize),
        scratch: &mut Vec<VisitRow>,
        out: &mut [Scored],
    ) {
        let (k, places, trust, devices) = (self.k, self.places, self.trust, self.devices);
        scratch.clear();
        scratch.extend_from_slice(group);
        let group = scratch;
        group.sort_by(|a, b| {
            rank::rank_order(
                (a.visit.first_ms, &devices[a.device as usize]),
                (b.visit.first_ms, &devices[b.device as usize]),
            )
        });
        let cell = group[0].cell;
        let (fresh, age) = freshness::freshness(state.as_ref(), self.epoch_index, k.discovery, k.refresh_epochs);
        let (region, region_w) = region::region_weight_near(cell, places, k.outside_region, &mut at.0);
        let on_road = places.on_road_near(cell, &mut at.1);
        let road_w = if on_road == Some(false) { 0 } else { crate::fixed::SCALE };
        let mut ranks = 0u32;
        let mut wallets: Vec<(u32, u32)> = Vec::new();
        debug_assert_eq!(out.len(), group.len());
        for (slot, &row) in out.iter_mut().zip(group.iter()) {
            let d = row.device as usize;
            let shared = trust.filter(|t| t.one_rank_per_wallet).and_then(|t| {
                let w = t.wallet[d];
                let hit = wallets.iter().find(|x| x.0 == w).map(|x| x.1);
                if hit.is_none() {
                    wallets.push((w, ranks + 1));
                }
                hit
            });
            let (rank, rank_w) = match shared {
                Some(r) => (r, 0),
                None => {
                    ranks += 1;
                    (ranks, rank::rank_weight(ranks, &k.rank_weights))
                }
            };
            let trust_w = trust.map_or(crate::fixed::SCALE, |t| t.trust_w[d]);
            let quality_w = quality::quality_weight(
                row.visit.best_hdop_centi,
                k.full_quality_hdop_centi,
                k.max_hdop_centi,
                k.min_quality,
            );
            *slot = Scored {
                row,
                rank,
                age,
                rank_w,
                freshness_w: fresh,
                quality_w,
                region_w,
                region,
                on_road,
                trust_w,
                points: mul_ppm(&[rank_w, fresh, quality_w, region_w, trust_w, road_w]),
            };
        }
    }
}

/// Cells scored per rayon task in [`score`].
const CELLS_PER_TASK: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn row(cell: u64, device: u32, first_ms: i64, hdop: u32) -> VisitRow {
        VisitRow {
            cell,
            device,
            visit: Visit {
                first_ms,
                last_ms: first_ms,
                fixes: 1,
                best_hdop_centi: hdop,
            },
        }
    }

    #[test]
    fn score_is_product_of_rank_freshness_quality_region() {
        let k = Policy::default().kernels().unwrap();
        let devices = vec!["a".to_string(), "b".to_string()];
        let prior = |c: u64| {
            (c == 2).then_some(CellState {
                first_epoch: 0,
                last_epoch: 8,
                times_covered: 1,
            })
        };
        let s = score(
            &[row(2, 0, 5, 250), row(2, 1, 1, 100)],
            &devices,
            &prior,
            10,
            &k,
            &crate::places::Places::default(),
            None,
        );
        // b: rank 1 (1.0) × age 2 (0.5) × hdop 1.0 (1.0) = 0.5; a: rank 2 (0.5) × 0.5 × hdop 2.5 (0.75) = 0.1875
        assert_eq!(
            s.iter().map(|x| (x.rank, x.points)).collect::<Vec<_>>(),
            [(1, 500_000), (2, 187_500)]
        );
        assert_eq!(s[0].age, Some(2));
    }

    #[test]
    fn score_ranks_past_the_weights_score_zero_but_are_explained() {
        let k = Policy::default().kernels().unwrap();
        let devices: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
        let rows: Vec<VisitRow> = (0..5).map(|d| row(9, d, i64::from(d), 100)).collect();
        let s = score(
            &rows,
            &devices,
            &|_| None,
            0,
            &k,
            &crate::places::Places::default(),
            None,
        );
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.iter().map(|x| x.points).collect::<Vec<_>>(),
            [2_000_000, 1_000_000, 500_000, 0, 0]
        );
    }

    #[test]
    fn rule_devices_of_one_wallet_take_one_rank_and_trust_multiplies() {
        let k = Policy::default().kernels().unwrap();
        let devices: Vec<String> = (0..4).map(|i| format!("d{i}")).collect();
        // d0, d1, d2 share wallet 0 and come first; d3 (wallet 1) comes last.
        let rows: Vec<VisitRow> = (0..4).map(|d| row(9, d, i64::from(d), 100)).collect();
        let t = TrustScoring {
            trust_w: &[1_000_000, 1_000_000, 1_000_000, 500_000],
            wallet: &[0, 0, 0, 1],
            one_rank_per_wallet: true,
        };
        let s = score(
            &rows,
            &devices,
            &|_| None,
            0,
            &k,
            &crate::places::Places::default(),
            Some(t),
        );
        let got: Vec<(u32, u32, u64)> = s.iter().map(|x| (x.row.device, x.rank, x.points)).collect();
        // d3 is rank 2 (not 4) and its half weight is halved again by its trust.
        assert_eq!(got, [(0, 1, 2_000_000), (1, 1, 0), (2, 1, 0), (3, 2, 500_000)]);
    }

    #[test]
    fn score_output_does_not_depend_on_thread_count() {
        let k = Policy::default().kernels().unwrap();
        let devices: Vec<String> = (0..7).map(|i| format!("d{i}")).collect();
        let mut rows = Vec::new();
        for c in 0..2000u64 {
            for d in 0..(c % 7) as u32 {
                rows.push(row(
                    c,
                    d,
                    ((c * 31 + u64::from(d) * 17) % 50) as i64,
                    100 + (c % 300) as u32,
                ));
            }
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| {
                score(
                    &rows,
                    &devices,
                    &|_| None,
                    0,
                    &k,
                    &crate::places::Places::default(),
                    None,
                )
            });
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| {
                score(
                    &rows,
                    &devices,
                    &|_| None,
                    0,
                    &k,
                    &crate::places::Places::default(),
                    None,
                )
            });
        assert_eq!(one, many);
    }
}

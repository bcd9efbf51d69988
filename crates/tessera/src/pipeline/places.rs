//! Place statistics gathered while scoring: per region (cells, fresh cells, road length covered,
//! contributors, points), road length covered and fresh, and each active bounty's points per
//! recipient.

use crate::novelty::Scored;
use crate::places::Places;
use std::collections::BTreeMap;

/// One region's numbers in an epoch (the last slot: cells outside every region).
#[derive(Debug, Default, Clone)]
pub(super) struct RegionStat {
    pub cells: u64,
    pub fresh_cells: u64,
    pub road_mm: u64,
    pub fresh_road_mm: u64,
    /// Devices with points in the region.
    pub contributors: u64,
    pub points: u128,
}

/// What scoring learns about places; empty and skipped when none are configured.
pub(super) struct PlaceStats<'a> {
    places: &'a Places,
    /// (index into `places.bounties`, min_age_epochs) of the bounties paying this epoch.
    active: Vec<(usize, u32)>,
    pub regions: Vec<RegionStat>,
    /// Per active bounty (same order as `active`): recipient → points in its area.
    pub bounty_points: Vec<BTreeMap<&'a str, u128>>,
    pub road_mm: u64,
    pub fresh_road_mm: u64,
    /// Position of the last road-table lookup (rows come in cell order).
    at_road: usize,
    /// Per device (index): the region slots it has points in, sorted — each region's
    /// contributors counted once without a set per region.
    device_regions: Vec<Vec<u32>>,
}

impl<'a> PlaceStats<'a> {
    pub fn new(places: &'a Places, active: Vec<(usize, u32)>) -> Self {
        let n = if places.is_empty() { 0 } else { places.regions.len() + 1 };
        PlaceStats {
            places,
            bounty_points: vec![BTreeMap::new(); active.len()],
            active,
            regions: vec![RegionStat::default(); n],
            road_mm: 0,
            fresh_road_mm: 0,
            at_road: 0,
            device_regions: Vec::new(),
        }
    }

    /// Add scored rows (in cell order; a cell's rows are contiguous within one call).
    pub fn add(&mut self, scored: &[Scored], wallet_of: &'a [String]) {
        if self.regions.is_empty() {
            return;
        }
        let outside = self.places.regions.len();
        let mut last_cell = None;
        for s in scored {
            let cell = s.row.cell;
            let slot = s.region.map_or(outside, |x| x as usize);
            let r = &mut self.regions[slot];
            // Fresh: never covered before this epoch (age unknown).
            let fresh = s.age.is_none();
            if last_cell != Some(cell) {
                last_cell = Some(cell);
                let mm = self.places.road_mm_near(cell, &mut self.at_road);
                r.cells += 1;
                r.road_mm += mm;
                self.road_mm += mm;
                if fresh {
                    r.fresh_cells += 1;
                    r.fresh_road_mm += mm;
                    self.fresh_road_mm += mm;
                }
            }
            if s.points == 0 {
                continue;
            }
            r.points += u128::from(s.points);
            let d = s.row.device as usize;
            if d >= self.device_regions.len() {
                self.device_regions.resize_with(d + 1, Vec::new);
            }
            let seen = &mut self.device_regions[d];
            if let Err(i) = seen.binary_search(&(slot as u32)) {
                seen.insert(i, slot as u32);
                r.contributors += 1;
            }
            for (slot, (b, min_age)) in self.active.iter().enumerate() {
                let area = &self.places.bounties[*b].cells;
                let old_enough = s.age.is_none_or(|a| a >= i64::from(*min_age));
                if old_enough && area.binary_search(&cell).is_ok() {
                    let w = wallet_of[s.row.device as usize].as_str();
                    *self.bounty_points[slot].entry(w).or_default() += u128::from(s.points);
                }
            }
        }
    }
}

/// Record of the places in the manifest, and the summary's region lines.
type Written = (Option<crate::manifest::PlacesRecord>, Vec<super::RegionLine>);

fn names_places(policy: &crate::policy::Policy) -> bool {
    !(policy.regions.is_empty() && policy.roads.is_none() && policy.bounties.is_empty())
}

/// Write `places.parquet` (every region, road and bounty cell, [`crate::tables::places_schema`])
/// into `dir` when the policy names places; its SHA-256 (`None`: no places). It depends on the
/// places only, not on scoring, so an epoch run writes it beside the other stages (at 10^7
/// fixes with the scale grid's places: 6 M rows, ~1.5 s of one core) — or writes `encoded`,
/// those bytes already encoded ([`super::EpochInputs::places_parquet`], from the places cache).
pub(super) fn write_cells(
    dir: &std::path::Path,
    places: &Places,
    encoded: Option<&[u8]>,
    policy: &crate::policy::Policy,
) -> crate::lake::Result<Option<String>> {
    use super::outputs::{pq_error, put};
    use crate::tables;
    if !names_places(policy) {
        return Ok(None);
    }
    if let Some(bytes) = encoded {
        return Ok(Some(put(dir, "places.parquet", bytes)?));
    }
    let bytes = tables::places_parquet(places).map_err(|e| pq_error("places.parquet", e))?;
    Ok(Some(put(dir, "places.parquet", &bytes)?))
}

/// Write `regions.parquet` (and `places.parquet`, unless `cells` is its SHA-256 from
/// [`write_cells`]) when the policy names places; the manifest's record of them (road length
/// covered and fresh, the source files) and the region lines.
pub(super) fn write(
    dir: &std::path::Path,
    places: &Places,
    policy: &crate::policy::Policy,
    stats: &PlaceStats,
    cells: Option<String>,
    outputs: &mut BTreeMap<String, String>,
) -> crate::lake::Result<Written> {
    use super::outputs::{parquet_bytes, put};
    use crate::tables;
    if !names_places(policy) {
        return Ok((None, Vec::new()));
    }
    let cells = match cells {
        Some(sha) => sha,
        None => write_cells(dir, places, None, policy)?.expect("the policy names places"),
    };
    outputs.insert("places.parquet".into(), cells);
    let n = places.regions.len();
    let rows: Vec<tables::RegionRow> = stats
        .regions
        .iter()
        .enumerate()
        .map(|(i, r)| tables::RegionRow {
            region: (i < n).then(|| places.regions[i].name.clone()),
            weight: if i < n {
                places.regions[i].weight
            } else {
                policy.kernels().map_or(0, |k| k.outside_region)
            },
            cells: r.cells,
            fresh_cells: r.fresh_cells,
            road_mm: r.road_mm,
            fresh_road_mm: r.fresh_road_mm,
            contributors: r.contributors,
            points: r.points,
        })
        .collect();
    let bytes = parquet_bytes(
        "regions.parquet",
        &tables::regions_schema(),
        &[tables::regions_batch(&rows)],
    )?;
    outputs.insert("regions.parquet".into(), put(dir, "regions.parquet", &bytes)?);
    let km = |mm: u64| format!("{}.{:03}", mm / 1_000_000, (mm % 1_000_000) / 1000);
    let lines = rows
        .iter()
        .map(|r| super::RegionLine {
            region: r.region.clone(),
            weight: super::outputs::ppm_str(u128::from(r.weight)),
            cells: r.cells,
            fresh_cells: r.fresh_cells,
            road_km: km(r.road_mm),
            fresh_road_km: km(r.fresh_road_mm),
            contributors: r.contributors,
            points: super::outputs::ppm_str(r.points),
        })
        .collect();
    let record = Some(crate::manifest::PlacesRecord {
        road_km_covered: km(stats.road_mm),
        road_km_fresh: km(stats.fresh_road_mm),
        road_km_network: km(places.road_total_mm()),
        sources: places
            .sources
            .iter()
            .map(|s| crate::manifest::PlaceInput {
                path: s.path.clone(),
                role: s.role.clone(),
                sha256: s.sha256.clone(),
            })
            .collect(),
    });
    Ok((record, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::Visit;
    use crate::novelty::VisitRow;
    use crate::places::Region;
    use std::collections::BTreeSet;

    fn scored(cell: u64, device: u32, region: Option<u32>, points: u64) -> Scored {
        let visit = Visit {
            first_ms: 0,
            last_ms: 0,
            fixes: 1,
            best_hdop_centi: 100,
        };
        Scored {
            row: VisitRow { cell, device, visit },
            rank: 1,
            age: None,
            rank_w: 1_000_000,
            freshness_w: 1_000_000,
            quality_w: 1_000_000,
            region_w: 1_000_000,
            region,
            on_road: None,
            trust_w: 1_000_000,
            points,
        }
    }

    #[test]
    fn rule_a_regions_contributors_are_the_distinct_devices_with_points_in_it() {
        let region = |name: &str| Region {
            name: name.into(),
            weight: 1_000_000,
        };
        let places = Places {
            regions: vec![region("east"), region("west"), region("north")],
            region_cells: vec![(1, 0)],
            ..Default::default()
        };
        // Cells in order, devices interleaved across regions and cells, some visits without
        // points (they do not make a contributor), some outside every region.
        let mut rows = Vec::new();
        let mut x = 7u64;
        for cell in 0..400u64 {
            for device in [3u32, 9, 1, 40, 17] {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if x >> 60 < 9 {
                    // Device 17 is only ever in east; device 1 never earns in north.
                    let r = if device == 17 { 0 } else { (x >> 40) % 4 };
                    let points = if (x >> 20).is_multiple_of(5) || (device, r) == (1, 2) {
                        0
                    } else {
                        1000
                    };
                    rows.push(scored(cell, device, (r < 3).then_some(r as u32), points));
                }
            }
        }
        let wallets: Vec<String> = (0..41).map(|i| format!("w{i}")).collect();
        let mut stats = PlaceStats::new(&places, Vec::new());
        // Added in parts, as scoring does (each part a range of cells).
        for part in rows.chunk_by(|a, b| a.row.cell / 50 == b.row.cell / 50) {
            stats.add(part, &wallets);
        }
        let mut counts = Vec::new();
        for slot in 0..4 {
            let want: BTreeSet<u32> = rows
                .iter()
                .filter(|s| s.points > 0 && s.region.map_or(3, |r| r as usize) == slot)
                .map(|s| s.row.device)
                .collect();
            assert!(!want.is_empty());
            assert_eq!(stats.regions[slot].contributors, want.len() as u64, "slot {slot}");
            counts.push(want.len());
        }
        assert_eq!(counts, [5, 4, 3, 4]);
    }
}

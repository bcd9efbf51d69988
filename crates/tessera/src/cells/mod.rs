//! Cells and dedupe: a segment covers the H3 cells of its fixes and of the path between
//! consecutive fixes (so a fast car does not skip cells); a *visit* is one (cell, device) of an
//! epoch with first/last time, fix count and best HDOP. Repeated passes are one visit.

mod indexer;

pub use indexer::{Hex, PointIndexer};

use crate::fix::Fix;
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::HashMap;

/// One device's presence in one cell during the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    /// First time in the cell, UTC ms.
    pub first_ms: i64,
    /// Last time in the cell, UTC ms.
    pub last_ms: i64,
    /// Fixes that fell in the cell (path-only cells have 0).
    pub fixes: u32,
    /// Best (lowest) HDOP, hundredths.
    pub best_hdop_centi: u32,
}

impl Visit {
    /// Merge another pass of the same device over the same cell. Commutative and associative,
    /// so the merge order (thread scheduling) cannot change the result.
    ///
    /// ```
    /// use tessera::cells::Visit;
    /// let a = Visit { first_ms: 5, last_ms: 9, fixes: 2, best_hdop_centi: 120 };
    /// let b = Visit { first_ms: 1, last_ms: 3, fixes: 1, best_hdop_centi: 90 };
    /// assert_eq!(a.merge(b), b.merge(a));
    /// assert_eq!(a.merge(b), Visit { first_ms: 1, last_ms: 9, fixes: 3, best_hdop_centi: 90 });
    /// ```
    pub fn merge(self, o: Visit) -> Visit {
        Visit {
            first_ms: self.first_ms.min(o.first_ms),
            last_ms: self.last_ms.max(o.last_ms),
            fixes: self.fixes.saturating_add(o.fixes),
            best_hdop_centi: self.best_hdop_centi.min(o.best_hdop_centi),
        }
    }
}

/// Visits keyed by (cell, device index). A fast non-cryptographic hasher (FxHash): its order never
/// reaches an output (visits are sorted before scoring) and the keys are not attacker-chosen in
/// a way that matters for a batch job.
pub type VisitMap = HashMap<(u64, u32), Visit, rustc_hash::FxBuildHasher>;

/// Add one observation of a cell to a visit map.
///
/// ```
/// use tessera::cells::{observe, VisitMap};
/// let cell = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
/// let mut map = VisitMap::default();
/// observe(&mut map, cell, 0, 1_000, 90, true);
/// observe(&mut map, cell, 0, 2_000, 70, true);
/// let v = map[&(u64::from(cell), 0)];
/// assert_eq!((v.first_ms, v.last_ms, v.fixes, v.best_hdop_centi), (1_000, 2_000, 2, 70));
/// ```
pub fn observe(map: &mut VisitMap, cell: CellIndex, device: u32, time_ms: i64, hdop_centi: u32, is_fix: bool) {
    merge_into(map, cell, device, Visit::at(time_ms, hdop_centi, is_fix));
}

impl Visit {
    /// One observation: a fix (`is_fix`) or a path cell at `time_ms`.
    fn at(time_ms: i64, hdop_centi: u32, is_fix: bool) -> Visit {
        Visit {
            first_ms: time_ms,
            last_ms: time_ms,
            fixes: u32::from(is_fix),
            best_hdop_centi: hdop_centi,
        }
    }
}

/// Merge `v` into the map's visit of (`cell`, `device`).
fn merge_into(map: &mut VisitMap, cell: CellIndex, device: u32, v: Visit) {
    map.entry((u64::from(cell), device))
        .and_modify(|e| *e = e.merge(v))
        .or_insert(v);
}

/// A cell's outline as closed rings of `(lng, lat)` degrees, for GIS outputs: one ring, or two
/// when the cell crosses the antimeridian (the outline is split at ±180°, each part within
/// −180..=180, so no ring is drawn 360° wide; GeoParquet/WKT write them as a MultiPolygon).
/// Edges are cut where the straight lng/lat segment meets 180° (cells are small; the error is
/// far below a cell's size from resolution 2 on). The two cells that contain a pole keep one ring.
///
/// ```
/// use h3o::{LatLng, Resolution};
/// let c = LatLng::new(-16.8, 180.0).unwrap().to_cell(Resolution::Nine);
/// let parts = tessera::cells::boundary_parts(c);
/// assert_eq!(parts.len(), 2);
/// for ring in &parts {
///     let (lo, hi) = ring.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
///     assert!(hi - lo < 0.1, "{lo}..{hi}");
///     assert_eq!(ring.first(), ring.last());
/// }
/// let one = tessera::cells::boundary_parts(LatLng::new(52.5, 13.4).unwrap().to_cell(Resolution::Nine));
/// assert_eq!((one.len(), one[0].len()), (1, 7));
/// ```
pub fn boundary_parts(c: CellIndex) -> Vec<Vec<(f64, f64)>> {
    let pts: Vec<(f64, f64)> = c.boundary().iter().map(|ll| (ll.lng(), ll.lat())).collect();
    let (lo, hi) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let res = c.resolution();
    let polar = [90.0, -90.0].iter().any(|lat| cell_of(*lat, 0.0, res) == Some(c));
    if hi - lo <= 180.0 || polar {
        return vec![closed(pts)];
    }
    let shifted: Vec<(f64, f64)> = pts
        .iter()
        .map(|&(x, y)| (if x < 0.0 { x + 360.0 } else { x }, y))
        .collect();
    let east = clip_at_180(&shifted, true);
    let west: Vec<(f64, f64)> = clip_at_180(&shifted, false)
        .into_iter()
        .map(|(x, y)| (x - 360.0, y))
        .collect();
    [east, west].into_iter().filter(|r| r.len() >= 3).map(closed).collect()
}

fn closed(mut ring: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if let Some(f) = ring.first().copied() {
        ring.push(f);
    }
    ring
}

/// One pass of Sutherland–Hodgman: the part of a ring (longitudes in 0..360) with `x <= 180`
/// (`east`) or `x >= 180`.
fn clip_at_180(ring: &[(f64, f64)], east: bool) -> Vec<(f64, f64)> {
    let inside = |p: &(f64, f64)| if east { p.0 <= 180.0 } else { p.0 >= 180.0 };
    let mut out = Vec::with_capacity(ring.len() + 2);
    for (i, cur) in ring.iter().enumerate() {
        let prev = &ring[(i + ring.len() - 1) % ring.len()];
        let cross = || {
            let t = (180.0 - prev.0) / (cur.0 - prev.0);
            (180.0, prev.1 + t * (cur.1 - prev.1))
        };
        match (inside(prev), inside(cur)) {
            (true, true) => out.push(*cur),
            (true, false) => out.push(cross()),
            (false, true) => {
                out.push(cross());
                out.push(*cur);
            }
            (false, false) => {}
        }
    }
    out.dedup();
    out
}

/// The cell of a position, or `None` for a position h3o refuses.
///
/// ```
/// let c = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
/// assert_eq!(c.resolution(), h3o::Resolution::Twelve);
/// ```
pub fn cell_of(lat: f64, lon: f64, res: Resolution) -> Option<CellIndex> {
    LatLng::new(lat, lon).ok().map(|ll| ll.to_cell(res))
}

/// H3's neighbour sets of a child digit among its siblings (`NEIGHBORSETCLOCKWISE` and
/// `NEIGHBORSETCOUNTERCLOCKWISE` of the H3 library's `areNeighborCells`), by digit
/// (center, K, J, JK, I, IK, IJ).
const SIBLING_CW: [u64; 7] = [0, 3, 6, 2, 5, 1, 4];
const SIBLING_CCW: [u64; 7] = [0, 5, 3, 1, 6, 4, 2];

/// Whether two distinct cells at `res` share their parent, lie in a hexagonal base cell, and are
/// adjacent by H3's sibling digit tables — the cheap case of `grid_distance == 1` (the two local
/// IJK conversions of `grid_distance` cost more than indexing a point). Sound, not complete:
/// `true` only for cells at grid distance 1 (tested against `grid_distance`); `false` leaves the
/// answer to `grid_distance`.
fn siblings_adjacent(a: CellIndex, b: CellIndex, res: Resolution) -> bool {
    let r = u8::from(res);
    if r == 0 || a == b || a.base_cell().is_pentagon() {
        return false;
    }
    // H3 index bits: the digit of resolution r is at bits 3·(15 − r) .. +3; same resolution, so
    // the same parent ⇔ the indexes differ only in that digit.
    let shift = 3 * (15 - u32::from(r));
    let (x, y) = (u64::from(a), u64::from(b));
    if (x ^ y) & !(7u64 << shift) != 0 {
        return false;
    }
    let (da, db) = ((x >> shift) & 7, (y >> shift) & 7);
    if da == 7 || db == 7 {
        return false;
    }
    da == 0 || db == 0 || SIBLING_CW[da as usize] == db || SIBLING_CCW[da as usize] == db
}

/// Cells strictly between two cells along the H3 grid path; when h3o cannot compute a grid path
/// (pentagon distortion, far apart), points sampled every half edge length along the segment.
fn path_between(a: &Fix, ca: CellIndex, b: &Fix, cb: CellIndex, res: Resolution, out: &mut Vec<CellIndex>) {
    out.clear();
    if ca == cb || siblings_adjacent(ca, cb, res) {
        return;
    }
    // h3o's path measures the grid distance as `grid_distance` does (both cells' local IJK from
    // `ca`, the same errors) and its size hint is that distance (were it the cell count, a path
    // of two cells has none between): the distance is not measured twice, and no list is
    // allocated per step.
    if let Ok(path) = ca.grid_path_cells(cb) {
        if path.size_hint().0 <= 1 {
            return;
        }
        let mut whole = true;
        for c in path {
            match c {
                Ok(c) if c != ca && c != cb => out.push(c),
                Ok(_) => {}
                Err(_) => {
                    whole = false;
                    break;
                }
            }
        }
        if whole {
            return;
        }
        out.clear();
    }
    sampled_between(a, ca, b, cb, res, out);
}

/// [`path_between`] where h3o has no grid path: the cells of points every half edge length
/// along the segment, other than the ends' and each once in a row (appended to `out`).
fn sampled_between(a: &Fix, ca: CellIndex, b: &Fix, cb: CellIndex, res: Resolution, out: &mut Vec<CellIndex>) {
    let d = crate::quality::distance_m(a.lat, a.lon, b.lat, b.lon);
    let steps = ((d / (res.edge_length_m() / 2.0)).ceil() as usize).clamp(1, 10_000);
    for i in 1..steps {
        let t = i as f64 / steps as f64;
        if let Some(c) = cell_of(a.lat + (b.lat - a.lat) * t, a.lon + (b.lon - a.lon) * t, res)
            && c != ca
            && c != cb
            && out.last() != Some(&c)
        {
            out.push(c);
        }
    }
}

/// Cover one segment (consecutive accepted fixes of one device) into `map`. Path cells get the
/// time interpolated along the step and the worse HDOP of its two ends.
///
/// ```
/// use tessera::{cells::{cover_segment, VisitMap}, fix::Fix};
/// let mut a = Fix::new(0, 52.5, 13.4);
/// a.hdop = Some(1.0);
/// let mut b = a.clone();
/// b.time_ms = 5_000;
/// b.lon = 13.402; // ~135 m east: several res-12 cells apart
/// let mut map = VisitMap::default();
/// cover_segment(&[&a, &b], 7, h3o::Resolution::Twelve, &mut map);
/// assert!(map.len() > 2);
/// assert_eq!(map.values().map(|v| v.fixes).sum::<u32>(), 2);
/// ```
pub fn cover_segment(fixes: &[&Fix], device: u32, res: Resolution, map: &mut VisitMap) {
    // Consecutive fixes are close: the indexer reuses the previous fix's cell and parents.
    let mut ix = PointIndexer::default();
    let cells: Vec<Indexed> = fixes
        .iter()
        .map(|f| LatLng::new(f.lat, f.lon).ok().map(|ll| ix.to_cell_hex(ll, res)))
        .collect();
    cover_indexed(fixes, &cells, device, res, map);
}

/// A fix's cell with its [`Hex`] when known; `None` for a position h3o refuses.
pub(crate) type Indexed = Option<(CellIndex, Option<Hex>)>;

/// [`cover_segment`] with the fixes' cells at `res` already indexed (`cells[i]` for `fixes[i]`;
/// `None` for a position h3o refuses, which is skipped).
pub(crate) fn cover_indexed(fixes: &[&Fix], cells: &[Indexed], device: u32, res: Resolution, map: &mut VisitMap) {
    let mut prev: Option<(&Fix, CellIndex, Option<Hex>, u32)> = None;
    let mut path = Vec::new();
    let mut run = Run::default();
    for (f, c) in fixes.iter().zip(cells) {
        let Some((c, hex)) = *c else {
            continue;
        };
        let h = f.hdop_centi().unwrap_or(u32::MAX);
        if let Some((pf, pc, phex, ph)) = prev {
            // Neighbouring hexagons on one face: no cell between them (grid distance 1).
            if phex.zip(hex).is_some_and(|(a, b)| a.adjacent(b)) {
                path.clear();
            } else {
                path_between(pf, pc, f, c, res, &mut path);
            }
            let n = path.len() as i64 + 1;
            for (i, pcell) in path.iter().enumerate() {
                let t = pf.time_ms + (f.time_ms - pf.time_ms) * (i as i64 + 1) / n;
                run.observe(map, *pcell, device, t, ph.max(h), false);
            }
        }
        run.observe(map, c, device, f.time_ms, h, true);
        prev = Some((f, c, hex, h));
    }
    run.flush(map, device);
}

/// The observations of one cell in a row (consecutive fixes mostly share a cell), merged before
/// they reach the map: one map lookup per run instead of one per observation. [`Visit::merge`]
/// is commutative and associative, so the map ends with the same visits as [`observe`] gives.
#[derive(Default)]
struct Run(Option<(CellIndex, Visit)>);

impl Run {
    fn observe(
        &mut self,
        map: &mut VisitMap,
        cell: CellIndex,
        device: u32,
        time_ms: i64,
        hdop_centi: u32,
        is_fix: bool,
    ) {
        let v = Visit::at(time_ms, hdop_centi, is_fix);
        match &mut self.0 {
            Some((c, run)) if *c == cell => *run = run.merge(v),
            _ => {
                self.flush(map, device);
                self.0 = Some((cell, v));
            }
        }
    }

    fn flush(&mut self, map: &mut VisitMap, device: u32) {
        if let Some((cell, v)) = self.0.take() {
            merge_into(map, cell, device, v);
        }
    }
}

/// Point-only cover and dedupe of one device's fixes: the cell of every fix (no path cells, no
/// quality gate), grouped by cell with fix count and first/last time, sorted by cell. The exact
/// equivalent of `latlng_to_cell` + `GROUP BY (cell, device)` in a dataframe; the benchmark
/// compares it with Polars + polars-h3.
///
/// ```
/// let t = [0, 1000, 2000];
/// let lat = [52.5, 52.5, 52.6];
/// let lon = [13.4, 13.4, 13.4];
/// let g = tessera::cells::dedupe_points(&t, &lat, &lon, h3o::Resolution::Twelve);
/// assert_eq!(g.len(), 2);
/// assert_eq!(g.iter().map(|x| x.1).sum::<u32>(), 3);
/// ```
pub fn dedupe_points(time_ms: &[i64], lat: &[f64], lon: &[f64], res: Resolution) -> Vec<(u64, u32, i64, i64)> {
    let mut ix = PointIndexer::default();
    // Consecutive fixes of a trace mostly share a cell: fold each run first, so the sort sees
    // runs, not fixes. Groups: (cell, fixes, first, last).
    let mut runs: Vec<(u64, u32, i64, i64)> = Vec::with_capacity(lat.len() / 2);
    for ((t, la), lo) in time_ms.iter().zip(lat).zip(lon) {
        if let Ok(ll) = LatLng::new(*la, *lo) {
            let c = u64::from(ix.to_cell(ll, res));
            match runs.last_mut() {
                Some(g) if g.0 == c => {
                    g.1 += 1;
                    g.2 = g.2.min(*t);
                    g.3 = g.3.max(*t);
                }
                _ => runs.push((c, 1, *t, *t)),
            }
        }
    }
    runs.sort_unstable();
    let mut out: Vec<(u64, u32, i64, i64)> = Vec::with_capacity(runs.len());
    for r in runs {
        match out.last_mut() {
            Some(g) if g.0 == r.0 => {
                g.1 += r.1;
                g.2 = g.2.min(r.2);
                g.3 = g.3.max(r.3);
            }
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `path_between` as it was: the grid distance first, then the path collected.
    fn path_between_measured_twice(a: &Fix, ca: CellIndex, b: &Fix, cb: CellIndex, res: Resolution) -> Vec<CellIndex> {
        let mut out = Vec::new();
        if ca == cb || siblings_adjacent(ca, cb, res) {
            return out;
        }
        if let Ok(dist) = ca.grid_distance(cb) {
            if dist <= 1 {
                return out;
            }
            if let Ok(Ok(cells)) = ca.grid_path_cells(cb).map(|p| p.collect::<Result<Vec<_>, _>>()) {
                out.extend(cells.into_iter().filter(|c| *c != ca && *c != cb));
                return out;
            }
        }
        sampled_between(a, ca, b, cb, res, &mut out);
        out
    }

    #[test]
    fn rule_path_between_is_the_grid_path_strictly_between_near_pentagons_too() {
        // Steps of 0 to ~600 m from random points and from points beside each pentagon.
        let mut u = crate::test_rng::xorshift_unit(0x243f_6a88_85a3_08d3);
        let mut starts: Vec<(f64, f64)> = (0..400).map(|_| (u() * 160.0 - 80.0, u() * 360.0 - 180.0)).collect();
        for p in CellIndex::base_cells().filter(|c| c.is_pentagon()) {
            let ll = LatLng::from(p);
            starts.push((ll.lat(), ll.lng()));
        }
        let (mut checked, mut between) = (0, 0);
        for res in [Resolution::Eight, Resolution::Twelve] {
            for &(lat, lon) in &starts {
                for _ in 0..8 {
                    let a = Fix::new(0, lat + (u() - 0.5) * 1e-3, lon + (u() - 0.5) * 1e-3);
                    let b = Fix::new(1000, a.lat + (u() - 0.5) * 1e-2, a.lon + (u() - 0.5) * 1e-2);
                    let (Some(ca), Some(cb)) = (cell_of(a.lat, a.lon, res), cell_of(b.lat, b.lon, res)) else {
                        continue;
                    };
                    let mut got = Vec::new();
                    path_between(&a, ca, &b, cb, res, &mut got);
                    assert_eq!(
                        got,
                        path_between_measured_twice(&a, ca, &b, cb, res),
                        "{a:?} {b:?} {res}"
                    );
                    checked += 1;
                    between += usize::from(!got.is_empty());
                }
            }
        }
        assert!(checked > 6000 && between > checked / 3, "{checked} {between}");
    }

    #[test]
    fn rule_path_between_h3os_path_size_hint_is_the_grid_distance() {
        // `path_between` reads the grid distance from the path's size hint (h3o 0.11); a
        // release that changed it would fail here before it changed a cover.
        let a = LatLng::new(48.86, 2.35).unwrap().to_cell(Resolution::Twelve);
        for b in a.grid_disk::<Vec<_>>(3) {
            let path = a.grid_path_cells(b).unwrap();
            assert_eq!(path.size_hint().0 as i32, a.grid_distance(b).unwrap(), "{a} {b}");
        }
    }

    #[test]
    fn rule_siblings_adjacent_only_for_cells_at_grid_distance_one() {
        // Every pair of a cell and a cell within 2 of it, around random points and around each
        // of the 12 pentagons, at resolutions 1..=15: the shortcut must never say "adjacent"
        // unless grid_distance is 1, and it must take the sibling case it is meant for.
        let mut next = crate::test_rng::lcg_unit(0x9E37_79B9);
        let mut points: Vec<(f64, f64)> = (0..3000)
            .map(|_| (next() * 180.0 - 90.0, next() * 360.0 - 180.0))
            .collect();
        for base in CellIndex::base_cells().filter(|c| c.is_pentagon()) {
            let ll = LatLng::from(base);
            for _ in 0..40 {
                points.push((ll.lat() + (next() - 0.5) * 1e-3, ll.lng() + (next() - 0.5) * 1e-3));
            }
        }
        let (mut taken, mut sibling_neighbors) = (0usize, 0usize);
        for (i, (lat, lon)) in points.into_iter().enumerate() {
            let res = Resolution::try_from((i % 15 + 1) as u8).unwrap();
            let Some(c) = cell_of(lat, lon, res) else { continue };
            for n in c.grid_disk::<Vec<_>>(2) {
                let d = c.grid_distance(n);
                if siblings_adjacent(c, n, res) {
                    taken += 1;
                    assert_eq!(d, Ok(1), "{c} {n}");
                } else if d == Ok(1) && c.parent(res.pred().unwrap()) == n.parent(res.pred().unwrap()) {
                    assert!(c.base_cell().is_pentagon(), "sibling neighbours missed: {c} {n}");
                }
                sibling_neighbors += usize::from(d == Ok(1));
            }
        }
        assert!(
            taken > 5_000 && taken * 3 > sibling_neighbors,
            "{taken} of {sibling_neighbors}"
        );
    }

    #[test]
    fn rule_a_run_of_one_cell_merges_into_the_same_visits_as_one_observation_at_a_time() {
        // A slow walk (many fixes per cell), a fast one (path cells between fixes), a return to
        // earlier cells and fixes without HDOP, at two resolutions: the run-merged cover must
        // give exactly the visits of observing every fix and path cell on its own.
        let mut next = crate::test_rng::lcg_unit(0x5EED);
        let (mut lat, mut lon, mut t) = (48.85, 2.35, 0i64);
        let mut fixes = Vec::new();
        for i in 0..4000 {
            let step = if (i / 500) % 2 == 0 { 2e-5 } else { 6e-4 };
            if i == 3000 {
                (lat, lon) = (48.85, 2.35);
            }
            lat += (next() - 0.3) * step;
            lon += (next() - 0.3) * step;
            t += 1000;
            let mut f = Fix::new(t, lat, lon);
            f.hdop = (i % 7 != 0).then(|| 0.5 + next() as f32 * 3.0);
            fixes.push(f);
        }
        let refs: Vec<&Fix> = fixes.iter().collect();
        for res in [Resolution::Twelve, Resolution::Nine] {
            let mut ix = PointIndexer::default();
            let cells: Vec<Indexed> = refs
                .iter()
                .map(|f| LatLng::new(f.lat, f.lon).ok().map(|ll| ix.to_cell_hex(ll, res)))
                .collect();
            let mut merged = VisitMap::default();
            cover_indexed(&refs, &cells, 3, res, &mut merged);
            // The same walk, one `observe` per fix and per path cell.
            let mut one_by_one = VisitMap::default();
            let mut path = Vec::new();
            for w in 0..refs.len() {
                let (f, (c, _)) = (refs[w], cells[w].unwrap());
                let h = f.hdop_centi().unwrap_or(u32::MAX);
                if w > 0 {
                    let (pf, (pc, _)) = (refs[w - 1], cells[w - 1].unwrap());
                    path_between(pf, pc, f, c, res, &mut path);
                    let ph = pf.hdop_centi().unwrap_or(u32::MAX);
                    let n = path.len() as i64 + 1;
                    for (i, pcell) in path.iter().enumerate() {
                        let t = pf.time_ms + (f.time_ms - pf.time_ms) * (i as i64 + 1) / n;
                        observe(&mut one_by_one, *pcell, 3, t, ph.max(h), false);
                    }
                }
                observe(&mut one_by_one, c, 3, f.time_ms, h, true);
            }
            assert_eq!(merged, one_by_one, "{res:?}");
            // Runs of several fixes in a cell, and (at res 12) cells only the path between
            // fixes crosses.
            let repeated = merged.values().filter(|v| v.fixes > 1).count();
            let path_only = merged.values().filter(|v| v.fixes == 0).count();
            assert!(repeated > 100, "{res:?}: {repeated} of {}", merged.len());
            assert!(
                res != Resolution::Twelve || path_only > 100,
                "{path_only} of {}",
                merged.len()
            );
        }
    }

    #[test]
    fn index_with_the_cached_indexer_equals_direct_indexing() {
        // A 1 Hz drive-like walk over several faces' worth of jumps: the cache must never change
        // a cell.
        let mut ix = h3o::LatLngIndexer::default();
        let mut next = crate::test_rng::lcg_unit(0x1234_5678);
        let (mut lat, mut lon) = (52.5, 13.4);
        for i in 0..200_000 {
            if i % 5000 == 0 {
                lat = next() * 170.0 - 85.0;
                lon = next() * 360.0 - 180.0;
            }
            lat = (lat + (next() - 0.5) * 2e-4).clamp(-89.9, 89.9);
            lon += (next() - 0.5) * 2e-4;
            let ll = LatLng::new(lat, lon).unwrap();
            for res in [Resolution::Nine, Resolution::Twelve, Resolution::Fifteen] {
                assert_eq!(ix.to_cell(ll, res), ll.to_cell(res), "{lat} {lon} {res}");
            }
        }
    }

    #[test]
    fn index_at_two_resolutions_in_one_projection_equals_two_to_cell_calls() {
        // The epoch indexes each fix once for the cover and the anchor resolution
        // (`LatLngIndexer::to_cells`); it must give exactly what separate indexing gives.
        let mut ix = h3o::LatLngIndexer::default();
        let mut next = crate::test_rng::lcg_unit(0x9e37_79b9);
        let (mut lat, mut lon) = (60.17, 24.94);
        for i in 0..100_000 {
            if i % 2000 == 0 {
                lat = next() * 170.0 - 85.0;
                lon = next() * 360.0 - 180.0;
            }
            lat = (lat + (next() - 0.5) * 2e-4).clamp(-89.9, 89.9);
            lon += (next() - 0.5) * 2e-4;
            let ll = LatLng::new(lat, lon).unwrap();
            for (a, b) in [(12, 10), (9, 9), (15, 7), (11, 12)] {
                let (ra, rb) = (Resolution::try_from(a).unwrap(), Resolution::try_from(b).unwrap());
                let got: Vec<CellIndex> = ix.to_cells(ll, [ra, rb]).collect();
                assert_eq!(got, vec![ll.to_cell(ra), ll.to_cell(rb)], "{lat} {lon} {a} {b}");
            }
        }
    }

    fn fix(t: i64, lat: f64, lon: f64, hdop: f32) -> Fix {
        let mut f = Fix::new(t, lat, lon);
        f.hdop = Some(hdop);
        f
    }

    #[test]
    fn dedupe_repeated_passes_are_one_visit() {
        let a = fix(0, 52.5, 13.4, 2.0);
        let b = fix(60_000, 52.5, 13.4, 1.5);
        let mut map = VisitMap::default();
        cover_segment(&[&a], 1, Resolution::Twelve, &mut map);
        cover_segment(&[&b], 1, Resolution::Twelve, &mut map);
        assert_eq!(map.len(), 1);
        let v = map.values().next().unwrap();
        assert_eq!((v.first_ms, v.last_ms, v.fixes, v.best_hdop_centi), (0, 60_000, 2, 150));
    }

    #[test]
    fn dedupe_devices_are_separate_visits() {
        let a = fix(0, 52.5, 13.4, 2.0);
        let mut map = VisitMap::default();
        cover_segment(&[&a], 1, Resolution::Twelve, &mut map);
        cover_segment(&[&a], 2, Resolution::Twelve, &mut map);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn path_fast_car_leaves_no_gap_between_cells() {
        // 30 m/s for 2 s = 60 m; res 13 cells are ~7 m across.
        let a = fix(0, 52.5, 13.4, 1.0);
        let b = fix(2000, 52.5, 13.4 + 60.0 / 67_700.0, 1.0);
        let mut map = VisitMap::default();
        cover_segment(&[&a, &b], 0, Resolution::Thirteen, &mut map);
        let cells: Vec<CellIndex> = map.keys().map(|(c, _)| CellIndex::try_from(*c).unwrap()).collect();
        // Every cell has a neighbour in the set: the covered path is connected.
        for c in &cells {
            assert!(
                cells.iter().any(|o| o != c && c.grid_distance(*o) == Ok(1)),
                "isolated {c}"
            );
        }
        let ca = cell_of(a.lat, a.lon, Resolution::Thirteen).unwrap();
        let cb = cell_of(b.lat, b.lon, Resolution::Thirteen).unwrap();
        assert_eq!(cells.len() as i32, ca.grid_distance(cb).unwrap() + 1);
        // Path cells carry interpolated times strictly inside the step, and no fixes.
        for ((c, _), v) in &map {
            if *c != u64::from(ca) && *c != u64::from(cb) {
                assert!(v.first_ms > 0 && v.first_ms < 2000 && v.fixes == 0);
            }
        }
    }

    #[test]
    fn point_dedupe_equals_a_plain_group_by_cell_even_with_revisits_and_unordered_times() {
        // A walk that leaves and re-enters cells, with some times out of order.
        let (mut t, mut la, mut lo) = (Vec::new(), Vec::new(), Vec::new());
        let mut s = 99u64;
        for i in 0..20_000i64 {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let jitter = ((s >> 33) % 7) as i64 - 3;
            t.push(i * 1000 + jitter * 700);
            la.push(52.5 + ((i % 400) as f64) * 2e-6 * if (i / 400) % 2 == 0 { 1.0 } else { -1.0 });
            lo.push(13.4 + ((s >> 40) % 50) as f64 * 1e-6);
        }
        let mut want: std::collections::BTreeMap<u64, (u32, i64, i64)> = Default::default();
        for ((t, la), lo) in t.iter().zip(&la).zip(&lo) {
            let c = u64::from(cell_of(*la, *lo, Resolution::Twelve).unwrap());
            let e = want.entry(c).or_insert((0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 = e.1.min(*t);
            e.2 = e.2.max(*t);
        }
        let got = dedupe_points(&t, &la, &lo, Resolution::Twelve);
        let want: Vec<(u64, u32, i64, i64)> = want.into_iter().map(|(c, (n, a, b))| (c, n, a, b)).collect();
        assert!(want.len() > 10);
        assert_eq!(got, want);
    }
}

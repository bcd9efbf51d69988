//! Shapes to H3 cells: polygons by cell centre (h3o's tiler, `ContainsCentroid`: a cell is in a
//! polygon when its centre is, so adjacent polygons never share a cell), lines by walking them.

use h3o::geom::{ContainmentMode, TilerBuilder};
use h3o::{CellIndex, LatLng, Resolution};

/// Longest step when walking a road segment, metres.
pub const STEP_M: f64 = 1.0;

/// The cells whose centres lie inside any of `polygons` (longitude/latitude degrees), sorted and
/// distinct. Polygons crossing the antimeridian are split by h3o's transmeridian heuristic.
///
/// # Errors
/// A message when a polygon is invalid (non-finite or out-of-range coordinates, open ring).
///
/// ```
/// use geo::polygon;
/// let p = polygon![(x: 13.40, y: 52.52), (x: 13.41, y: 52.52), (x: 13.41, y: 52.53), (x: 13.40, y: 52.53)];
/// let cells = tessera::places::tile::polygon_cells(&[p], h3o::Resolution::Nine).unwrap();
/// assert!(cells.len() > 5 && cells.windows(2).all(|w| w[0] < w[1]));
/// ```
pub fn polygon_cells(polygons: &[geo::Polygon<f64>], res: Resolution) -> Result<Vec<u64>, String> {
    let mut tiler = TilerBuilder::new(res)
        .containment_mode(ContainmentMode::ContainsCentroid)
        .build();
    for p in polygons {
        tiler.add(p.clone()).map_err(|e| format!("invalid polygon: {e}"))?;
    }
    let mut cells: Vec<u64> = tiler.into_coverage().map(u64::from).collect();
    cells.sort_unstable();
    cells.dedup();
    Ok(cells)
}

/// The cells a set of lines passes through, each with the length of line inside it in mm, then
/// `buffer` rings of neighbours (length 0). Each segment is walked in `ceil(len / STEP_M)` equal
/// steps, linear in longitude/latitude (across the antimeridian the short way); a step's length
/// (the segment's great-circle length in mm, split so the steps sum to it exactly) goes to the
/// cell of its midpoint. Sorted by cell.
///
/// # Errors
/// A message naming the coordinate when a vertex is not a valid longitude/latitude.
///
/// ```
/// use geo::line_string;
/// let l = line_string![(x: 13.400, y: 52.52), (x: 13.401, y: 52.52)]; // 67.7 m
/// let c = tessera::places::tile::line_cells(&[l], h3o::Resolution::Twelve, 0).unwrap();
/// let mm: u64 = c.iter().map(|x| x.1).sum();
/// assert!((67_000..68_500).contains(&mm), "{mm}");
/// ```
pub fn line_cells(lines: &[geo::LineString<f64>], res: Resolution, buffer: u32) -> Result<Vec<(u64, u64)>, String> {
    use rayon::prelude::*;
    let segments: Vec<(geo::Coord<f64>, geo::Coord<f64>)> =
        lines.iter().flat_map(|l| l.lines().map(|s| (s.start, s.end))).collect();
    // Chunks of segments are walked in parallel, each into its own (cell, mm) list; the lists are
    // concatenated in segment order and summed per cell (integer sums: the result does not depend
    // on the chunking). A chunk stops at its first bad segment, so the first error in chunk order
    // is the first bad segment of the input.
    let parts: Vec<Result<Vec<(u64, u64)>, String>> = segments
        .par_chunks(1024)
        .map(|chunk| {
            let mut out = Vec::new();
            let mut ix = crate::cells::PointIndexer::default();
            for (a, b) in chunk {
                walk(*a, *b, res, &mut ix, &mut out)?;
            }
            Ok(out)
        })
        .collect();
    let mut walked = Vec::new();
    for p in parts {
        walked.extend(p?);
    }
    let centre = sum_by_cell(walked);
    if buffer == 0 {
        return Ok(centre);
    }
    let rings: Vec<(u64, u64)> = centre
        .par_chunks(4096)
        .flat_map_iter(|chunk| {
            chunk.iter().flat_map(|&(c, _)| {
                let cell = CellIndex::try_from(c).expect("cells come from h3o");
                cell.grid_disk::<Vec<_>>(buffer).into_iter().map(|n| (u64::from(n), 0))
            })
        })
        .collect();
    let mut all = centre;
    all.extend(rings);
    Ok(sum_by_cell(all))
}

/// Sort `(cell, mm)` pairs by cell and add up each cell's lengths.
fn sum_by_cell(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (c, mm) in v {
        match out.last_mut() {
            Some(last) if last.0 == c => last.1 += mm,
            _ => out.push((c, mm)),
        }
    }
    out
}

/// Walk one segment in `ceil(len / STEP_M)` steps, pushing `(cell, mm)` per step (consecutive
/// steps in one cell are merged).
fn walk(
    a: geo::Coord<f64>,
    b: geo::Coord<f64>,
    res: Resolution,
    ix: &mut crate::cells::PointIndexer,
    out: &mut Vec<(u64, u64)>,
) -> Result<(), String> {
    let mut cell = |lon: f64, lat: f64| -> Result<u64, String> {
        let lon = if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        };
        LatLng::new(lat, lon)
            .map(|p| u64::from(ix.to_cell(p, res)))
            .map_err(|_| format!("invalid coordinate ({lon}, {lat})"))
    };
    if !(a.y.abs() <= 90.0 && b.y.abs() <= 90.0 && a.x.abs() <= 180.0 && b.x.abs() <= 180.0) {
        return Err(format!("invalid coordinate ({}, {}) or ({}, {})", a.x, a.y, b.x, b.y));
    }
    let mut dx = b.x - a.x;
    if dx > 180.0 {
        dx -= 360.0;
    } else if dx < -180.0 {
        dx += 360.0;
    }
    let len_m = crate::quality::distance_m(a.y, a.x, b.y, b.x);
    let len_mm = (len_m * 1000.0).round() as u64;
    let n = ((len_m / STEP_M).ceil() as u64).clamp(1, 100_000_000);
    let mut given = 0u64;
    for i in 0..n {
        let t = (i as f64 + 0.5) / n as f64;
        let c = cell(a.x + dx * t, a.y + (b.y - a.y) * t)?;
        // Step i gets floor((i+1)·L/n) − floor(i·L/n): the steps sum to L exactly.
        let upto = ((u128::from(len_mm) * u128::from(i + 1)) / u128::from(n)) as u64;
        match out.last_mut() {
            Some(last) if last.0 == c => last.1 += upto - given,
            _ => out.push((c, upto - given)),
        }
        given = upto;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{line_string, polygon};

    #[test]
    fn adjacent_polygons_share_no_cell_by_centroid_containment() {
        let west = polygon![(x: 13.40, y: 52.52), (x: 13.41, y: 52.52), (x: 13.41, y: 52.53), (x: 13.40, y: 52.53)];
        let east = polygon![(x: 13.41, y: 52.52), (x: 13.42, y: 52.52), (x: 13.42, y: 52.53), (x: 13.41, y: 52.53)];
        let a = polygon_cells(&[west], Resolution::Eleven).unwrap();
        let b = polygon_cells(&[east], Resolution::Eleven).unwrap();
        assert!(a.iter().all(|c| b.binary_search(c).is_err()));
        assert!(!a.is_empty() && !b.is_empty());
    }

    #[test]
    fn line_lengths_sum_to_the_great_circle_length() {
        let l = line_string![(x: 24.94, y: 60.17), (x: 24.95, y: 60.171), (x: 24.951, y: 60.175)];
        let c = line_cells(std::slice::from_ref(&l), Resolution::Twelve, 0).unwrap();
        let want: u64 = l
            .lines()
            .map(|s| (crate::quality::distance_m(s.start.y, s.start.x, s.end.y, s.end.x) * 1000.0).round() as u64)
            .sum();
        assert_eq!(c.iter().map(|x| x.1).sum::<u64>(), want);
        // Consecutive walk cells are neighbours: no gap along the line.
        assert!(c.len() > 50);
    }

    /// The walk as first written: one segment after another into one ordered map.
    fn serial_line_cells(lines: &[geo::LineString<f64>], res: Resolution, buffer: u32) -> Vec<(u64, u64)> {
        let mut acc = std::collections::BTreeMap::new();
        let mut ix = crate::cells::PointIndexer::default();
        for l in lines {
            for seg in l.lines() {
                let mut steps = Vec::new();
                walk(seg.start, seg.end, res, &mut ix, &mut steps).unwrap();
                for (c, mm) in steps {
                    *acc.entry(c).or_insert(0u64) += mm;
                }
            }
        }
        for c in acc.keys().copied().collect::<Vec<_>>() {
            for n in CellIndex::try_from(c).unwrap().grid_disk::<Vec<_>>(buffer) {
                acc.entry(u64::from(n)).or_insert(0);
            }
        }
        acc.into_iter().collect()
    }

    #[test]
    fn walk_in_parallel_chunks_equals_a_serial_walk() {
        // 3,000 segments (three chunks) that cross, revisit and follow each other.
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let lines: Vec<geo::LineString<f64>> = (0..100)
            .map(|_| {
                let (mut x, mut y) = (24.94 + next() * 0.01, 60.17 + next() * 0.005);
                let pts: Vec<(f64, f64)> = (0..31)
                    .map(|_| {
                        x += (next() - 0.5) * 4e-4;
                        y += (next() - 0.5) * 2e-4;
                        (x, y)
                    })
                    .collect();
                geo::LineString::from(pts)
            })
            .collect();
        for buffer in [0, 1, 2] {
            assert_eq!(
                line_cells(&lines, Resolution::Twelve, buffer).unwrap(),
                serial_line_cells(&lines, Resolution::Twelve, buffer),
                "buffer {buffer}"
            );
        }
    }

    #[test]
    fn the_first_bad_segment_is_the_error_whatever_the_chunking() {
        let good = line_string![(x: 24.94, y: 60.17), (x: 24.941, y: 60.17)];
        let mut lines = vec![good; 2500];
        lines[1800] = line_string![(x: 24.94, y: 60.17), (x: 24.94, y: 95.0)];
        lines[2400] = line_string![(x: 200.0, y: 10.0), (x: 10.0, y: 10.0)];
        let e = line_cells(&lines, Resolution::Twelve, 0).unwrap_err();
        assert!(e.contains("95"), "{e}");
    }

    #[test]
    fn buffer_adds_neighbour_rings_with_no_length() {
        let l = line_string![(x: 24.94, y: 60.17), (x: 24.941, y: 60.17)];
        let bare = line_cells(std::slice::from_ref(&l), Resolution::Twelve, 0).unwrap();
        let wide = line_cells(&[l], Resolution::Twelve, 1).unwrap();
        assert!(wide.len() > bare.len());
        let bare_mm: u64 = bare.iter().map(|x| x.1).sum();
        assert_eq!(wide.iter().map(|x| x.1).sum::<u64>(), bare_mm);
    }

    #[test]
    fn a_segment_across_the_antimeridian_goes_the_short_way() {
        let l = line_string![(x: 179.9995, y: 10.0), (x: -179.9995, y: 10.0)]; // ~110 m
        let c = line_cells(&[l], Resolution::Twelve, 0).unwrap();
        assert!(c.len() < 30, "{}", c.len());
        let mm: u64 = c.iter().map(|x| x.1).sum();
        assert!((100_000..120_000).contains(&mm), "{mm}");
    }

    #[test]
    fn invalid_coordinates_are_an_error_not_a_panic() {
        let l = line_string![(x: 200.0, y: 10.0), (x: 10.0, y: 10.0)];
        assert!(line_cells(&[l], Resolution::Twelve, 0).is_err());
        let p = polygon![(x: f64::NAN, y: 0.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)];
        assert!(polygon_cells(&[p], Resolution::Nine).is_err());
    }
}

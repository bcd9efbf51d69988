//! An epoch's cells, tracks and regions as [`Layer`]s.

use super::{cell_geometry, ppm_values, Feature, Field, FieldKind as K, Layer, Value as V};
use crate::epoch::Epoch;
use crate::lake::{Error, Lake, Result};
use crate::quality::Verdict;
use crate::tables;
use arrow_array::{Array, Decimal128Array, StringArray, UInt64Array};
use std::collections::BTreeMap;

fn f(name: &'static str, kind: K) -> Field {
    Field { name, kind }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// Every cell of the coverage state after epoch `e` (as [`crate::geoparquet::epoch_cells`]):
/// `cell_id`, `first_ep`, `last_ep`, `times_cov`, `age_ep`, `visits`, `points` (double) and
/// `points_txt` (exact), one multipolygon per cell (two parts across the antimeridian).
///
/// # Errors
/// As [`crate::geoparquet::epoch_cells`].
///
/// ```no_run
/// # let lake = tessera::lake::Lake::open(std::path::Path::new("lake")).unwrap();
/// let l = tessera::gis::layers::cells(&lake, &"2026-W47".parse().unwrap()).unwrap();
/// ```
pub fn cells(lake: &Lake, e: &Epoch) -> Result<Layer> {
    let rows = crate::geoparquet::epoch_cells(lake, e)?;
    let features = rows
        .into_iter()
        .map(|c| {
            let (p, p_txt) = ppm_values(c.points);
            Feature {
                geometry: cell_geometry(c.cell),
                values: vec![
                    V::Text(c.cell.to_string()),
                    V::Text(c.first_epoch.to_string()),
                    V::Text(c.last_epoch.to_string()),
                    V::Integer64(i64::from(c.times_covered)),
                    V::Integer64(i64::from(c.age_epochs)),
                    V::Integer64(i64::from(c.visits)),
                    V::Real(p),
                    V::Text(p_txt),
                ],
            }
        })
        .collect();
    Ok(Layer {
        name: "cells".into(),
        fields: vec![
            f("cell_id", K::Text),
            f("first_ep", K::Text),
            f("last_ep", K::Text),
            f("times_cov", K::Integer64),
            f("age_ep", K::Integer64),
            f("visits", K::Integer64),
            f("points", K::Real),
            f("points_txt", K::Text),
        ],
        features,
    })
}

/// The tracks of epoch `e`: every source's fixes inside the window, judged by the fix gates and
/// trace checks of the epoch's policy (its stored `policy.toml`, else the default), as line
/// strings of consecutive fixes with one verdict — `accepted` runs per segment, `rejected` runs
/// per reason — with `device`, `source` (content hash), `file`, `status`, `reason`, `segment`,
/// `fixes`, `first_time`, `last_time` (RFC 3339 UTC, ms). A run of a single fix has no line: the second value returned counts
/// those fixes.
///
/// # Errors
/// I/O and data errors naming the file; [`Error::Invalid`] for a stored policy that does not
/// validate.
///
/// ```no_run
/// # let lake = tessera::lake::Lake::open(std::path::Path::new("lake")).unwrap();
/// let (layer, single) = tessera::gis::layers::tracks(&lake, &"2026-W47".parse().unwrap()).unwrap();
/// ```
pub fn tracks(lake: &Lake, e: &Epoch) -> Result<(Layer, u64)> {
    let stored = lake.epoch_dir(e).join("policy.toml");
    let policy = if stored.is_file() {
        crate::policy::Policy::load(&stored)?
    } else {
        crate::policy::Policy::default()
    };
    let k = policy.kernels()?;
    let (start, end) = (e.start_ms(), e.end_ms());
    let mut features = Vec::new();
    let mut single = 0u64;
    for m in lake.sources()? {
        if !matches!((m.min_time_ms, m.max_time_ms), (Some(a), Some(b)) if a < end && b >= start) {
            continue;
        }
        let (fixes, _) = lake.read_fixes(&m.hash)?;
        let fixes: Vec<_> = fixes
            .into_iter()
            .filter(|x| x.time_ms >= start && x.time_ms < end)
            .collect();
        let verdicts = crate::quality::clean(&fixes, &k);
        let key = |v: &Verdict| match v {
            Verdict::Accepted(s) => (true, Some(*s), String::new()),
            Verdict::Rejected(r, _) => (false, None, r.as_str().to_string()),
        };
        let mut i = 0;
        while i < fixes.len() {
            let kk = key(&verdicts[i]);
            let mut j = i + 1;
            while j < fixes.len() && key(&verdicts[j]) == kk {
                j += 1;
            }
            if j - i < 2 {
                single += (j - i) as u64;
            } else {
                let line: Vec<(f64, f64)> = fixes[i..j].iter().map(|x| (x.lon, x.lat)).collect();
                features.push(Feature {
                    geometry: geo::Geometry::LineString(geo::LineString::from(line)),
                    values: vec![
                        V::Text(m.device.clone()),
                        V::Text(m.hash.clone()),
                        V::Text(m.name.clone()),
                        V::Text(if kk.0 { "accepted" } else { "rejected" }.into()),
                        if kk.0 { V::Null } else { V::Text(kk.2.clone()) },
                        kk.1.map_or(V::Null, |s| V::Integer64(i64::from(s))),
                        V::Integer64((j - i) as i64),
                        V::Text(rfc3339(fixes[i].time_ms)),
                        V::Text(rfc3339(fixes[j - 1].time_ms)),
                    ],
                });
            }
            i = j;
        }
    }
    let fields = vec![
        f("device", K::Text),
        f("source", K::Text),
        f("file", K::Text),
        f("status", K::Text),
        f("reason", K::Text),
        f("segment", K::Integer64),
        f("fixes", K::Integer64),
        f("first_time", K::Text),
        f("last_time", K::Text),
    ];
    Ok((
        Layer {
            name: "tracks".into(),
            fields,
            features,
        },
        single,
    ))
}

/// The regions of epoch `e` (from its `places.parquet` and `regions.parquet`): each region's
/// cells dissolved into one multipolygon, with `region`, `weight`/`weight_txt`, `cells`,
/// `fresh`, `road_km`, `fresh_km`, `contribs` and `points`/`points_txt`. A region no cell of
/// which lies at the scoring resolution has no geometry and is left out (the second value
/// counts them).
///
/// # Errors
/// [`Error::Invalid`] when the epoch has no places; I/O and data errors naming the file.
///
/// ```no_run
/// # let lake = tessera::lake::Lake::open(std::path::Path::new("lake")).unwrap();
/// let (layer, empty) = tessera::gis::layers::regions(&lake, &"2026-W47".parse().unwrap()).unwrap();
/// ```
pub fn regions(lake: &Lake, e: &Epoch) -> Result<(Layer, u64)> {
    let dir = lake.epoch_dir(e);
    let read = |name: &str| -> Result<Vec<arrow_array::RecordBatch>> {
        let p = dir.join(name);
        if !p.is_file() {
            return Err(Error::Invalid(format!(
                "epoch {e} has no {name} (it was run without [[regions]], [roads] or [[bounties]] in its policy)"
            )));
        }
        let bytes = std::fs::read(&p).map_err(|source| Error::Io {
            path: p.display().to_string(),
            source,
        })?;
        tables::from_parquet(bytes.into()).map_err(|x| Error::Data {
            path: p.display().to_string(),
            message: x.to_string(),
        })
    };
    let data = |name: &str, m: String| Error::Data {
        path: dir.join(name).display().to_string(),
        message: m,
    };
    let mut cells: BTreeMap<String, Vec<h3o::CellIndex>> = BTreeMap::new();
    for b in read("places.parquet")? {
        let kind = tables::column::<StringArray>(&b, "kind").map_err(|m| data("places.parquet", m))?;
        let name = tables::column::<StringArray>(&b, "name").map_err(|m| data("places.parquet", m))?;
        let cell = tables::column::<UInt64Array>(&b, "cell").map_err(|m| data("places.parquet", m))?;
        for i in 0..b.num_rows() {
            if kind.value(i) == "region" {
                let c = h3o::CellIndex::try_from(cell.value(i)).map_err(|x| data("places.parquet", x.to_string()))?;
                cells.entry(name.value(i).to_string()).or_default().push(c);
            }
        }
    }
    let mut features = Vec::new();
    let mut empty = 0u64;
    let solvent = h3o::geom::SolventBuilder::new().build();
    for b in read("regions.parquet")? {
        let col = |n: &str| tables::column::<UInt64Array>(&b, n).map_err(|m| data("regions.parquet", m));
        let region = tables::column::<StringArray>(&b, "region").map_err(|m| data("regions.parquet", m))?;
        let weight = tables::column::<Decimal128Array>(&b, "weight").map_err(|m| data("regions.parquet", m))?;
        let points = tables::column::<Decimal128Array>(&b, "points").map_err(|m| data("regions.parquet", m))?;
        let (n_cells, fresh, road, fresh_road, contribs) = (
            col("cells")?,
            col("fresh_cells")?,
            col("road_mm")?,
            col("fresh_road_mm")?,
            col("contributors")?,
        );
        for i in 0..b.num_rows() {
            if region.is_null(i) {
                continue; // cells outside every region have no outline
            }
            let name = region.value(i).to_string();
            let Some(cs) = cells.get(&name).filter(|c| !c.is_empty()) else {
                empty += 1;
                continue;
            };
            let shape = solvent
                .dissolve(cs.iter().copied())
                .map_err(|x| data("places.parquet", format!("region {name}: {x}")))?;
            let (w, w_txt) = ppm_values(weight.value(i));
            let (p, p_txt) = ppm_values(points.value(i));
            let km = |mm: u64| mm as f64 / 1e6;
            features.push(Feature {
                geometry: geo::Geometry::MultiPolygon(shape),
                values: vec![
                    V::Text(name),
                    V::Real(w),
                    V::Text(w_txt),
                    V::Integer64(n_cells.value(i) as i64),
                    V::Integer64(fresh.value(i) as i64),
                    V::Real(km(road.value(i))),
                    V::Real(km(fresh_road.value(i))),
                    V::Integer64(contribs.value(i) as i64),
                    V::Real(p),
                    V::Text(p_txt),
                ],
            });
        }
    }
    let fields = vec![
        f("region", K::Text),
        f("weight", K::Real),
        f("weight_txt", K::Text),
        f("cells", K::Integer64),
        f("fresh", K::Integer64),
        f("road_km", K::Real),
        f("fresh_km", K::Real),
        f("contribs", K::Integer64),
        f("points", K::Real),
        f("points_txt", K::Text),
    ];
    Ok((
        Layer {
            name: "regions".into(),
            fields,
            features,
        },
        empty,
    ))
}

//! [`Places`] from the policy's `[[regions]]`, `[roads]` and `[[bounties]]`: read each source,
//! turn its shapes into cells at the scoring resolution, resolve overlaps.

use super::shapes::{is_geojson, lines, polygons, read_geojson, PlacesError, Shape, ShapeReader};
use super::{BountyArea, PlaceSource, Places, Region};
use crate::fixed::{to_ppm, Ppm};
use crate::policy::Policy;
use std::collections::BTreeMap;
use std::path::Path;

/// Read every place source of `policy` (paths relative to `base`, the policy file's directory)
/// and build the [`Places`] at the policy's H3 resolution. GeoJSON and `.osm.pbf` are read
/// natively, everything else through `reader`.
///
/// # Errors
/// [`PlacesError`] naming the file and, for a bad feature, its id and field (missing name,
/// weight out of [0, 1000], a geometry that is not a polygon or line, invalid coordinates).
///
/// ```
/// let p = tessera::policy::Policy::default();
/// let places = tessera::places::build(&p, std::path::Path::new("."), &tessera::places::shapes::Native).unwrap();
/// assert!(places.is_empty());
/// ```
pub fn build(policy: &Policy, base: &Path, reader: &dyn ShapeReader) -> Result<Places, PlacesError> {
    build_with(policy, base, reader, source_records(policy, base)?)
}

/// The source files `policy` names (paths relative to `base`), in the order [`build`] records
/// them in [`Places::sources`]: regions, roads, bounties; each with the SHA-256 of its bytes.
///
/// # Errors
/// [`PlacesError::Source`] naming a file that cannot be read.
///
/// ```
/// let p = tessera::policy::Policy::default();
/// assert!(tessera::places::source_records(&p, std::path::Path::new(".")).unwrap().is_empty());
/// ```
pub fn source_records(policy: &Policy, base: &Path) -> Result<Vec<PlaceSource>, PlacesError> {
    let mut sources = Vec::new();
    for r in &policy.regions {
        sources.push(source_record("region", &r.source, &base.join(&r.source))?);
    }
    if let Some(r) = &policy.roads {
        sources.push(source_record("roads", &r.source, &base.join(&r.source))?);
    }
    for b in &policy.bounties {
        sources.push(source_record(
            &format!("bounty:{}", b.id),
            &b.source,
            &base.join(&b.source),
        )?);
    }
    Ok(sources)
}

/// [`build`] with the source records already made by [`source_records`].
pub(crate) fn build_with(
    policy: &Policy,
    base: &Path,
    reader: &dyn ShapeReader,
    sources: Vec<PlaceSource>,
) -> Result<Places, PlacesError> {
    let res = h3o::Resolution::try_from(policy.h3_resolution)
        .map_err(|_| PlacesError::source(base, "h3_resolution out of range"))?;
    let (regions, region_cells) = regions(policy, base, reader, res)?;
    let roads = match &policy.roads {
        None => None,
        Some(r) => {
            let path = base.join(&r.source);
            let shapes = if super::osm::is_osm_pbf(&path) {
                super::osm::read_roads(&path, &r.highways)?.0
            } else {
                read(reader, &path, r.layer.as_deref())?
                    .into_iter()
                    .filter(|s| s.attrs.get("highway").is_some_and(|h| r.highways.contains(h)))
                    .collect()
            };
            let mut ls = Vec::new();
            for s in &shapes {
                ls.extend(lines(&s.geometry).map_err(|m| feature_error(&path, s, m))?);
            }
            Some(super::tile::line_cells(&ls, res, r.buffer_cells).map_err(|m| PlacesError::source(&path, m))?)
        }
    };
    let mut bounties = Vec::new();
    for b in &policy.bounties {
        let path = base.join(&b.source);
        let mut polys = Vec::new();
        for s in read(reader, &path, b.layer.as_deref())? {
            polys.extend(polygons(&s.geometry).map_err(|m| feature_error(&path, &s, m))?);
        }
        let cells = super::tile::polygon_cells(&polys, res).map_err(|m| PlacesError::source(&path, m))?;
        bounties.push(BountyArea {
            id: b.id.clone(),
            cells,
        });
    }
    Ok(Places {
        regions,
        region_cells,
        roads,
        bounties,
        sources,
    })
}

/// Whether any of the policy's place sources is read through the caller's [`ShapeReader`]
/// (every format but GeoJSON and, for roads, `.osm.pbf`, which tessera reads itself): only then
/// does the reader's [`ShapeReader::id`] belong in the places cache key.
pub(crate) fn needs_reader(policy: &Policy, base: &Path) -> bool {
    let other = |source: &str| !is_geojson(&base.join(source));
    policy.regions.iter().any(|r| other(&r.source))
        || policy
            .roads
            .as_ref()
            .is_some_and(|r| other(&r.source) && !super::osm::is_osm_pbf(&base.join(&r.source)))
        || policy.bounties.iter().any(|b| other(&b.source))
}

fn read(reader: &dyn ShapeReader, path: &Path, layer: Option<&str>) -> Result<Vec<Shape>, PlacesError> {
    if is_geojson(path) {
        read_geojson(path, layer)
    } else {
        reader.read(path, layer)
    }
}

fn feature_error(path: &Path, s: &Shape, message: String) -> PlacesError {
    PlacesError::Feature {
        path: path.display().to_string(),
        fid: s.fid,
        message,
    }
}

fn source_record(role: &str, written: &str, path: &Path) -> Result<PlaceSource, PlacesError> {
    let bytes = std::fs::read(path).map_err(|e| PlacesError::source(path, e.to_string()))?;
    Ok(PlaceSource {
        role: role.to_string(),
        path: written.to_string(),
        sha256: crate::lake::sha256_hex(&bytes),
    })
}

/// Regions sorted by name, and (cell, region index) sorted by cell.
type RegionCells = (Vec<Region>, Vec<(u64, u32)>);

/// One region's polygons and weight, per `[[regions]]` entry, keyed by name.
type Entry = BTreeMap<String, (Ppm, Vec<geo::Polygon<f64>>)>;

fn regions(
    policy: &Policy,
    base: &Path,
    reader: &dyn ShapeReader,
    res: h3o::Resolution,
) -> Result<RegionCells, PlacesError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut weights: BTreeMap<String, Ppm> = BTreeMap::new();
    for r in &policy.regions {
        let path = base.join(&r.source);
        let mut entry = Entry::new();
        for s in read(reader, &path, r.layer.as_deref())? {
            let name = s
                .attrs
                .get(&r.name_field)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| feature_error(&path, &s, format!("no value in name field {:?}", r.name_field)))?
                .clone();
            let w = region_weight(r, &s).map_err(|m| feature_error(&path, &s, m))?;
            if let Some(prev) = weights.insert(name.clone(), w).filter(|p| *p != w) {
                return Err(feature_error(
                    &path,
                    &s,
                    format!(
                        "region {name:?} has weights {} and {}",
                        prev as f64 / 1e6,
                        w as f64 / 1e6
                    ),
                ));
            }
            let polys = polygons(&s.geometry).map_err(|m| feature_error(&path, &s, m))?;
            entry.entry(name).or_insert((w, Vec::new())).1.extend(polys);
        }
        entries.push(entry);
    }
    let regions: Vec<Region> = weights
        .iter()
        .map(|(name, w)| Region {
            name: name.clone(),
            weight: *w,
        })
        .collect();
    // (cell, precedence, region): the first entry wins, then the first name within it.
    // Tiled in parallel (one job per entry and name), kept in precedence order.
    let jobs: Vec<(usize, &String, &Vec<geo::Polygon<f64>>)> = entries
        .iter()
        .enumerate()
        .flat_map(|(e, entry)| entry.iter().map(move |(name, (_, polys))| (e, name, polys)))
        .collect();
    let tiled: Vec<_> = {
        use rayon::prelude::*;
        jobs.par_iter()
            .map(|(_, _, polys)| super::tile::polygon_cells(polys, res))
            .collect()
    };
    let mut all: Vec<(u64, u32, u32)> = Vec::new();
    for (precedence, ((e, name, _), cells)) in jobs.iter().zip(tiled).enumerate() {
        let idx = regions.binary_search_by(|r| r.name.cmp(name)).expect("named") as u32;
        let cells = cells.map_err(|m| {
            PlacesError::source(&base.join(&policy.regions[*e].source), format!("region {name:?}: {m}"))
        })?;
        all.extend(cells.into_iter().map(|c| (c, precedence as u32, idx)));
    }
    all.sort_unstable();
    all.dedup_by_key(|x| x.0);
    Ok((regions, all.into_iter().map(|(c, _, r)| (c, r)).collect()))
}

fn region_weight(r: &super::policy::RegionSource, s: &Shape) -> Result<Ppm, String> {
    let w = match (&r.weight, &r.weight_field) {
        (Some(w), _) => *w,
        (None, Some(f)) => {
            let v = s
                .attrs
                .get(f)
                .ok_or_else(|| format!("no value in weight field {f:?}"))?;
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("weight field {f:?}: {v:?} is not a number"))?
        }
        (None, None) => 1.0,
    };
    to_ppm(w, 1000.0).ok_or_else(|| format!("weight {w} is not in [0, 1000]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn square(name: &str, w: f64, x0: f64, y0: f64, d: f64) -> String {
        format!(
            r#"{{"type":"Feature","properties":{{"name":"{name}","w":{w}}},"geometry":{{"type":"Polygon","coordinates":[[[{x0},{y0}],[{x1},{y0}],[{x1},{y1}],[{x0},{y1}],[{x0},{y0}]]]}}}}"#,
            x1 = x0 + d,
            y1 = y0 + d
        )
    }

    #[test]
    fn overlapping_regions_first_entry_then_first_name_wins() {
        let d = tempfile::tempdir().unwrap();
        let fc = |f: &[String]| format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, f.join(","));
        write(
            d.path(),
            "a.geojson",
            &fc(&[
                square("zeta", 2.0, 13.40, 52.52, 0.01),
                square("alpha", 3.0, 13.405, 52.52, 0.01),
            ]),
        );
        write(d.path(), "b.geojson", &fc(&[square("city", 1.5, 13.39, 52.51, 0.05)]));
        let p = Policy::from_toml_str(
            "h3_resolution = 10\n[[regions]]\nsource = \"a.geojson\"\nname_field = \"name\"\nweight_field = \"w\"\n\
             [[regions]]\nsource = \"b.geojson\"\nname_field = \"name\"\nweight_field = \"w\"\n",
        )
        .unwrap();
        let pl = build(&p, d.path(), &super::super::shapes::Native).unwrap();
        let names: Vec<&str> = pl.regions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["alpha", "city", "zeta"]);
        let cell = |lat: f64, lon: f64| u64::from(h3o::LatLng::new(lat, lon).unwrap().to_cell(h3o::Resolution::Ten));
        // In both zeta and alpha: alpha (first name of the first entry).
        assert_eq!(pl.region_of(cell(52.525, 13.4075)), Some(0));
        // Only zeta (and city, a later entry): zeta.
        assert_eq!(pl.region_of(cell(52.525, 13.402)), Some(2));
        // Only city.
        assert_eq!(pl.region_of(cell(52.55, 13.43)), Some(1));
        assert_eq!(pl.region_of(cell(52.7, 13.43)), None);
        assert_eq!(pl.sources.len(), 2);
    }

    #[test]
    fn a_feature_without_a_name_or_with_a_bad_weight_is_an_error_naming_it() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "r.geojson",
            &format!(
                r#"{{"type":"FeatureCollection","features":[{}]}}"#,
                square("x", 2000.0, 1.0, 1.0, 0.01)
            ),
        );
        let p =
            Policy::from_toml_str("[[regions]]\nsource = \"r.geojson\"\nname_field = \"name\"\nweight_field = \"w\"\n")
                .unwrap();
        let e = build(&p, d.path(), &super::super::shapes::Native)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("r.geojson") && e.contains("feature 0") && e.contains("2000"),
            "{e}"
        );
        let p = Policy::from_toml_str("[[regions]]\nsource = \"r.geojson\"\nname_field = \"NAME\"\n").unwrap();
        let e = build(&p, d.path(), &super::super::shapes::Native)
            .unwrap_err()
            .to_string();
        assert!(e.contains("NAME"), "{e}");
        let p = Policy::from_toml_str("[[regions]]\nsource = \"missing.geojson\"\nname_field = \"name\"\n").unwrap();
        let e = build(&p, d.path(), &super::super::shapes::Native)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.geojson"), "{e}");
    }
}

//! Road ways from an OpenStreetMap extract (`.osm.pbf`, read with the `osmpbf` crate): every way
//! tagged `highway=<class>` with a class the policy counts, as a line string of its nodes.
//! Coordinates are the PBF's fixed-point values (100 nanodegrees) converted once; ways come out
//! in id order, so the result does not depend on the file's block order.

use super::shapes::{PlacesError, Shape};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::path::Path;

/// Whether a path names an OpenStreetMap PBF extract (`.osm.pbf` or `.pbf`).
///
/// ```
/// assert!(tessera::places::osm::is_osm_pbf(std::path::Path::new("Helsinki.osm.pbf")));
/// ```
pub fn is_osm_pbf(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("pbf"))
}

/// The road ways of an extract whose `highway` tag is one of `classes`, as [`Shape`]s with a
/// line string and the attributes `highway` and `osm_id` (fid = way id). A way node missing
/// from the extract (cut at its edge) splits the way there; parts with fewer than two nodes are
/// dropped, and counted in the returned number of missing nodes.
///
/// # Errors
/// [`PlacesError`] naming the file when it cannot be read or decoded.
///
/// ```no_run
/// let (roads, missing) = tessera::places::osm::read_roads(
///     std::path::Path::new("Helsinki.osm.pbf"), &tessera::places::policy::default_highways()).unwrap();
/// ```
pub fn read_roads(path: &Path, classes: &[String]) -> Result<(Vec<Shape>, u64), PlacesError> {
    let reader = osmpbf::ElementReader::from_path(path).map_err(|e| PlacesError::source(path, e.to_string()))?;
    let mut nodes: FxHashMap<i64, (i32, i32)> = FxHashMap::default();
    let mut ways: BTreeMap<i64, (String, Vec<i64>)> = BTreeMap::new();
    reader
        .for_each(|el| match el {
            osmpbf::Element::Node(n) => {
                nodes.insert(n.id(), (n.decimicro_lon(), n.decimicro_lat()));
            }
            osmpbf::Element::DenseNode(n) => {
                nodes.insert(n.id(), (n.decimicro_lon(), n.decimicro_lat()));
            }
            osmpbf::Element::Way(w) => {
                if let Some((_, class)) = w.tags().find(|(k, _)| *k == "highway")
                    && classes.iter().any(|c| c == class)
                {
                    ways.insert(w.id(), (class.to_string(), w.refs().collect()));
                }
            }
            osmpbf::Element::Relation(_) => {}
        })
        .map_err(|e| PlacesError::source(path, e.to_string()))?;
    let deg = |v: i32| f64::from(v) * 1e-7;
    let mut out = Vec::with_capacity(ways.len());
    let mut missing = 0u64;
    for (id, (class, refs)) in ways {
        let mut parts: Vec<geo::LineString<f64>> = Vec::new();
        let mut cur: Vec<geo::Coord<f64>> = Vec::new();
        for r in refs {
            match nodes.get(&r) {
                Some(&(lon, lat)) => cur.push(geo::coord! { x: deg(lon), y: deg(lat) }),
                None => {
                    missing += 1;
                    if cur.len() >= 2 {
                        parts.push(geo::LineString::new(std::mem::take(&mut cur)));
                    }
                    cur.clear();
                }
            }
        }
        if cur.len() >= 2 {
            parts.push(geo::LineString::new(cur));
        }
        if parts.is_empty() {
            continue;
        }
        let mut attrs = BTreeMap::new();
        attrs.insert("highway".to_string(), class);
        attrs.insert("osm_id".to_string(), id.to_string());
        out.push(Shape {
            fid: id as u64,
            geometry: geo::Geometry::MultiLineString(geo::MultiLineString(parts)),
            attrs,
        });
    }
    Ok((out, missing))
}

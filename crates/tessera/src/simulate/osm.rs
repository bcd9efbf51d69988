//! A fleet driving a real road network — the ways of an OpenStreetMap extract
//! ([`crate::places::osm::read_roads`]) — instead of the synthetic street grid.
//!
//! The network is a graph whose nodes are the distinct way vertices (keyed by the exact bits of
//! their coordinates, so ways sharing a node connect) and whose edges join consecutive vertices
//! of every line, in both directions (`oneway` is ignored). Only its largest connected component
//! is driven. Every driver is honest and registered and logs 1 Hz NMEA: a random walk along the
//! edges (no U-turn except at a dead end) at its own speed, with a receiver error that wanders
//! (AR(1)) by a metre or two. Like [`super::simulate`], the result is a pure function of its
//! inputs.

use super::{render, wallet, Fleet, Output, Rng, Sample, SimConfig, SimFile};
use crate::epoch::Epoch;
use crate::places::shapes::Shape;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A vertex key: the bits of (longitude, latitude).
type Key = (u64, u64);

/// The drivable graph: vertex coordinates (longitude, latitude) and sorted neighbour lists.
struct Graph {
    pts: Vec<(f64, f64)>,
    adj: Vec<Vec<usize>>,
}

/// Largest radial receiver error in metres (the AR(1) error is bounded here, so every fix stays
/// within a few metres of the road it is on).
const MAX_ERR_M: f64 = 4.0;
/// Metres per degree of latitude.
const M_PER_DEG: f64 = 111_320.0;

/// Drive `cfg.drivers` honest, registered drivers on the largest connected part of `roads`
/// (line strings or multi line strings in longitude/latitude degrees; other geometries, vertices
/// that are not finite WGS84 coordinates and edges across the antimeridian are ignored):
/// `cfg.trips` trips of `cfg.minutes` minutes per driver and epoch, 1 Hz NMEA files named
/// `<epoch>-trip<n>.nmea` under devices `car-001`…, a registry naming every driver, and the role
/// `honest (OSM roads)` for each. The grid fields of `cfg` (`lat0`, `lon0`, `streets`,
/// `block_m`) and `camera` are not used. `places` is left empty: the roads' source file is not
/// known here (a policy naming it is the caller's to write).
///
/// # Errors
/// `no drivable road network` when the largest connected part of `roads` has fewer than two
/// vertices (no usable line at all).
///
/// ```no_run
/// use tessera::simulate::{osm::simulate_on_roads, SimConfig};
/// let (roads, _) = tessera::places::osm::read_roads(
///     std::path::Path::new("Helsinki.osm.pbf"), &tessera::places::policy::default_highways()).unwrap();
/// let cfg = SimConfig { drivers: 3, epochs: 1, trips: 1, minutes: 5, ..SimConfig::default() };
/// let fleet = simulate_on_roads(&roads, &cfg).unwrap();
/// assert_eq!(fleet.files.len(), 3);
/// ```
pub fn simulate_on_roads(roads: &[Shape], cfg: &SimConfig) -> Result<Fleet, String> {
    let graph = largest_component(&build_graph(roads));
    if graph.pts.len() < 2 {
        return Err(format!(
            "no drivable road network: the largest connected part of the {} road features has {} usable vertices",
            roads.len(),
            graph.pts.len()
        ));
    }
    let mut rng = Rng(cfg.seed);
    let mut files = Vec::new();
    let mut registry = String::from("device_id,wallet\n");
    let mut roles = Vec::new();
    let trip_ms = i64::from(cfg.minutes) * 60_000;
    let slot_ms = 7 * 86_400_000 / i64::from(cfg.trips.max(1));
    for d in 0..cfg.drivers {
        let device = format!("car-{:03}", d + 1);
        roles.push((device.clone(), "honest (OSM roads)"));
        registry.push_str(&format!("{device},{}\n", wallet(cfg.seed, &device)));
        let speed = 8.0 + rng.f() * 6.0;
        for e in 0..cfg.epochs {
            let epoch = Epoch::from_index(cfg.start.index() + i64::from(e));
            for t in 0..cfg.trips {
                // Trip t starts somewhere in the t-th of `trips` equal slots of the week, on a
                // whole second, so that a driver's trips do not overlap when they fit.
                let spare_s = ((slot_ms - trip_ms) / 1000).max(1) as u64;
                let start_ms = epoch.start_ms() + i64::from(t) * slot_ms + rng.range(spare_s) as i64 * 1000;
                let samples = drive(&mut rng, &graph, speed, start_ms, cfg.minutes);
                let (name, bytes) = render(&mut rng, &device, &epoch, t, Output::Nmea, &samples);
                files.push(SimFile {
                    device: device.clone(),
                    name,
                    bytes,
                });
            }
        }
    }
    Ok(Fleet {
        files,
        registry_csv: registry,
        roles,
        places: Vec::new(),
    })
}

/// A usable vertex: finite WGS84 longitude/latitude, -0.0 folded into 0.0.
fn vertex(c: geo::Coord<f64>) -> Option<(f64, f64)> {
    let ok = c.x.is_finite() && c.y.is_finite() && c.x.abs() <= 180.0 && c.y.abs() <= 90.0;
    let z = |v: f64| if v == 0.0 { 0.0 } else { v };
    ok.then_some((z(c.x), z(c.y)))
}

fn key(p: (f64, f64)) -> Key {
    (p.0.to_bits(), p.1.to_bits())
}

/// The line strings of a geometry (collections are searched; other geometries have none).
fn lines(g: &geo::Geometry<f64>) -> Vec<&geo::LineString<f64>> {
    match g {
        geo::Geometry::LineString(l) => vec![l],
        geo::Geometry::MultiLineString(m) => m.0.iter().collect(),
        geo::Geometry::GeometryCollection(c) => c.0.iter().flat_map(lines).collect(),
        _ => Vec::new(),
    }
}

/// The graph of every usable edge; vertices numbered in key order, so the graph does not depend
/// on the order of the features.
fn build_graph(roads: &[Shape]) -> Graph {
    let mut edges: BTreeSet<(Key, Key)> = BTreeSet::new();
    let mut coords: BTreeMap<Key, (f64, f64)> = BTreeMap::new();
    for line in roads.iter().flat_map(|s| lines(&s.geometry)) {
        let mut prev: Option<(f64, f64)> = None;
        for c in line.coords() {
            let Some(p) = vertex(*c) else {
                prev = None; // a bad vertex breaks the line
                continue;
            };
            if let Some(q) = prev {
                let (a, b) = (key(q), key(p));
                if a != b && (p.0 - q.0).abs() <= 180.0 {
                    coords.insert(a, q);
                    coords.insert(b, p);
                    edges.insert((a, b));
                    edges.insert((b, a));
                }
            }
            prev = Some(p);
        }
    }
    let index: BTreeMap<Key, usize> = coords.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut adj = vec![Vec::new(); coords.len()];
    // `edges` is sorted by (from, to) keys and keys are numbered in order: the lists come out sorted.
    for (a, b) in &edges {
        adj[index[a]].push(index[b]);
    }
    Graph {
        pts: coords.into_values().collect(),
        adj,
    }
}

/// The largest connected component (ties: the one with the lowest-numbered vertex), renumbered
/// in the same order.
fn largest_component(g: &Graph) -> Graph {
    let n = g.pts.len();
    let mut comp = vec![usize::MAX; n];
    let (mut best, mut best_len, mut count) = (0, 0, 0);
    for s in 0..n {
        if comp[s] != usize::MAX {
            continue;
        }
        let mut len = 0;
        let mut queue = VecDeque::from([s]);
        comp[s] = count;
        while let Some(u) = queue.pop_front() {
            len += 1;
            for &v in &g.adj[u] {
                if comp[v] == usize::MAX {
                    comp[v] = count;
                    queue.push_back(v);
                }
            }
        }
        if len > best_len {
            (best, best_len) = (count, len);
        }
        count += 1;
    }
    let keep: Vec<usize> = (0..n).filter(|&i| comp[i] == best).collect();
    let mut renum = vec![usize::MAX; n];
    for (j, &i) in keep.iter().enumerate() {
        renum[i] = j;
    }
    Graph {
        pts: keep.iter().map(|&i| g.pts[i]).collect(),
        adj: keep
            .iter()
            .map(|&i| g.adj[i].iter().map(|&v| renum[v]).collect())
            .collect(),
    }
}

fn edge_len(g: &Graph, a: usize, b: usize) -> f64 {
    let ((ax, ay), (bx, by)) = (g.pts[a], g.pts[b]);
    crate::quality::distance_m(ay, ax, by, bx)
}

/// The next vertex after arriving at `at` from `from`: a random neighbour other than `from`,
/// or `from` at a dead end.
fn next_vertex(rng: &mut Rng, g: &Graph, from: usize, at: usize) -> usize {
    let options: Vec<usize> = g.adj[at].iter().copied().filter(|&v| v != from).collect();
    if options.is_empty() {
        from
    } else {
        options[rng.range(options.len() as u64) as usize]
    }
}

/// One trip: `minutes` of 1 Hz samples from a random vertex, along the edges at about `speed`.
fn drive(rng: &mut Rng, g: &Graph, speed: f64, start_ms: i64, minutes: u32) -> Vec<Sample> {
    const RHO: f64 = 0.9;
    let mut a = rng.range(g.pts.len() as u64) as usize;
    let mut b = g.adj[a][rng.range(g.adj[a].len() as u64) as usize];
    let mut len = edge_len(g, a, b);
    let mut pos = 0.0; // metres from a towards b
    let total = i64::from(minutes) * 60;
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut err = (0.0f64, 0.0f64);
    for sec in 0..total {
        let v = (speed + rng.normal() * 0.3).clamp(speed - 1.0, speed + 1.0);
        let mut left = v;
        // Bounded, in case of edges too short to measure.
        let mut hops = 0;
        while pos + left >= len && hops < 10_000 {
            left -= len - pos;
            pos = 0.0;
            let next = next_vertex(rng, g, a, b);
            (a, b) = (b, next);
            len = edge_len(g, a, b);
            hops += 1;
        }
        pos = (pos + left).min(len);
        let f = if len > 0.0 { pos / len } else { 0.0 };
        let ((ax, ay), (bx, by)) = (g.pts[a], g.pts[b]);
        let (lon, lat) = (ax + (bx - ax) * f, ay + (by - ay) * f);
        let mlon = M_PER_DEG * lat.to_radians().cos().max(0.01);
        let course = ((bx - ax) * mlon)
            .atan2((by - ay) * M_PER_DEG)
            .to_degrees()
            .rem_euclid(360.0);
        let hdop = 0.8 + rng.f() * 0.7;
        let sats = 7 + rng.range(8) as u32;
        // The receiver's error wanders (AR(1), ρ = 0.9) with a spread of 1 m per unit of HDOP,
        // bounded at MAX_ERR_M.
        let innov = hdop * (1.0f64 - RHO * RHO).sqrt();
        err = (RHO * err.0 + rng.normal() * innov, RHO * err.1 + rng.normal() * innov);
        let r = err.0.hypot(err.1);
        if r > MAX_ERR_M {
            err = (err.0 * MAX_ERR_M / r, err.1 * MAX_ERR_M / r);
        }
        out.push(Sample {
            t_ms: start_ms + sec * 1000,
            lat: (lat + err.1 / M_PER_DEG).clamp(-90.0, 90.0),
            lon: (lon + err.0 / mlon).clamp(-180.0, 180.0),
            speed: (v + rng.normal() * 0.05).max(0.0),
            course,
            hdop: (hdop * 10.0).round() / 10.0,
            sats,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::distance_m;

    const LAT0: f64 = 60.17;
    const LON0: f64 = 24.94;
    /// Grid spacing in degrees: about 111 m north-south, 112 m east-west at 60.17 N.
    const DLAT: f64 = 0.001;
    const DLON: f64 = 0.002;

    fn line(pts: &[(f64, f64)]) -> Shape {
        Shape {
            fid: 0,
            geometry: geo::Geometry::LineString(pts.iter().map(|&(x, y)| geo::Coord { x, y }).collect()),
            attrs: BTreeMap::new(),
        }
    }

    /// A 3×3 grid of vertices: three east-west and three north-south lines through them.
    fn grid() -> Vec<Shape> {
        let p = |i: u32, j: u32| (LON0 + f64::from(i) * DLON, LAT0 + f64::from(j) * DLAT);
        let mut out = Vec::new();
        for k in 0..3 {
            out.push(line(&[p(0, k), p(1, k), p(2, k)]));
            out.push(line(&[p(k, 0), p(k, 1), p(k, 2)]));
        }
        out
    }

    fn cfg() -> SimConfig {
        SimConfig {
            drivers: 3,
            epochs: 2,
            trips: 2,
            minutes: 3,
            ..SimConfig::default()
        }
    }

    /// Metres from a point to segment a–b, in a local equirectangular projection.
    fn to_segment_m(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
        let k = LAT0.to_radians().cos() * M_PER_DEG;
        let xy = |q: (f64, f64)| ((q.0 - LON0) * k, (q.1 - LAT0) * M_PER_DEG);
        let ((px, py), (ax, ay), (bx, by)) = (xy(p), xy(a), xy(b));
        let (dx, dy) = (bx - ax, by - ay);
        let t = (((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        (px - ax - t * dx).hypot(py - ay - t * dy)
    }

    fn segments(roads: &[Shape]) -> Vec<((f64, f64), (f64, f64))> {
        roads
            .iter()
            .flat_map(|s| lines(&s.geometry))
            .flat_map(|l| l.lines().map(|s| ((s.start.x, s.start.y), (s.end.x, s.end.y))))
            .collect()
    }

    #[test]
    fn same_roads_and_config_give_the_same_fleet() {
        let a = simulate_on_roads(&grid(), &cfg()).unwrap();
        assert_eq!(a, simulate_on_roads(&grid(), &cfg()).unwrap());
        // ... whatever the order of the features.
        let mut rev = grid();
        rev.reverse();
        assert_eq!(a, simulate_on_roads(&rev, &cfg()).unwrap());
        let other = SimConfig { seed: 8, ..cfg() };
        assert_ne!(a.files, simulate_on_roads(&grid(), &other).unwrap().files);
    }

    #[test]
    fn grid_fleet_stays_on_the_roads_at_driving_speed() {
        let roads = grid();
        let c = cfg();
        let fleet = simulate_on_roads(&roads, &c).unwrap();
        assert_eq!(fleet.files.len(), (c.drivers * c.epochs * c.trips) as usize);
        let segs = segments(&roads);
        for f in &fleet.files {
            assert!(f.name.ends_with(".nmea") && f.name.contains("-trip"), "{}", f.name);
            let p = crate::ingest::parse(&f.bytes);
            assert!(
                p.fixes.len() as u32 >= c.minutes * 60 * 95 / 100,
                "{} {}: {}",
                f.device,
                f.name,
                p.fixes.len()
            );
            for x in &p.fixes {
                let d = segs
                    .iter()
                    .map(|(a, b)| to_segment_m((x.lon, x.lat), *a, *b))
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    d <= 5.0,
                    "{} {}: fix {:?} is {d:.1} m off the roads",
                    f.device,
                    f.name,
                    (x.lat, x.lon)
                );
            }
            for w in p.fixes.windows(2) {
                if w[1].time_ms - w[0].time_ms == 1000 {
                    let d = distance_m(w[0].lat, w[0].lon, w[1].lat, w[1].lon);
                    assert!(d <= 20.0, "{} {}: {d:.1} m in one second", f.device, f.name);
                }
            }
        }
    }

    #[test]
    fn every_driver_is_registered_and_honest_with_trips_inside_their_epoch() {
        let c = cfg();
        let fleet = simulate_on_roads(&grid(), &c).unwrap();
        let reg = crate::registry::Registry::parse(fleet.registry_csv.as_bytes(), "sim").unwrap();
        assert_eq!(reg.len(), c.drivers as usize);
        assert!(fleet.roles.iter().all(|(_, r)| *r == "honest (OSM roads)"));
        assert_eq!(fleet.roles[0].0, "car-001");
        assert!(fleet.places.is_empty());
        for f in &fleet.files {
            assert!(reg.wallet(&f.device).is_some());
            let epoch: Epoch = f.name.split("-trip").next().unwrap().parse().unwrap();
            let p = crate::ingest::parse(&f.bytes);
            assert!(p.fixes.iter().all(|x| epoch.contains(x.time_ms)), "{}", f.name);
        }
    }

    #[test]
    fn only_the_largest_connected_part_is_driven() {
        let mut roads = grid();
        // A lone road 5 km away.
        roads.push(line(&[(LON0 + 0.1, LAT0), (LON0 + 0.101, LAT0)]));
        let fleet = simulate_on_roads(&roads, &cfg()).unwrap();
        for f in &fleet.files {
            let p = crate::ingest::parse(&f.bytes);
            assert!(p.fixes.iter().all(|x| x.lon < LON0 + 0.01), "{}", f.name);
        }
    }

    #[test]
    fn unusable_roads_are_skipped_or_refused() {
        let c = cfg();
        assert!(simulate_on_roads(&[], &c)
            .unwrap_err()
            .contains("no drivable road network"));
        let single = line(&[(LON0, LAT0)]);
        let nan = line(&[(f64::NAN, LAT0), (LON0, f64::NAN)]);
        let point = Shape {
            fid: 1,
            geometry: geo::Geometry::Point(geo::Point::new(LON0, LAT0)),
            attrs: BTreeMap::new(),
        };
        let same = line(&[(LON0, LAT0), (LON0, LAT0)]);
        let bad = [single, nan, point, same];
        assert!(simulate_on_roads(&bad, &c)
            .unwrap_err()
            .contains("no drivable road network"));
        // Alongside a usable network, the bad features are ignored.
        let mut roads = grid();
        roads.extend(bad);
        roads.push(line(&[(LON0, LAT0), (f64::INFINITY, LAT0), (LON0 + DLON, LAT0 + DLAT)]));
        let fleet = simulate_on_roads(&roads, &c).unwrap();
        assert_eq!(fleet, simulate_on_roads(&grid(), &c).unwrap());
        // No drivers, no trips: an empty fleet, not a panic.
        let none = SimConfig {
            drivers: 0,
            ..c.clone()
        };
        assert!(simulate_on_roads(&grid(), &none).unwrap().files.is_empty());
        let zero = SimConfig {
            trips: 0,
            minutes: 0,
            ..c
        };
        assert!(simulate_on_roads(&grid(), &zero).unwrap().files.is_empty());
    }

    #[test]
    fn helsinki_extract_fleet_stays_inside_the_extract() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/osm/Helsinki.osm.pbf");
        if !path.exists() {
            let required = std::env::var_os("TESSERA_REQUIRE_CORPUS").is_some();
            assert!(
                !required,
                "TESSERA_REQUIRE_CORPUS is set but {} is missing",
                path.display()
            );
            eprintln!("{} not present; skipping", path.display());
            return;
        }
        let (roads, _) = crate::places::osm::read_roads(&path, &crate::places::policy::default_highways()).unwrap();
        let c = SimConfig {
            drivers: 3,
            epochs: 1,
            trips: 1,
            minutes: 5,
            ..SimConfig::default()
        };
        let fleet = simulate_on_roads(&roads, &c).unwrap();
        assert_eq!(fleet.files.len(), 3);
        for f in &fleet.files {
            let p = crate::ingest::parse(&f.bytes);
            assert!(p.fixes.len() >= 280, "{}: {} fixes", f.device, p.fixes.len());
            for x in &p.fixes {
                assert!(
                    (24.92..=24.97).contains(&x.lon) && (60.15..=60.19).contains(&x.lat),
                    "{:?}",
                    (x.lat, x.lon)
                );
            }
        }
    }
}

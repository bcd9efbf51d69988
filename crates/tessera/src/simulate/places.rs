//! The simulated fleet's places: its street grid as a road network (GeoJSON line strings tagged
//! `highway=residential`, plus a footpath that is not a road), two districts as regions (west ×1,
//! east ×1.5) and a bounty over the north-east corner, with a policy naming them — what `demo`
//! runs its epochs with.

use super::SimConfig;
use serde_json::json;
use std::f64::consts::PI;

/// `(file name, bytes)`: `roads.geojson`, `regions.geojson`, `bounty.geojson` and `places.toml`.
///
/// ```
/// let files = tessera::simulate::places::grid_places(&tessera::simulate::SimConfig::default());
/// let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
/// assert_eq!(names, ["roads.geojson", "regions.geojson", "bounty.geojson", "places.toml"]);
/// ```
pub fn grid_places(cfg: &SimConfig) -> Vec<(String, Vec<u8>)> {
    let mlat = 111_320.0;
    let mlon = 111_320.0 * (cfg.lat0 * PI / 180.0).cos();
    let half = f64::from(cfg.streets - 1) * cfg.block_m / 2.0;
    let ll = |x: f64, y: f64| json!([cfg.lon0 + (x - half) / mlon, cfg.lat0 + (y - half) / mlat]);
    let end = f64::from(cfg.streets - 1) * cfg.block_m;
    let mut roads = Vec::new();
    for i in 0..cfg.streets {
        let v = f64::from(i) * cfg.block_m;
        for (name, a, b) in [
            (format!("Avenue {}", i + 1), ll(v, 0.0), ll(v, end)),
            (format!("Street {}", i + 1), ll(0.0, v), ll(end, v)),
        ] {
            roads.push(
                json!({"type": "Feature", "properties": {"name": name, "highway": "residential"},
                "geometry": {"type": "LineString", "coordinates": [a, b]}}),
            );
        }
    }
    roads.push(
        json!({"type": "Feature", "properties": {"name": "Park path", "highway": "footway"},
        "geometry": {"type": "LineString", "coordinates": [ll(70.0, 70.0), ll(end - 70.0, end - 70.0)]}}),
    );
    let rect =
        |x0: f64, y0: f64, x1: f64, y1: f64| json!([[ll(x0, y0), ll(x1, y0), ll(x1, y1), ll(x0, y1), ll(x0, y0)]]);
    let m = 200.0; // margin around the grid
    let regions = vec![
        json!({"type": "Feature", "properties": {"name": "west", "weight": 1.0},
            "geometry": {"type": "Polygon", "coordinates": rect(-m, -m, half, end + m)}}),
        json!({"type": "Feature", "properties": {"name": "east", "weight": 1.5},
            "geometry": {"type": "Polygon", "coordinates": rect(half, -m, end + m, end + m)}}),
    ];
    let corner = end - 4.0 * cfg.block_m - cfg.block_m / 2.0;
    let bounty = vec![json!({"type": "Feature", "properties": {"name": "north-east"},
        "geometry": {"type": "Polygon", "coordinates": rect(corner, corner, end + 20.0, end + 20.0)}})];
    let fc = |features: Vec<serde_json::Value>| {
        let mut v =
            serde_json::to_vec_pretty(&json!({"type": "FeatureCollection", "features": features})).expect("json");
        v.push(b'\n');
        v
    };
    let last = crate::epoch::Epoch::from_index(cfg.start.index() + i64::from(cfg.epochs.max(1)) - 1);
    let policy = format!(
        "# The simulated fleet's places (tessera simulate): its street grid as the road network, two\n\
         # districts and a bounty. Everything else is the default policy (`tessera policy`).\n\
         [[regions]]\nsource = \"regions.geojson\"\nname_field = \"name\"\nweight_field = \"weight\"\n\n\
         [roads]\nsource = \"roads.geojson\"\nbuffer_cells = 1\n\n\
         [[bounties]]\nid = \"north-east\"\nsource = \"bounty.geojson\"\npool = \"100000000000\"\n\
         first_epoch = \"{}\"\nlast_epoch = \"{last}\"\nunclaimed = \"rollover\"\n",
        cfg.start
    );
    vec![
        ("roads.geojson".into(), fc(roads)),
        ("regions.geojson".into(), fc(regions)),
        ("bounty.geojson".into(), fc(bounty)),
        ("places.toml".into(), policy.into_bytes()),
    ]
}

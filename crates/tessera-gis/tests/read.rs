//! Reading sources written by GDAL's own tools: GeoJSON -> GeoPackage by `ogr2ogr`, a layer in
//! EPSG:3857, a CSV without CRS, a CSV without geometry.

mod common;

use common::{run, s};
use geo::{line_string, Geometry, Point};
use tessera_gis::{layer_names, read_layer, Error, FeatureRef};

const GEOJSON: &str = r#"{"type":"FeatureCollection","name":"sites","features":[
{"type":"Feature","properties":{"site":"a","rank":7,"gain":1.5,"ok":true},"geometry":{"type":"Point","coordinates":[13.4,52.52]}},
{"type":"Feature","properties":{"site":"b","rank":null,"gain":-0.125,"ok":false},"geometry":{"type":"Polygon","coordinates":[[[179.5,10],[180,10],[180,10.5],[179.5,10.5],[179.5,10]]]}},
{"type":"Feature","properties":{"site":"c"},"geometry":{"type":"LineString","coordinates":[[-70.5,-33.25],[-70,-33]]}}
]}"#;

#[test]
fn ogr2ogr_geojson_to_gpkg() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sites.geojson");
    std::fs::write(&src, GEOJSON).unwrap();
    let gpkg = dir.path().join("sites.gpkg");
    run("ogr2ogr", &["-f", "GPKG", s(&gpkg), s(&src)]);
    assert_eq!(layer_names(&gpkg).unwrap(), ["sites"]);
    for path in [&src, &gpkg] {
        let got = read_layer(path, Some("sites")).unwrap();
        assert_eq!(got.len(), 3, "{}", path.display());
        assert_eq!(got[0].geometry, Geometry::Point(Point::new(13.4, 52.52)));
        assert_eq!(got[0].attrs["site"], "a");
        assert_eq!(got[0].attrs["rank"], "7");
        assert_eq!(got[0].attrs["gain"], "1.5");
        assert_eq!(got[0].attrs["ok"], "1");
        assert!(!got[1].attrs.contains_key("rank"), "null is absent: {:?}", got[1].attrs);
        assert_eq!(got[1].attrs["gain"], "-0.125");
        assert_eq!(got[1].attrs["ok"], "0");
        assert_eq!(
            got[2].attrs.keys().collect::<Vec<_>>(),
            ["site"],
            "unset fields are absent"
        );
        common::assert_same_vertices(
            "line",
            &got[2].geometry,
            &line_string![(x: -70.5, y: -33.25), (x: -70.0, y: -33.0)].into(),
            0.0,
        );
    }
    assert_eq!(
        read_layer(&gpkg, Some("sites")).unwrap()[0].fid,
        Some(1),
        "GeoPackage FIDs start at 1"
    );
}

#[test]
fn web_mercator_is_transformed_to_lon_lat() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sites.geojson");
    std::fs::write(&src, GEOJSON).unwrap();
    let merc = dir.path().join("merc.gpkg");
    run(
        "ogr2ogr",
        &["-f", "GPKG", "-t_srs", "EPSG:3857", "-nln", "merc", s(&merc), s(&src)],
    );
    let info = run("ogrinfo", &["-ro", "-so", s(&merc), "merc"]);
    assert!(info.contains("Pseudo-Mercator"), "{info}");
    let raw = run("ogrinfo", &["-ro", "-q", s(&merc), "merc", "-fid", "1"]);
    assert!(raw.contains("POINT (1491"), "stored in metres: {raw}");
    let wgs = read_layer(&src, None).unwrap();
    let got = read_layer(&merc, Some("merc")).unwrap();
    assert_eq!(got.len(), wgs.len());
    for (g, w) in got.iter().zip(&wgs) {
        common::assert_same_vertices("3857 -> 4326", &g.geometry, &w.geometry, 1e-9);
    }
}

#[test]
fn csv_without_crs_is_wgs84_and_missing_geometry_names_the_fid() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pts.csv");
    std::fs::write(&csv, "WKT,name\n\"POINT (10.25 20.5)\",x\n\"POINT (-1 -2)\",y\n").unwrap();
    let got = read_layer(&csv, None).unwrap();
    assert_eq!(got[1].geometry, Geometry::Point(Point::new(-1.0, -2.0)));
    assert_eq!(got[0].attrs["name"], "x");
    let bare = dir.path().join("bare.csv");
    std::fs::write(&bare, "name,n\nx,1\ny,2\n").unwrap();
    let err = read_layer(&bare, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadFeature {
                feature: FeatureRef::Fid(1),
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("bare.csv") && msg.contains("FID 1") && msg.contains("no geometry"),
        "{msg}"
    );
}

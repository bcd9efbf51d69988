//! Refusals: each error names the file (and layer / feature / field where relevant).

use std::path::Path;

use geo::{point, polygon, Geometry};
use tessera_gis::{
    read_layer, write_layer, write_raster, Error, FeatureRef, FieldDef, FieldKind, Grid, OutFeature, OutLayer, Value,
    VectorFormat,
};

fn square() -> Geometry<f64> {
    polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 1.0, y: 1.0), (x: 0.0, y: 1.0), (x: 0.0, y: 0.0)].into()
}

fn one_field_layer(name: &str, kind: FieldKind, value: Value) -> OutLayer {
    OutLayer {
        name: "cells".to_owned(),
        fields: vec![FieldDef {
            name: name.to_owned(),
            kind,
        }],
        features: vec![OutFeature {
            geometry: square(),
            values: vec![value],
        }],
    }
}

#[test]
fn shapefile_refuses_long_field_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.shp");
    let layer = one_field_layer("reward_share", FieldKind::Real, Value::Real(0.5));
    let err = write_layer(&path, VectorFormat::Shp, &layer).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, Error::BadField { field, .. } if field == "reward_share"),
        "{err:?}"
    );
    assert!(
        msg.contains("reward_share") && msg.contains("10") && msg.contains("cells.shp"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
    // Exactly 10 is fine, and other formats take the long name.
    write_layer(
        &path,
        VectorFormat::Shp,
        &one_field_layer("reward_sha", FieldKind::Real, Value::Real(0.5)),
    )
    .unwrap();
    write_layer(&dir.path().join("cells.gpkg"), VectorFormat::Gpkg, &layer).unwrap();
    assert_eq!(VectorFormat::Shp.max_field_name(), Some(10));
    assert_eq!(VectorFormat::Gpkg.max_field_name(), None);
}

#[test]
fn value_errors_name_feature_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.gpkg");
    let err = write_layer(
        &path,
        VectorFormat::Gpkg,
        &one_field_layer("share", FieldKind::Real, Value::Text("x".into())),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::BadValue { feature: FeatureRef::Index(0), field, .. } if field == "share"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("cells.gpkg") && msg.contains("\"cells\"") && msg.contains("feature #0"),
        "{msg}"
    );
    let err = write_layer(
        &path,
        VectorFormat::Gpkg,
        &one_field_layer("share", FieldKind::Real, Value::Real(f64::NAN)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("non-finite"), "{err}");
    let long = "x".repeat(255);
    let shp = dir.path().join("cells.shp");
    let err = write_layer(
        &shp,
        VectorFormat::Shp,
        &one_field_layer("label", FieldKind::Text, Value::Text(long)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("254"), "{err}");
    let mut layer = one_field_layer("share", FieldKind::Real, Value::Real(1.0));
    layer.features[0].values.clear();
    let err = write_layer(&path, VectorFormat::Gpkg, &layer).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadFeature {
                feature: FeatureRef::Index(0),
                ..
            }
        ),
        "{err:?}"
    );
    layer.features[0] = OutFeature {
        geometry: point!(x: f64::INFINITY, y: 0.0).into(),
        values: vec![Value::Null],
    };
    let err = write_layer(&path, VectorFormat::Gpkg, &layer).unwrap_err();
    assert!(err.to_string().contains("non-finite coordinate"), "{err}");
    let err = write_layer(
        &dir.path().join("cells.dat"),
        VectorFormat::Shp,
        &one_field_layer("a", FieldKind::Text, Value::Null),
    )
    .unwrap_err();
    assert!(matches!(err, Error::BadPath { .. }), "{err:?}");
    assert!(!path.exists(), "a refused write leaves nothing behind");
}

#[test]
fn missing_layer_lists_layers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cells.gpkg");
    write_layer(
        &path,
        VectorFormat::Gpkg,
        &one_field_layer("a", FieldKind::Text, Value::Null),
    )
    .unwrap();
    let err = read_layer(&path, Some("roads")).unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchLayer { available, .. } if available == &["cells"]),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("roads") && msg.contains("\"cells\"") && msg.contains("cells.gpkg"),
        "{msg}"
    );
}

#[test]
fn missing_file_is_named() {
    let path = Path::new("/nonexistent/tessera/cells.gpkg");
    let err = read_layer(path, None).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/tessera/cells.gpkg"), "{err}");
    let err = tessera_gis::layer_names(path).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/tessera/cells.gpkg"), "{err}");
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.gpkg");
    std::fs::write(&path, b"not a geopackage").unwrap();
    let err = read_layer(&path, None).unwrap_err();
    assert!(matches!(err, Error::Gdal { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.gpkg"), "{err}");
}

#[test]
fn bad_grids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.tif");
    let grid = Grid {
        west: 0.0,
        north: 0.0,
        pixel_deg: 1.0,
        width: 4,
        height: 3,
        data: vec![1; 11],
    };
    let err = write_raster(&path, &grid, false).unwrap_err();
    assert!(
        matches!(err, Error::BadGrid { .. }) && err.to_string().contains("g.tif"),
        "{err:?}"
    );
    let grid = Grid {
        pixel_deg: 0.0,
        data: vec![1; 12],
        ..grid
    };
    assert!(matches!(write_raster(&path, &grid, true), Err(Error::BadGrid { .. })));
    let grid = Grid {
        pixel_deg: 1.0,
        width: 0,
        height: 0,
        data: Vec::new(),
        ..grid
    };
    assert!(matches!(write_raster(&path, &grid, true), Err(Error::BadGrid { .. })));
    assert!(!path.exists());
}

#[test]
fn format_names() {
    for f in VectorFormat::ALL {
        assert_eq!(f.to_string().parse::<VectorFormat>().unwrap(), f);
    }
    assert_eq!("GeoJSON".parse::<VectorFormat>().unwrap(), VectorFormat::GeoJson);
    let err = "gml".parse::<VectorFormat>().unwrap_err().to_string();
    assert!(
        err.contains("gml") && err.contains("gpkg, fgb, geojson, kml, shp"),
        "{err}"
    );
    assert_eq!(VectorFormat::Fgb.driver(), "FlatGeobuf");
    assert_eq!(VectorFormat::GeoJson.extension(), "geojson");
}

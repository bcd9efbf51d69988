//! Every vector format against real GDAL: write, read back, `ogrinfo`, validity, reproducibility.
//!
//! Layout decision: the main layer holds polygons only (a Polygon, an antimeridian-split
//! MultiPolygon, a Polygon with a hole), which every format takes in one layer (written as
//! MultiPolygon). Lines go in a second file; a mixed Point/LineString/Polygon layer is tested for
//! the formats that allow untyped layers, and refused for Shapefile.
//!
//! Validity: OGR's SQLite dialect with SpatiaLite (`ST_IsValid`, GEOS underneath) through the real
//! `ogrinfo`, plus geo's `Validation` on what `read_layer` returns.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{assert_same_vertices, count_valid, ogrinfo_summary, run, s};
use geo::{line_string, point, polygon, Geometry, MultiLineString, MultiPolygon, Validation};
use tessera_gis::{
    layer_names, read_layer, write_layer, Error, FieldDef, FieldKind, OutFeature, OutLayer, Value, VectorFormat,
};

fn fields() -> Vec<FieldDef> {
    let f = |name: &str, kind| FieldDef {
        name: name.to_owned(),
        kind,
    };
    vec![
        f("label", FieldKind::Text),
        f("reward", FieldKind::Integer64),
        f("share", FieldKind::Real),
        f("active", FieldKind::Boolean),
    ]
}

/// The cell of lon 179.5..-179.5 (across the antimeridian), lat 10..10.5, split in two parts.
fn antimeridian_cell() -> Geometry<f64> {
    MultiPolygon(vec![
        polygon![(x: 179.5, y: 10.0), (x: 180.0, y: 10.0), (x: 180.0, y: 10.5), (x: 179.5, y: 10.5), (x: 179.5, y: 10.0)],
        polygon![(x: -180.0, y: 10.0), (x: -179.5, y: 10.0), (x: -179.5, y: 10.5), (x: -180.0, y: 10.5), (x: -180.0, y: 10.0)],
    ])
    .into()
}

fn polygons() -> OutLayer {
    let square: Geometry<f64> =
        polygon![(x: 10.0, y: 50.0), (x: 10.5, y: 50.0), (x: 10.5, y: 50.5), (x: 10.0, y: 50.5), (x: 10.0, y: 50.0)]
            .into();
    let holed: Geometry<f64> = polygon!(
        exterior: [(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0), (x: 0.0, y: 4.0), (x: 0.0, y: 0.0)],
        interiors: [[(x: 1.0, y: 1.0), (x: 1.0, y: 2.0), (x: 2.0, y: 2.0), (x: 2.0, y: 1.0), (x: 1.0, y: 1.0)]],
    )
    .into();
    let values = |label: Option<&str>, reward: i64, share: Option<f64>, active: bool| {
        vec![
            label.map_or(Value::Null, |l| Value::Text(l.to_owned())),
            Value::Integer64(reward),
            share.map_or(Value::Null, Value::Real),
            Value::Boolean(active),
        ]
    };
    OutLayer {
        name: "cells".to_owned(),
        fields: fields(),
        features: vec![
            OutFeature {
                geometry: square,
                values: values(Some("cell-a"), 1_099_511_627_776, Some(0.25), true),
            },
            OutFeature {
                geometry: antimeridian_cell(),
                values: values(Some("zürich ✓ \"q\""), -3, Some(123_456_789.125), false),
            },
            OutFeature {
                geometry: holed,
                values: values(None, 0, None, true),
            },
        ],
    }
}

fn expected_attrs() -> Vec<BTreeMap<String, String>> {
    let m = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    vec![
        m(&[
            ("label", "cell-a"),
            ("reward", "1099511627776"),
            ("share", "0.25"),
            ("active", "1"),
        ]),
        m(&[
            ("label", "zürich ✓ \"q\""),
            ("reward", "-3"),
            ("share", "123456789.125"),
            ("active", "0"),
        ]),
        m(&[("reward", "0"), ("active", "1")]),
    ]
}

/// The layer name a reader sees: Shapefile names the layer after the file.
fn layer_name(path: &Path, layer: &OutLayer, format: VectorFormat) -> String {
    match format {
        VectorFormat::Shp => path.file_stem().unwrap().to_string_lossy().into_owned(),
        _ => layer.name.clone(),
    }
}

fn out_path(dir: &Path, stem: &str, format: VectorFormat) -> PathBuf {
    dir.join(format!("{stem}.{}", format.extension()))
}

/// Writes, re-reads and checks one layer; returns the file's bytes (main file) for comparison.
fn check_layer(dir: &Path, stem: &str, format: VectorFormat, layer: &OutLayer) -> PathBuf {
    let path = out_path(dir, stem, format);
    write_layer(&path, format, layer).unwrap_or_else(|e| panic!("{format}: {e}"));
    let name = layer_name(&path, layer, format);
    assert_eq!(layer_names(&path).unwrap(), vec![name.clone()], "{format}");
    let back = read_layer(&path, None).unwrap_or_else(|e| panic!("{format}: {e}"));
    assert_eq!(back.len(), layer.features.len(), "{format}: feature count");
    for (i, (got, want)) in back.iter().zip(&layer.features).enumerate() {
        assert_same_vertices(&format!("{format} feature {i}"), &got.geometry, &want.geometry, 1e-12);
        assert!(
            got.geometry.is_valid(),
            "{format} feature {i}: geo says invalid: {:?}",
            got.geometry
        );
    }
    let (count, field_names, geom_col) = ogrinfo_summary(&path);
    assert_eq!(count, layer.features.len() as u64, "{format}: ogrinfo feature count");
    for f in &layer.fields {
        assert!(
            field_names.contains(&f.name),
            "{format}: ogrinfo lacks field {}: {field_names:?}",
            f.name
        );
    }
    assert_eq!(count_valid(&path, &name, &geom_col), count, "{format}: ST_IsValid");
    path
}

fn roundtrip(format: VectorFormat) {
    let dir = tempfile::tempdir().unwrap();
    let layer = polygons();
    let path = check_layer(dir.path(), "cells", format, &layer);
    let back = read_layer(&path, Some(&layer_name(&path, &layer, format))).unwrap();
    for (i, (got, want)) in back.iter().zip(expected_attrs()).enumerate() {
        if format == VectorFormat::Kml {
            // KML readers add Name/description/tessellate/extrude/visibility fields.
            let ours: BTreeMap<_, _> = got
                .attrs
                .iter()
                .filter(|(k, _)| fields().iter().any(|f| &f.name == *k))
                .collect();
            let want: BTreeMap<_, _> = want.iter().collect();
            assert_eq!(ours, want, "kml feature {i}");
        } else {
            assert_eq!(got.attrs, want, "{format} feature {i}");
        }
    }
    assert_reproducible(&path, format, &layer);
    let lines = OutLayer {
        name: "lines".to_owned(),
        fields: vec![FieldDef {
            name: "n".to_owned(),
            kind: FieldKind::Integer64,
        }],
        features: vec![
            OutFeature {
                geometry: line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.5)].into(),
                values: vec![Value::Integer64(1)],
            },
            OutFeature {
                geometry: MultiLineString(vec![
                    line_string![(x: 179.0, y: -1.0), (x: 180.0, y: -1.0)],
                    line_string![(x: -180.0, y: -1.0), (x: -179.0, y: -1.0)],
                ])
                .into(),
                values: vec![Value::Null],
            },
        ],
    };
    check_layer(dir.path(), "lines", format, &lines);
    mixed(dir.path(), format);
}

/// Writes the same layer again over `path`: the bytes of every file must not change.
fn assert_reproducible(path: &Path, format: VectorFormat, layer: &OutLayer) {
    let sidecars: &[&str] = if format == VectorFormat::Shp {
        &["shp", "shx", "dbf", "prj", "cpg"]
    } else {
        &[""]
    };
    let files: Vec<PathBuf> = sidecars
        .iter()
        .map(|e| {
            if e.is_empty() {
                path.to_owned()
            } else {
                path.with_extension(e)
            }
        })
        .collect();
    let first: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a clock-stamped byte would change
    write_layer(path, format, layer).unwrap();
    for (f, before) in files.iter().zip(&first) {
        assert!(
            std::fs::read(f).unwrap() == *before,
            "{format}: {} differs between two writes",
            f.display()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{format}: temporary files left: {leftovers:?}");
}

fn mixed(dir: &Path, format: VectorFormat) {
    let layer = OutLayer {
        name: "mixed".to_owned(),
        fields: Vec::new(),
        features: vec![
            OutFeature {
                geometry: point!(x: 5.0, y: 6.0).into(),
                values: Vec::new(),
            },
            OutFeature {
                geometry: line_string![(x: 1.0, y: 2.0), (x: 3.0, y: 4.5)].into(),
                values: Vec::new(),
            },
            OutFeature {
                geometry: antimeridian_cell(),
                values: Vec::new(),
            },
        ],
    };
    if format == VectorFormat::Shp {
        let err = write_layer(&out_path(dir, "mixed", format), format, &layer).unwrap_err();
        assert!(matches!(err, Error::GeometryMix { .. }), "{err}");
        assert!(!out_path(dir, "mixed", format).exists());
    } else {
        check_layer(dir, "mixed", format, &layer);
    }
}

#[test]
fn gpkg_roundtrip() {
    roundtrip(VectorFormat::Gpkg);
}

#[test]
fn flatgeobuf_roundtrip() {
    roundtrip(VectorFormat::Fgb);
}

#[test]
fn geojson_roundtrip() {
    roundtrip(VectorFormat::GeoJson);
}

#[test]
fn kml_roundtrip() {
    roundtrip(VectorFormat::Kml);
}

#[test]
fn shapefile_roundtrip() {
    roundtrip(VectorFormat::Shp);
}

#[test]
fn ogrinfo_sees_types() {
    // The declared types as GDAL reports them (documents the per-format mapping).
    let dir = tempfile::tempdir().unwrap();
    let expect = [
        (VectorFormat::Gpkg, "reward: Integer64", "active: Integer(Boolean)"),
        (VectorFormat::Fgb, "reward: Integer64", "active: Integer(Boolean)"),
        (VectorFormat::GeoJson, "reward: Integer64", "active: Integer(Boolean)"),
        (VectorFormat::Kml, "reward: String", "active: Integer"),
        (VectorFormat::Shp, "reward: Integer64", "active: Integer"),
    ];
    for (format, reward, active) in expect {
        let path = out_path(dir.path(), "types", format);
        write_layer(&path, format, &polygons()).unwrap();
        let info = run("ogrinfo", &["-ro", "-al", "-so", s(&path)]);
        assert!(info.contains(reward), "{format}: {info}");
        assert!(
            info.lines()
                .any(|l| l.starts_with(active) && (active.contains('(') || !l.contains("(Boolean)"))),
            "{format}: {info}"
        );
        assert!(
            info.contains("MULTIPOLYGON")
                || info.contains("Multi Polygon")
                || format == VectorFormat::Kml
                || format == VectorFormat::Shp,
            "{format}: {info}"
        );
    }
}

/// Unmounts a directory on drop.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        // Lazily: a GDAL handle still open on the file system would make a plain umount fail.
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A 4 MiB tmpfs mounted at a new directory (unmounted on drop); `None` when this process may
/// not mount (not root, or root without `CAP_SYS_ADMIN`).
fn small_disk() -> Option<(tempfile::TempDir, Unmount)> {
    // SAFETY: geteuid has no inputs.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let d = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(d.path())
        .status()
        .unwrap();
    if !mounted.success() {
        return None;
    }
    let unmount = Unmount(d.path().to_path_buf());
    Some((d, unmount))
}

#[test]
fn a_full_file_system_is_an_error_and_the_old_output_stays_not_a_truncated_file() {
    // GDAL's FlatGeobuf, GeoJSON and KML drivers ignore short writes (ogr2ogr reports success
    // with a truncated file); a 4 MiB tmpfs per format fills up during the write.
    let small = polygons();
    let mut big = small.clone();
    big.features = small.features.iter().cycle().take(60_000).cloned().collect();
    for format in VectorFormat::ALL {
        let Some((d, _unmount)) = small_disk() else {
            eprintln!("skipped: cannot mount a 4 MiB tmpfs (needs root with CAP_SYS_ADMIN)");
            return;
        };
        let out = out_path(d.path(), "layer", format);
        write_layer(&out, format, &small).unwrap();
        let before = std::fs::read(&out).unwrap();
        let err = write_layer(&out, format, &big).unwrap_err().to_string();
        if matches!(format, VectorFormat::GeoJson | VectorFormat::Kml) {
            assert!(err.contains("the file system is full"), "{format}: {err}");
        }
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "{format}: the old output is untouched"
        );
        let hidden: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "{format}: temporaries left: {hidden:?}");
    }
}

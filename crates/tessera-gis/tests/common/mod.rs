//! Shared helpers: running the real GDAL command-line tools, comparing geometries.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use geo::{CoordsIter, Geometry};

/// Runs a GDAL tool; a missing tool fails the test with a pointer to the setup script.
pub fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}); install GDAL's tools with scripts/setup-system.sh"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`{tool} {}` failed: {stderr}\n{stdout}",
        args.join(" ")
    );
    stdout
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// The rings / line parts of a geometry as vertex lists, in order.
pub fn parts(g: &Geometry<f64>) -> Vec<Vec<(f64, f64)>> {
    fn ring(l: &geo::LineString<f64>) -> Vec<(f64, f64)> {
        l.coords().map(|c| (c.x, c.y)).collect()
    }
    fn poly(p: &geo::Polygon<f64>) -> Vec<Vec<(f64, f64)>> {
        std::iter::once(p.exterior()).chain(p.interiors()).map(ring).collect()
    }
    match g {
        Geometry::Point(p) => vec![vec![(p.x(), p.y())]],
        Geometry::MultiPoint(m) => m.iter().map(|p| vec![(p.x(), p.y())]).collect(),
        Geometry::LineString(l) => vec![ring(l)],
        Geometry::MultiLineString(m) => m.iter().map(ring).collect(),
        Geometry::Polygon(p) => poly(p),
        Geometry::MultiPolygon(m) => m.iter().flat_map(poly).collect(),
        Geometry::GeometryCollection(c) => c.iter().flat_map(parts).collect(),
        other => vec![other.coords_iter().map(|c| (c.x, c.y)).collect()],
    }
}

/// Same parts with the same vertices within `tol`; a part may come back reversed (Shapefile
/// rewrites exterior rings clockwise).
pub fn assert_same_vertices(what: &str, got: &Geometry<f64>, want: &Geometry<f64>, tol: f64) {
    let (g, w) = (parts(got), parts(want));
    assert_eq!(g.len(), w.len(), "{what}: part count\n got {got:?}\nwant {want:?}");
    let close = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(p, q)| (p.0 - q.0).abs() <= tol && (p.1 - q.1).abs() <= tol)
    };
    for (i, (gp, wp)) in g.iter().zip(&w).enumerate() {
        let reversed: Vec<_> = gp.iter().rev().copied().collect();
        assert!(
            close(gp, wp) || close(&reversed, wp),
            "{what}: part {i}\n got {gp:?}\nwant {wp:?}"
        );
    }
}

/// `ogrinfo -ro -al -so`: (feature count, field names, geometry column).
pub fn ogrinfo_summary(path: &Path) -> (u64, Vec<String>, String) {
    let out = run("ogrinfo", &["-ro", "-al", "-so", s(path)]);
    let count = out
        .lines()
        .find_map(|l| l.strip_prefix("Feature Count: "))
        .unwrap_or_else(|| panic!("no feature count in ogrinfo output:\n{out}"))
        .trim()
        .parse()
        .expect("feature count");
    let geom_col = out
        .lines()
        .find_map(|l| l.strip_prefix("Geometry Column = "))
        .map_or_else(|| "GEOMETRY".to_owned(), |c| c.trim().to_owned());
    // Field lines follow the SRS block: `name: Type (w.p)`.
    let fields = out
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains(": ") && l.trim_end().ends_with(')'))
        .filter_map(|l| l.split_once(": ").map(|(n, _)| n.to_owned()))
        .filter(|n| !n.contains(' '))
        .collect();
    (count, fields, geom_col)
}

/// Counts features GEOS/SpatiaLite call valid, through OGR's SQLite dialect.
pub fn count_valid(path: &Path, layer: &str, geom_col: &str) -> u64 {
    let sql = format!("SELECT COUNT(*) AS n_valid FROM \"{layer}\" WHERE ST_IsValid(\"{geom_col}\") = 1");
    let out = run("ogrinfo", &["-ro", "-q", "-dialect", "sqlite", "-sql", &sql, s(path)]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("n_valid (Integer) = "))
        .unwrap_or_else(|| panic!("no n_valid in ogrinfo output:\n{out}"))
        .trim()
        .parse()
        .expect("n_valid")
}

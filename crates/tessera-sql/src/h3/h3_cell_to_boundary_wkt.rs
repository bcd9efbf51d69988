//! `h3_cell_to_boundary_wkt(cell) -> VARCHAR`: the cell outline as a WKT polygon (lng lat order,
//! closed ring), for GIS tools; a cell crossing the antimeridian is a MULTIPOLYGON of its two
//! halves split at ±180° (`tessera::cells::boundary_parts`).

use super::{cell_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

/// WKT of a cell's boundary.
pub fn wkt(c: h3o::CellIndex) -> String {
    let rings: Vec<String> = tessera::cells::boundary_parts(c)
        .iter()
        .map(|r| {
            let pts: Vec<String> = r.iter().map(|(x, y)| format!("{x} {y}")).collect();
            format!("(({}))", pts.join(", "))
        })
        .collect();
    match &rings[..] {
        [one] => format!("POLYGON {one}"),
        _ => format!("MULTIPOLYGON ({})", rings.join(", ")),
    }
}

const KERNEL: Kernel = |a| {
    let cell = u64s(&a[0])?;
    let out: StringArray = (0..cell.len()).map(|i| cell_at(&cell, i).map(wkt)).collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_boundaryaswkt"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_cell_to_boundary_wkt", 1, DataType::Utf8, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_cell_to_boundary_wkt_is_a_closed_hexagon() {
        let w = &sql(&format!("SELECT h3_cell_to_boundary_wkt({CELL})"))[0];
        assert!(w.starts_with("POLYGON (("), "{w}");
        let pts: Vec<&str> = w
            .trim_start_matches("POLYGON ((")
            .trim_end_matches("))")
            .split(", ")
            .collect();
        assert_eq!(pts.len(), 7);
        assert_eq!(pts[0], pts[6]);
        let (lng, lat): (f64, f64) = {
            let mut it = pts[0].split(' ').map(|v| v.parse::<f64>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        };
        assert!((lng - 13.405).abs() < 1e-3 && (lat - 52.52).abs() < 1e-3);
        assert_eq!(sql("SELECT h3_cell_to_boundary_wkt(3) IS NULL"), ["true"]);
    }
    #[test]
    fn h3_cell_to_boundary_wkt_splits_a_cell_crossing_the_antimeridian() {
        let c = u64::from(h3o::LatLng::new(-16.8, 180.0).unwrap().to_cell(h3o::Resolution::Nine));
        let w = &sql(&format!("SELECT h3_cell_to_boundary_wkt({c})"))[0];
        assert!(w.starts_with("MULTIPOLYGON ((("), "{w}");
        let lngs: Vec<f64> = w
            .split(['(', ')', ','])
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect();
        assert!(lngs.iter().all(|x| x.abs() <= 180.0 && x.abs() > 179.9), "{w}");
    }

    #[test]
    fn h3_cell_to_boundary_wkt_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(
            sql(&format!(
                "SELECT h3_boundaryaswkt({CELL}) = h3_cell_to_boundary_wkt({CELL})"
            )),
            ["true"]
        );
    }
}

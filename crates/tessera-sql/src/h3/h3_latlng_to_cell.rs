//! `h3_latlng_to_cell(lat, lng, res) -> UBIGINT`: the cell containing a point.

use super::{f64s, i64s, res_at, udf as make, Kernel};
use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let (lat, lng, res) = (f64s(&a[0])?, f64s(&a[1])?, i64s(&a[2])?);
    let out: UInt64Array = (0..lat.len())
        .map(|i| {
            if lat.is_null(i) || lng.is_null(i) {
                return None;
            }
            let ll = h3o::LatLng::new(lat.value(i), lng.value(i)).ok()?;
            Some(u64::from(ll.to_cell(res_at(&res, i)?)))
        })
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// The UDF.
pub fn udf() -> ScalarUDF {
    make("h3_latlng_to_cell", 3, DataType::UInt64, KERNEL)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_latlng_to_cell_matches_the_cell_tessera_covers() {
        assert_eq!(sql("SELECT h3_latlng_to_cell(52.52, 13.405, 12)"), [CELL.to_string()]);
        let c = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
        assert_eq!(u64::from(c), CELL);
    }

    #[test]
    fn h3_latlng_to_cell_invalid_input_is_null() {
        for q in [
            "h3_latlng_to_cell(52.5, 13.4, 16)",
            "h3_latlng_to_cell(NULL, 13.4, 9)",
            "h3_latlng_to_cell(52.5, 13.4, -1)",
            "h3_latlng_to_cell(CAST('NaN' AS DOUBLE), 1.0, 5)",
        ] {
            assert_eq!(sql(&format!("SELECT {q} IS NULL")), ["true"], "{q}");
        }
    }

    #[test]
    fn h3_latlng_to_cell_is_vectorized_over_columns() {
        let rows = sql("SELECT h3_latlng_to_cell(lat, lng, 5) FROM (VALUES (0.0, 0.0), (52.5, 13.4), (-33.9, 151.2)) AS t(lat, lng)");
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.parse::<u64>().is_ok()), "{rows:?}");
    }
}

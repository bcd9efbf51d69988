//! `h3_cell_to_lat(cell) -> DOUBLE`: latitude of the cell centre.

use super::{cell_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let cell = u64s(&a[0])?;
    let out: Float64Array = (0..cell.len())
        .map(|i| cell_at(&cell, i).map(|c| h3o::LatLng::from(c).lat()))
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// The UDF.
pub fn udf() -> ScalarUDF {
    make("h3_cell_to_lat", 1, DataType::Float64, KERNEL)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_cell_to_lat_is_within_a_cell_of_the_point() {
        let lat: f64 = sql(&format!("SELECT h3_cell_to_lat({CELL})"))[0].parse().unwrap();
        assert!((lat - 52.52).abs() < 2e-4, "{lat}");
        assert_eq!(sql("SELECT h3_cell_to_lat(1) IS NULL"), ["true"]);
    }
}

//! `h3_resolution(cell) -> INTEGER`: 0 (coarsest) to 15.

use super::{cell_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, Int32Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let cell = u64s(&a[0])?;
    let out: Int32Array = (0..cell.len())
        .map(|i| cell_at(&cell, i).map(|c| i32::from(u8::from(c.resolution()))))
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_get_resolution"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_resolution", 1, DataType::Int32, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_resolution_of_a_res12_cell_is_12() {
        assert_eq!(sql(&format!("SELECT h3_resolution({CELL})")), ["12"]);
    }

    #[test]
    fn h3_resolution_invalid_is_null() {
        assert_eq!(sql("SELECT h3_resolution(0) IS NULL"), ["true"]);
    }
    #[test]
    fn h3_resolution_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(
            sql(&format!("SELECT h3_get_resolution({CELL}) = h3_resolution({CELL})")),
            ["true"]
        );
    }
}

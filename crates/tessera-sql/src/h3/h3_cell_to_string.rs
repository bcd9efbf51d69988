//! `h3_cell_to_string(cell) -> VARCHAR`: the usual hexadecimal form (`8c1f1d4896465ff`).

use super::{cell_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let cell = u64s(&a[0])?;
    let out: StringArray = (0..cell.len())
        .map(|i| cell_at(&cell, i).map(|c| c.to_string()))
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_h3_to_string", "h3_h3tostring"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_cell_to_string", 1, DataType::Utf8, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_cell_to_string_is_lowercase_hex() {
        assert_eq!(sql(&format!("SELECT h3_cell_to_string({CELL})")), [format!("{CELL:x}")]);
    }

    #[test]
    fn h3_cell_to_string_invalid_is_null() {
        assert_eq!(
            sql("SELECT h3_cell_to_string(7) IS NULL, h3_cell_to_string(-1) IS NULL"),
            ["true | true"]
        );
    }
    #[test]
    fn h3_cell_to_string_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(sql(&format!("SELECT h3_h3_to_string({CELL}) = h3_cell_to_string({CELL}), h3_h3tostring({CELL}) = h3_cell_to_string({CELL})")), ["true | true"]);
    }
}

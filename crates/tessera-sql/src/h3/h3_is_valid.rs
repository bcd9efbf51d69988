//! `h3_is_valid(cell) -> BOOLEAN`: whether an integer is a valid H3 cell index.

use super::{u64s, udf as make, Kernel};
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let (nulls, cell) = (a[0].logical_nulls(), u64s(&a[0])?);
    // NULL in, NULL out; non-null input that does not cast (negative) is simply not a cell.
    let out: BooleanArray = (0..cell.len())
        .map(|i| {
            (!nulls.as_ref().is_some_and(|n| n.is_null(i)))
                .then(|| !cell.is_null(i) && h3o::CellIndex::try_from(cell.value(i)).is_ok())
        })
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_is_valid_cell", "h3_isvalid"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_is_valid", 1, DataType::Boolean, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_is_valid_accepts_cells_only() {
        assert_eq!(
            sql(&format!(
                "SELECT h3_is_valid({CELL}), h3_is_valid(12345), h3_is_valid(-5), h3_is_valid(NULL) IS NULL"
            )),
            ["true | false | false | true"]
        );
    }
    #[test]
    fn h3_is_valid_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(
            sql(&format!(
                "SELECT h3_is_valid_cell({CELL}), h3_isvalid({CELL}), h3_is_valid_cell(9)"
            )),
            ["true | true | false"]
        );
    }
}

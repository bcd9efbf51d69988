//! `h3_cell_to_parent(cell, res) -> UBIGINT`: the ancestor at a coarser resolution.

use super::{cell_at, i64s, res_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let (cell, res) = (u64s(&a[0])?, i64s(&a[1])?);
    let out: UInt64Array = (0..cell.len())
        .map(|i| Some(u64::from(cell_at(&cell, i)?.parent(res_at(&res, i)?)?)))
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_toparent"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_cell_to_parent", 2, DataType::UInt64, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_cell_to_parent_is_the_coarser_cell_containing_it() {
        let p = sql(&format!("SELECT h3_cell_to_parent({CELL}, 7)"))[0]
            .parse::<u64>()
            .unwrap();
        assert_eq!(sql(&format!("SELECT h3_resolution({p})")), ["7"]);
        assert_eq!(
            sql(&format!(
                "SELECT h3_cell_to_parent({CELL}, 7) = h3_latlng_to_cell(52.52, 13.405, 7)"
            )),
            ["true"]
        );
    }

    #[test]
    fn h3_cell_to_parent_finer_resolution_or_invalid_is_null() {
        for q in [
            format!("h3_cell_to_parent({CELL}, 13)"),
            "h3_cell_to_parent(12345, 3)".into(),
            format!("h3_cell_to_parent({CELL}, 16)"),
            "h3_cell_to_parent(NULL, 3)".into(),
        ] {
            assert_eq!(sql(&format!("SELECT {q} IS NULL")), ["true"], "{q}");
        }
    }
    #[test]
    fn h3_cell_to_parent_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(
            sql(&format!("SELECT h3_toparent({CELL}, 5) = h3_cell_to_parent({CELL}, 5)")),
            ["true"]
        );
    }
}

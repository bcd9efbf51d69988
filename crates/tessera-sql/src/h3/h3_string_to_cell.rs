//! `h3_string_to_cell(text) -> UBIGINT`: parse the hexadecimal form.

use super::{strs, udf as make, Kernel};
use datafusion::arrow::array::{Array, ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let s = strs(&a[0])?;
    let out: UInt64Array = (0..s.len())
        .map(|i| {
            (!s.is_null(i))
                .then(|| s.value(i).trim().parse::<h3o::CellIndex>().ok().map(u64::from))
                .flatten()
        })
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_string_to_h3", "h3_stringtoh3"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_string_to_cell", 1, DataType::UInt64, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_string_to_cell_roundtrips_with_h3_cell_to_string() {
        assert_eq!(
            sql(&format!("SELECT h3_string_to_cell('{CELL:x}')")),
            [CELL.to_string()]
        );
        assert_eq!(
            sql(&format!("SELECT h3_string_to_cell(h3_cell_to_string({CELL})) = {CELL}")),
            ["true"]
        );
    }

    #[test]
    fn h3_string_to_cell_garbage_is_null() {
        assert_eq!(sql("SELECT h3_string_to_cell('zzz') IS NULL, h3_string_to_cell('') IS NULL, h3_string_to_cell(NULL) IS NULL"), ["true | true | true"]);
    }
    #[test]
    fn h3_string_to_cell_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(sql(&format!("SELECT h3_string_to_h3('{CELL:x}') = h3_string_to_cell('{CELL:x}'), h3_stringtoh3('{CELL:x}') = h3_string_to_cell('{CELL:x}')")), ["true | true"]);
    }
}

//! `h3_grid_distance(a, b) -> BIGINT`: steps between two cells of one resolution (NULL when h3
//! cannot tell: different resolutions, too far apart, across pentagon distortion).

use super::{cell_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

const KERNEL: Kernel = |a| {
    let (x, y) = (u64s(&a[0])?, u64s(&a[1])?);
    let out: Int64Array = (0..x.len())
        .map(|i| cell_at(&x, i)?.grid_distance(cell_at(&y, i)?).ok().map(i64::from))
        .collect();
    Ok(Arc::new(out) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_distance"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make("h3_grid_distance", 2, DataType::Int64, KERNEL).with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_grid_distance_to_itself_is_zero_and_to_the_disk_ring_is_k() {
        assert_eq!(sql(&format!("SELECT h3_grid_distance({CELL}, {CELL})")), ["0"]);
        let rows = sql(&format!(
            "SELECT max(h3_grid_distance({CELL}, c)) FROM (SELECT unnest(h3_grid_disk({CELL}, 3)) AS c)"
        ));
        assert_eq!(rows, ["3"]);
    }

    #[test]
    fn h3_grid_distance_across_resolutions_is_null() {
        assert_eq!(
            sql(&format!(
                "SELECT h3_grid_distance({CELL}, h3_cell_to_parent({CELL}, 5)) IS NULL"
            )),
            ["true"]
        );
    }
    #[test]
    fn h3_grid_distance_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(sql(&format!("SELECT h3_distance({CELL}, {CELL}) = 0")), ["true"]);
    }
}

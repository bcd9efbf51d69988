//! `h3_grid_disk(cell, k) -> LIST<UBIGINT>`: every cell within k steps (k from 0 to 100; larger
//! or negative k, or an invalid cell, gives NULL).

use super::{cell_at, i64s, u64s, udf as make, Kernel};
use datafusion::arrow::array::{Array, ArrayRef, ListBuilder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

/// Largest k served (a disk of k = 100 is 30,301 cells).
pub const MAX_K: i64 = 100;

const KERNEL: Kernel = |a| {
    let (cell, k) = (u64s(&a[0])?, i64s(&a[1])?);
    let mut b = ListBuilder::new(UInt64Builder::new());
    for i in 0..cell.len() {
        match (cell_at(&cell, i), (!k.is_null(i)).then(|| k.value(i))) {
            (Some(c), Some(k)) if (0..=MAX_K).contains(&k) => {
                let mut disk: Vec<u64> = c.grid_disk::<Vec<_>>(k as u32).into_iter().map(u64::from).collect();
                disk.sort_unstable();
                b.values().append_slice(&disk);
                b.append(true);
            }
            _ => b.append(false),
        }
    }
    Ok(Arc::new(b.finish()) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_kring"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make(
        "h3_grid_disk",
        2,
        DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))),
        KERNEL,
    )
    .with_aliases(ALIASES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::super::testing::{sql, CELL};

    #[test]
    fn h3_grid_disk_has_1_plus_3k_k_plus_1_cells() {
        for k in 0..4 {
            assert_eq!(
                sql(&format!("SELECT cardinality(h3_grid_disk({CELL}, {k}))")),
                [(1 + 3 * k * (k + 1)).to_string()]
            );
        }
    }

    #[test]
    fn h3_grid_disk_bad_k_or_cell_is_null() {
        assert_eq!(sql(&format!("SELECT h3_grid_disk({CELL}, -1) IS NULL, h3_grid_disk({CELL}, 101) IS NULL, h3_grid_disk(9, 1) IS NULL")), ["true | true | true"]);
    }
    #[test]
    fn h3_grid_disk_answers_to_its_duckdb_and_databricks_names() {
        assert_eq!(
            sql(&format!(
                "SELECT cardinality(h3_kring({CELL}, 1)) = cardinality(h3_grid_disk({CELL}, 1))"
            )),
            ["true"]
        );
    }
}

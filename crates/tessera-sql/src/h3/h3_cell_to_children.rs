//! `h3_cell_to_children(cell, res) -> LIST<UBIGINT>`: the cells at the finer resolution `res`
//! inside a cell, in index order (at most 7^4 = 2,401 children: a step of more than 4
//! resolutions, a coarser `res`, or an invalid cell gives NULL).

use super::{cell_at, i64s, res_at, u64s, udf as make, Kernel};
use datafusion::arrow::array::{ArrayRef, ListBuilder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::ScalarUDF;
use std::sync::Arc;

/// Most resolutions a query may step down (7^4 = 2,401 children per row).
pub const MAX_STEPS: u8 = 4;

const KERNEL: Kernel = |a| {
    let (cell, res) = (u64s(&a[0])?, i64s(&a[1])?);
    let mut b = ListBuilder::new(UInt64Builder::new());
    for i in 0..cell.len() {
        match (cell_at(&cell, i), res_at(&res, i)) {
            (Some(c), Some(r)) if r >= c.resolution() && u8::from(r) - u8::from(c.resolution()) <= MAX_STEPS => {
                let mut kids: Vec<u64> = c.children(r).map(u64::from).collect();
                kids.sort_unstable();
                b.values().append_slice(&kids);
                b.append(true);
            }
            _ => b.append(false),
        }
    }
    Ok(Arc::new(b.finish()) as ArrayRef)
};

/// Other names users type for it (DuckDB h3 extension, Databricks).
pub const ALIASES: &[&str] = &["h3_tochildren"];

/// The UDF, with its [`ALIASES`].
pub fn udf() -> ScalarUDF {
    make(
        "h3_cell_to_children",
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
    fn h3_cell_to_children_has_7_per_step_and_each_has_the_cell_as_parent() {
        assert_eq!(
            sql(&format!("SELECT cardinality(h3_cell_to_children({CELL}, 14))")),
            ["49"]
        );
        assert_eq!(
            sql(&format!(
                "SELECT bool_and(h3_cell_to_parent(c, 12) = {CELL}) FROM (SELECT unnest(h3_cell_to_children({CELL}, 13)) AS c)"
            )),
            ["true"]
        );
    }

    #[test]
    fn h3_cell_to_children_coarser_too_deep_or_invalid_is_null() {
        assert_eq!(
            sql(&format!("SELECT h3_cell_to_children({CELL}, 11) IS NULL, h3_cell_to_children(631051317946997247 >> 40, 13) IS NULL, h3_cell_to_children({CELL}, 16) IS NULL")),
            ["true | true | true"]
        );
        assert_eq!(
            sql(&format!(
                "SELECT h3_cell_to_children(h3_cell_to_parent({CELL}, 7), 12) IS NULL"
            )),
            ["true"]
        );
    }

    #[test]
    fn h3_cell_to_children_answers_to_its_databricks_name() {
        assert_eq!(sql(&format!("SELECT cardinality(h3_tochildren({CELL}, 13))")), ["7"]);
    }
}

//! H3 scalar functions, named as in Databricks and DuckDB's h3 extension. One function per file,
//! each with its SQL tests beside it. Cells are UInt64 (any integer type is accepted); invalid
//! input (an invalid cell, resolution 16, a NULL) gives NULL, never a panic.

pub mod h3_cell_to_boundary_wkt;
pub mod h3_cell_to_children;
pub mod h3_cell_to_lat;
pub mod h3_cell_to_lng;
pub mod h3_cell_to_parent;
pub mod h3_cell_to_string;
pub mod h3_grid_disk;
pub mod h3_grid_distance;
pub mod h3_is_valid;
pub mod h3_latlng_to_cell;
pub mod h3_resolution;
pub mod h3_string_to_cell;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

/// A vectorized kernel: argument arrays (scalars already broadcast) → result array.
pub(crate) type Kernel = fn(&[ArrayRef]) -> Result<ArrayRef>;

/// One H3 function: name, arity, return type and kernel. Functions are equal when their names
/// are (each name has one kernel).
#[derive(Debug)]
pub(crate) struct H3Fn {
    name: &'static str,
    signature: Signature,
    ret: DataType,
    kernel: Kernel,
}

impl PartialEq for H3Fn {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.signature == o.signature && self.ret == o.ret
    }
}
impl Eq for H3Fn {}
impl std::hash::Hash for H3Fn {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.name.hash(h);
    }
}

impl ScalarUDFImpl for H3Fn {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.ret.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        Ok(ColumnarValue::Array((self.kernel)(&arrays)?))
    }
}

pub(crate) fn udf(name: &'static str, arity: usize, ret: DataType, kernel: Kernel) -> ScalarUDF {
    ScalarUDF::from(H3Fn {
        name,
        signature: Signature::any(arity, Volatility::Immutable),
        ret,
        kernel,
    })
}

/// Cast an argument to UInt64 (negative or non-integral values become NULL).
pub(crate) fn u64s(a: &ArrayRef) -> Result<UInt64Array> {
    Ok(cast(a, &DataType::UInt64)?
        .as_any()
        .downcast_ref::<UInt64Array>()
        .expect("cast to UInt64")
        .clone())
}

/// Cast an argument to Int64.
pub(crate) fn i64s(a: &ArrayRef) -> Result<Int64Array> {
    Ok(cast(a, &DataType::Int64)?
        .as_any()
        .downcast_ref::<Int64Array>()
        .expect("cast to Int64")
        .clone())
}

/// Cast an argument to Float64.
pub(crate) fn f64s(a: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(a, &DataType::Float64)?
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64")
        .clone())
}

/// Cast an argument to Utf8.
pub(crate) fn strs(a: &ArrayRef) -> Result<StringArray> {
    Ok(cast(a, &DataType::Utf8)?
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone())
}

/// The cell at row `i`, or `None` for NULL or an invalid index.
pub(crate) fn cell_at(a: &UInt64Array, i: usize) -> Option<h3o::CellIndex> {
    (!a.is_null(i))
        .then(|| h3o::CellIndex::try_from(a.value(i)).ok())
        .flatten()
}

/// A resolution 0..=15 at row `i`.
pub(crate) fn res_at(a: &Int64Array, i: usize) -> Option<h3o::Resolution> {
    (!a.is_null(i))
        .then(|| {
            u8::try_from(a.value(i))
                .ok()
                .and_then(|r| h3o::Resolution::try_from(r).ok())
        })
        .flatten()
}

/// Every H3 function.
pub fn all() -> Vec<ScalarUDF> {
    vec![
        h3_latlng_to_cell::udf(),
        h3_cell_to_parent::udf(),
        h3_cell_to_string::udf(),
        h3_string_to_cell::udf(),
        h3_resolution::udf(),
        h3_cell_to_lat::udf(),
        h3_cell_to_lng::udf(),
        h3_cell_to_boundary_wkt::udf(),
        h3_grid_distance::udf(),
        h3_is_valid::udf(),
        h3_grid_disk::udf(),
        h3_cell_to_children::udf(),
    ]
}

/// Register every H3 function on a session.
pub fn register(ctx: &SessionContext) {
    for f in all() {
        ctx.register_udf(f);
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    /// Run one SQL query on a session with the H3 functions; rows as text.
    pub fn sql(q: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let ctx = SessionContext::new();
            super::register(&ctx);
            let batches = ctx.sql(q).await.unwrap().collect().await.unwrap();
            let text = pretty_format_batches(&batches).unwrap().to_string();
            text.lines()
                .skip(3)
                .filter(|l| !l.starts_with('+'))
                .map(|l| {
                    l.trim_matches('|')
                        .split('|')
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect()
        })
    }

    /// The res-12 cell of (52.52, 13.405), Berlin (`h3_latlng_to_cell` test checks it against the
    /// cell tessera's own cover computes).
    pub const CELL: u64 = 631_051_317_946_997_247;
}

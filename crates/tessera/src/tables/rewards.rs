//! `epochs/E/rewards.parquet`: one row per (recipient, kind) — `base` for the epoch pool,
//! `bounty:<id>` for each bounty — with that kind's amount and points, the recipient's `total`
//! (the amount of its one merkle leaf) and the leaf and proof.

use super::{amount_type, ppm_type};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `epochs/E/rewards.parquet`.
///
/// ```
/// assert_eq!(tessera::tables::rewards_schema().field(2).data_type(), &tessera::tables::amount_type());
/// ```
pub fn rewards_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("recipient", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("amount", amount_type(), false),
        Field::new("points", ppm_type(), false),
        Field::new("devices", DataType::UInt32, false),
        Field::new("cells", DataType::UInt64, false),
        Field::new("total", amount_type(), false),
        Field::new("leaf", DataType::Utf8, false),
        Field::new(
            "proof",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
    ]))
}

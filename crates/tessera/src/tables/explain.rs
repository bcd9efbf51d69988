//! `epochs/E/explain.parquet`: one row per scored visit.

use super::{decimal_builder, ppm_type, ts};
use crate::novelty::Scored;
use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// Schema of `epochs/E/explain.parquet`.
///
/// ```
/// assert!(tessera::tables::explain_schema().field_with_name("points").is_ok());
/// ```
pub fn explain_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("recipient", DataType::Utf8, false),
        Field::new("first_time", ts(), false),
        Field::new("last_time", ts(), false),
        Field::new("fixes", DataType::UInt32, false),
        Field::new("best_hdop", DataType::Float32, false),
        Field::new("rank", DataType::UInt32, false),
        Field::new("age_epochs", DataType::Int64, true),
        Field::new("rank_w", ppm_type(), false),
        Field::new("freshness_w", ppm_type(), false),
        Field::new("quality_w", ppm_type(), false),
        Field::new("region_w", ppm_type(), false),
        Field::new("trust_w", ppm_type(), false),
        Field::new("points", ppm_type(), false),
        Field::new("region", DataType::Utf8, true),
        Field::new("on_road", DataType::Boolean, true),
    ]))
}

/// Scored visits → one record batch; `devices[i]` and `wallets[i]` name device index `i`,
/// `regions[r]` region `r` (`region` is null outside every region; `on_road` null with no road
/// network configured).
///
/// ```
/// assert_eq!(tessera::tables::explain_batch(&[], &[], &[], &[]).num_rows(), 0);
/// ```
pub fn explain_batch(
    scored: &[Scored],
    devices: &[String],
    wallets: &[String],
    regions: &[crate::places::Region],
) -> RecordBatch {
    let n = scored.len();
    let mut cell = UInt64Builder::with_capacity(n);
    let mut cell_id = StringBuilder::with_capacity(n, 15 * n);
    let mut device = StringBuilder::new();
    let mut recipient = StringBuilder::with_capacity(n, 42 * n);
    let mut first = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut fixes = UInt32Builder::with_capacity(n);
    let mut hdop = Float32Builder::with_capacity(n);
    let mut rank = UInt32Builder::with_capacity(n);
    let mut age = Int64Builder::with_capacity(n);
    let (mut rw, mut fw, mut qw, mut gw, mut tw, mut pts) = (
        decimal_builder(n, &ppm_type()),
        decimal_builder(n, &ppm_type()),
        decimal_builder(n, &ppm_type()),
        decimal_builder(n, &ppm_type()),
        decimal_builder(n, &ppm_type()),
        decimal_builder(n, &ppm_type()),
    );
    let mut region = StringBuilder::new();
    let mut on_road = BooleanBuilder::with_capacity(n);
    let mut hex = [0u8; 16];
    for s in scored {
        let d = s.row.device as usize;
        region.append_option(s.region.map(|r| regions[r as usize].name.as_str()));
        on_road.append_option(s.on_road);
        cell.append_value(s.row.cell);
        cell_id.append_value(super::cell_hex(s.row.cell, &mut hex));
        device.append_value(&devices[d]);
        recipient.append_value(&wallets[d]);
        first.append_value(s.row.visit.first_ms);
        last.append_value(s.row.visit.last_ms);
        fixes.append_value(s.row.visit.fixes);
        hdop.append_value(s.row.visit.best_hdop_centi as f32 / 100.0);
        rank.append_value(s.rank);
        age.append_option(s.age);
        rw.append_value(i128::from(s.rank_w));
        fw.append_value(i128::from(s.freshness_w));
        qw.append_value(i128::from(s.quality_w));
        gw.append_value(i128::from(s.region_w));
        tw.append_value(i128::from(s.trust_w));
        pts.append_value(i128::from(s.points));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell.finish()),
        Arc::new(cell_id.finish()),
        Arc::new(device.finish()),
        Arc::new(recipient.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(fixes.finish()),
        Arc::new(hdop.finish()),
        Arc::new(rank.finish()),
        Arc::new(age.finish()),
        Arc::new(rw.finish()),
        Arc::new(fw.finish()),
        Arc::new(qw.finish()),
        Arc::new(gw.finish()),
        Arc::new(tw.finish()),
        Arc::new(pts.finish()),
        Arc::new(region.finish()),
        Arc::new(on_road.finish()),
    ];
    RecordBatch::try_new(explain_schema(), cols).expect("schema matches")
}

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
    explain_batch_parts(&[scored], devices, wallets, regions)
}

/// [`explain_batch`] of the rows of `parts` one after the other (the same batch as of their
/// concatenation), read where they are: a batch of an epoch's explain spans two scored parts.
///
/// ```
/// use tessera::tables::{explain_batch, explain_batch_parts};
/// let none: &[tessera::novelty::Scored] = &[];
/// assert_eq!(explain_batch_parts(&[none, none], &[], &[], &[]), explain_batch(none, &[], &[], &[]));
/// ```
pub fn explain_batch_parts(
    parts: &[&[Scored]],
    devices: &[String],
    wallets: &[String],
    regions: &[crate::places::Region],
) -> RecordBatch {
    // Three groups of columns, each built in one pass over the rows, on the rayon pool: a
    // batch is built while the columns of the one before are encoded, and the last batch of
    // an epoch alone. The arrays (so the bytes) are the same as built in one pass.
    let ((ids, visit), weights) = rayon::join(
        || rayon::join(|| id_columns(parts, devices, wallets), || visit_columns(parts, regions)),
        || weight_columns(parts),
    );
    // Schema order: the ids, the visit's times, counts and rank, the weights, region, on_road.
    let [first, last, fixes, hdop, rank, age, region, on_road] = visit;
    let cols: Vec<ArrayRef> = ids
        .into_iter()
        .chain([first, last, fixes, hdop, rank, age])
        .chain(weights)
        .chain([region, on_road])
        .collect();
    RecordBatch::try_new(explain_schema(), cols).expect("schema matches")
}

/// Rows in `parts`.
fn rows(parts: &[&[Scored]]) -> usize {
    parts.iter().map(|p| p.len()).sum()
}

/// `cell`, `cell_id`, `device`, `recipient`.
fn id_columns(parts: &[&[Scored]], devices: &[String], wallets: &[String]) -> [ArrayRef; 4] {
    let n = rows(parts);
    let mut cell = UInt64Builder::with_capacity(n);
    let mut cell_id = StringBuilder::with_capacity(n, 15 * n);
    let mut device = StringBuilder::with_capacity(n, 8 * n);
    let mut recipient = StringBuilder::with_capacity(n, 42 * n);
    let mut hex = [0u8; 16];
    for s in parts.iter().copied().flatten() {
        let d = s.row.device as usize;
        cell.append_value(s.row.cell);
        cell_id.append_value(super::cell_hex(s.row.cell, &mut hex));
        device.append_value(&devices[d]);
        recipient.append_value(&wallets[d]);
    }
    [
        Arc::new(cell.finish()),
        Arc::new(cell_id.finish()),
        Arc::new(device.finish()),
        Arc::new(recipient.finish()),
    ]
}

/// `first_time`, `last_time`, `fixes`, `best_hdop`, `rank`, `age_epochs`, `region`, `on_road`.
fn visit_columns(parts: &[&[Scored]], regions: &[crate::places::Region]) -> [ArrayRef; 8] {
    let n = rows(parts);
    let mut first = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut fixes = UInt32Builder::with_capacity(n);
    let mut hdop = Float32Builder::with_capacity(n);
    let mut rank = UInt32Builder::with_capacity(n);
    let mut age = Int64Builder::with_capacity(n);
    let mut region = StringBuilder::new();
    let mut on_road = BooleanBuilder::with_capacity(n);
    for s in parts.iter().copied().flatten() {
        first.append_value(s.row.visit.first_ms);
        last.append_value(s.row.visit.last_ms);
        fixes.append_value(s.row.visit.fixes);
        hdop.append_value(s.row.visit.best_hdop_centi as f32 / 100.0);
        rank.append_value(s.rank);
        age.append_option(s.age);
        region.append_option(s.region.map(|r| regions[r as usize].name.as_str()));
        on_road.append_option(s.on_road);
    }
    [
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(fixes.finish()),
        Arc::new(hdop.finish()),
        Arc::new(rank.finish()),
        Arc::new(age.finish()),
        Arc::new(region.finish()),
        Arc::new(on_road.finish()),
    ]
}

/// `rank_w`, `freshness_w`, `quality_w`, `region_w`, `trust_w`, `points` (millionths).
fn weight_columns(parts: &[&[Scored]]) -> [ArrayRef; 6] {
    let n = rows(parts);
    let mut b: [_; 6] = std::array::from_fn(|_| decimal_builder(n, &ppm_type()));
    for s in parts.iter().copied().flatten() {
        let w = [s.rank_w, s.freshness_w, s.quality_w, s.region_w, s.trust_w, s.points];
        for (b, w) in b.iter_mut().zip(w) {
            b.append_value(i128::from(w));
        }
    }
    b.map(|mut b| Arc::new(b.finish()) as ArrayRef)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells::Visit;
    use crate::novelty::VisitRow;

    #[test]
    fn rule_explain_of_parts_is_explain_of_their_concatenation_at_every_cut() {
        // Every field varies from row to row, nulls included.
        let rows: Vec<Scored> = (0..200u64)
            .map(|i| Scored {
                row: VisitRow {
                    cell: 0x8c1f_0000_0000_0000 + i * 64,
                    device: (i % 3) as u32,
                    visit: Visit {
                        first_ms: i as i64 * 1000,
                        last_ms: i as i64 * 1000 + 400,
                        fixes: (i % 4) as u32,
                        best_hdop_centi: 50 + (i % 9) as u32,
                    },
                },
                rank: (i % 3) as u32 + 1,
                age: (i % 5 != 0).then_some(i as i64 % 7),
                rank_w: 1_000_000 - i,
                freshness_w: 2_000_000 + i,
                quality_w: 900_000 + i % 11,
                region_w: 1_500_000,
                region: (i % 4 != 0).then_some((i % 2) as u32),
                on_road: (i % 3 != 0).then_some(i % 2 == 0),
                trust_w: 1_000_000 - i % 13,
                points: i * 1_234_567,
            })
            .collect();
        let devices: Vec<String> = ["car-1", "car-2", "van-3"].map(String::from).to_vec();
        let wallets: Vec<String> = ["0xa", "0xb", "0xa"].map(String::from).to_vec();
        let regions = [
            crate::places::Region {
                name: "north".into(),
                weight: 1_500_000,
            },
            crate::places::Region {
                name: "south".into(),
                weight: 1_500_000,
            },
        ];
        let whole = explain_batch(&rows, &devices, &wallets, &regions);
        assert_eq!(whole.num_rows(), rows.len());
        for cut in [0, 1, 7, 99, 199, 200] {
            let (a, b) = rows.split_at(cut);
            assert_eq!(
                explain_batch_parts(&[a, b], &devices, &wallets, &regions),
                whole,
                "cut {cut}"
            );
        }
        let thirds: Vec<&[Scored]> = rows.chunks(67).collect();
        assert_eq!(explain_batch_parts(&thirds, &devices, &wallets, &regions), whole);
        // …and the sink's `Parts` builder is that function.
        use crate::tables::BuildBatch;
        let parts = crate::tables::Parts(|p: &[&[Scored]]| explain_batch_parts(p, &devices, &wallets, &regions));
        assert_eq!(parts.build_parts(&rows[..5], &rows[5..]), whole);
        assert_eq!(parts.build(&rows), whole);
    }
}

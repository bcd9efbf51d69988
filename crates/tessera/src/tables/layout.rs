//! How an epoch's streamed Parquet outputs (`explain`, `coverage`, `rejections`) are encoded.
//!
//! The encoding is part of the published bytes, so it is versioned: the manifest records the
//! layout an epoch was written in (`layout`, absent for layout 1), `epoch verify` recomputes in
//! that layout and every re-run of a published epoch keeps it (`--replace` included: the next
//! epoch's manifest holds the hash of its `coverage.parquet`). New epochs get
//! [`Layout::CURRENT`]. A layout is frozen once released: the shared writer settings
//! (`props()`: compression, row-group size, `created_by`), [`HIGH_CARDINALITY_COLUMNS`],
//! [`DELTA_COLUMNS`] and which columns keep statistics are part of it, so a change to any is a
//! new layout, not an edit.

use super::props;
use arrow_schema::{DataType, SchemaRef};
use parquet::basic::Encoding;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// The Parquet layout of an epoch's streamed outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Every column tries a dictionary (ZSTD level 3, 2^20-row groups): epochs published before
    /// layout 2, whose manifest has no `layout` field.
    V1,
    /// As `V1`, but the columns with about one value per row ([`HIGH_CARDINALITY_COLUMNS`])
    /// without a dictionary: `cell` DELTA_BINARY_PACKED (explain and coverage are sorted by it),
    /// the others PLAIN. In large epochs their dictionaries outgrew the 1 MiB page limit in
    /// each 2^20-row group (about 130,000 distinct 8-byte values, 55,000 cell ids) and fell back
    /// to PLAIN after hashing that many values per column chunk: at 10^7 fixes layout 2 takes
    /// ~7 % less CPU and writes `explain.parquet` 10.5 %, `coverage.parquet` 18 %,
    /// `rejections.parquet` 16 % smaller.
    V2,
    /// As `V2`, but the fixed-point columns ([`DataType::Decimal128`]: explain's weights and
    /// points) without statistics. arrow-rs keeps their min/max by comparing every 16-byte
    /// value as a byte array (`compare_greater` + `memcmp`): ~1.5 % of a 10^7-fix epoch's CPU
    /// samples, for page and chunk statistics no query prunes by (explain is sorted by cell;
    /// a filter on points still reads every page). Values, encodings (files ~0.1 % smaller)
    /// and every other column's statistics are unchanged; coverage and rejections, which have
    /// no such column, keep layout 2's bytes.
    V3,
    /// As `V3`, but the fixed-point columns in Parquet as `DECIMAL(18, 6)` on `INT64`
    /// ([`Layout::file_schema`]) instead of `DECIMAL(38, 6)` on a 16-byte
    /// `FIXED_LEN_BYTE_ARRAY`. arrow-rs turns every value of the latter into a reference-counted
    /// byte array on its way to the encoder (clone, split and drop per value): ~6 % of the CPU
    /// samples of a 10^7-fix epoch; with the 18-digit columns it ran 5–7 % faster end to end
    /// (benches/HISTORY.md, thirty-seventh round).
    /// The values are the same: every multiplier and point a valid policy gives one visit is
    /// below 10^15 millionths ([`NARROW_PRECISION`]). Readers get `Decimal128(18, 6)` from the
    /// file; tessera's readers (SQL, Python) present every layout as the table's schema,
    /// `Decimal128(38, 6)` ([`super::conform`]). Coverage and rejections keep layout 2's bytes.
    V4,
    /// As `V4`, but each column whose values follow their neighbours in an encoding that uses
    /// it: `cell_id` (explain and coverage, sorted by cell: consecutive hex ids share most of
    /// their 15 characters) DELTA_BYTE_ARRAY, and rejections' `time` and `line` (in source
    /// order: increasing within a source) DELTA_BINARY_PACKED (`DELTA_COLUMNS`). ZSTD then
    /// has fewer bytes to compress: at 10^7 fixes `coverage.parquet` is ~34 % smaller,
    /// `rejections.parquet` ~18 %, `explain.parquet` ~1 %; the epoch's time is unchanged (the
    /// encoders cost about what ZSTD saves; benches/HISTORY.md, forty-third round). Values and
    /// every other setting are `V4`'s.
    /// Explain's times stay PLAIN: sorted by cell, they jump across the week from row to row, and
    /// delta-packed they made the file 15 % larger.
    V5,
}

/// The columns [`Layout::V5`] writes in a delta encoding (where a table has them), with it.
pub const DELTA_COLUMNS: [(&str, Encoding); 3] = [
    ("cell_id", Encoding::DELTA_BYTE_ARRAY),
    ("time", Encoding::DELTA_BINARY_PACKED),
    ("line", Encoding::DELTA_BINARY_PACKED),
];

/// Precision of the fixed-point columns of the streamed outputs from [`Layout::V4`] on: 18
/// digits, the most Parquet stores as `INT64`. Explain's six columns fit: rank, discovery
/// (freshness) and region weights are at most 1000 each, quality, trust and road at most 1
/// (`Policy::kernels` refuses more), so a visit's points are at most 10^9 points, 10^15
/// millionths, below 10^18. A value that does not fit is an error of the write
/// ([`super::ColumnParallelWriter`]), never a wrapped integer.
pub const NARROW_PRECISION: u8 = 18;

/// The columns [`Layout::V2`] writes without a dictionary (where a table has them): H3 cells,
/// their hex ids, times in milliseconds, source lines and coordinates.
pub const HIGH_CARDINALITY_COLUMNS: [&str; 8] = [
    "cell",
    "cell_id",
    "first_time",
    "last_time",
    "time",
    "line",
    "lat",
    "lon",
];

impl Layout {
    /// What new epochs are written in.
    pub const CURRENT: Layout = Layout::V5;

    /// The number the manifest records (`1` to `5`).
    ///
    /// ```
    /// use tessera::tables::Layout;
    /// assert_eq!(Layout::from_number(Layout::CURRENT.number()), Some(Layout::CURRENT));
    /// ```
    pub fn number(self) -> u32 {
        match self {
            Layout::V1 => 1,
            Layout::V2 => 2,
            Layout::V3 => 3,
            Layout::V4 => 4,
            Layout::V5 => 5,
        }
    }

    /// The layout numbered `n` (`None`: a layout this build does not know, i.e. written by a
    /// newer tessera).
    ///
    /// ```
    /// assert_eq!(tessera::tables::Layout::from_number(1), Some(tessera::tables::Layout::V1));
    /// assert_eq!(tessera::tables::Layout::from_number(6), None);
    /// ```
    pub fn from_number(n: u32) -> Option<Layout> {
        match n {
            1 => Some(Layout::V1),
            2 => Some(Layout::V2),
            3 => Some(Layout::V3),
            4 => Some(Layout::V4),
            5 => Some(Layout::V5),
            _ => None,
        }
    }

    /// The layout a manifest's `layout` field names: absent is layout 1.
    ///
    /// # Errors
    /// A number this build does not know, as a message naming it.
    ///
    /// ```
    /// use tessera::tables::Layout;
    /// assert_eq!(Layout::of_manifest(None), Ok(Layout::V1));
    /// assert!(Layout::of_manifest(Some(9)).unwrap_err().contains("layout 9"));
    /// ```
    pub fn of_manifest(field: Option<u32>) -> Result<Layout, String> {
        let n = field.unwrap_or(1);
        Layout::from_number(n).ok_or_else(|| {
            format!(
                "layout {n} is not one this tessera writes (1..={}): published by a newer version",
                Layout::CURRENT.number()
            )
        })
    }

    /// The manifest's `layout` field for this layout (`None` for layout 1, whose manifests
    /// predate the field and keep their bytes).
    ///
    /// ```
    /// assert_eq!(tessera::tables::Layout::V1.manifest_field(), None);
    /// assert_eq!(tessera::tables::Layout::V2.manifest_field(), Some(2));
    /// ```
    pub fn manifest_field(self) -> Option<u32> {
        (self != Layout::V1).then(|| self.number())
    }

    /// The writer settings of a table with `schema` in this layout.
    ///
    /// ```
    /// use tessera::tables::{explain_schema, Layout};
    /// let p = Layout::V2.props(&explain_schema());
    /// assert!(!p.dictionary_enabled(&"cell".into()));
    /// assert!(Layout::V1.props(&explain_schema()).dictionary_enabled(&"cell".into()));
    /// // Layout 3: no statistics for the fixed-point columns, the others keep theirs.
    /// use parquet::file::properties::EnabledStatistics;
    /// let p = Layout::V3.props(&explain_schema());
    /// assert_eq!(p.statistics_enabled(&"points".into()), EnabledStatistics::None);
    /// assert_eq!(p.statistics_enabled(&"cell".into()), EnabledStatistics::Page);
    /// assert_eq!(Layout::V2.props(&explain_schema()).statistics_enabled(&"points".into()), EnabledStatistics::Page);
    /// // Layout 5: cell ids delta-encoded against the row before.
    /// use parquet::basic::Encoding;
    /// assert_eq!(Layout::V5.props(&explain_schema()).encoding(&"cell_id".into()), Some(Encoding::DELTA_BYTE_ARRAY));
    /// assert_eq!(Layout::V4.props(&explain_schema()).encoding(&"cell_id".into()), Some(Encoding::PLAIN));
    /// ```
    pub fn props(self, schema: &SchemaRef) -> WriterProperties {
        if self == Layout::V1 {
            return props();
        }
        let mut b = props().into_builder();
        for name in HIGH_CARDINALITY_COLUMNS {
            let Some((_, field)) = schema.column_with_name(name) else {
                continue;
            };
            let encoding = match (name, field.data_type()) {
                ("cell", DataType::UInt64 | DataType::Int64) => Encoding::DELTA_BINARY_PACKED,
                _ => Encoding::PLAIN,
            };
            let path = ColumnPath::from(name);
            b = b
                .set_column_dictionary_enabled(path.clone(), false)
                .set_column_encoding(path, encoding);
        }
        if matches!(self, Layout::V3 | Layout::V4 | Layout::V5) {
            for field in schema.fields() {
                if matches!(field.data_type(), DataType::Decimal128(..)) {
                    b = b.set_column_statistics_enabled(
                        ColumnPath::from(field.name().as_str()),
                        EnabledStatistics::None,
                    );
                }
            }
        }
        if self == Layout::V5 {
            for (name, encoding) in DELTA_COLUMNS {
                if schema.column_with_name(name).is_some() {
                    b = b.set_column_encoding(ColumnPath::from(name), encoding);
                }
            }
        }
        b.build()
    }

    /// The schema a table of `schema` is written with in this layout: from [`Layout::V4`] on,
    /// its `Decimal128(38, 6)` columns (explain's multipliers and points) as
    /// `Decimal128(`[`NARROW_PRECISION`]`, 6)`; earlier layouts, and every other column, as
    /// `schema` says. The writer ([`super::ColumnParallelWriter`]) checks each value against the
    /// narrower precision.
    ///
    /// ```
    /// use arrow_schema::DataType;
    /// use tessera::tables::{explain_schema, Layout};
    /// let s = explain_schema();
    /// let f = Layout::V4.file_schema(&s);
    /// assert_eq!(f.field_with_name("points").unwrap().data_type(), &DataType::Decimal128(18, 6));
    /// assert_eq!(f.field_with_name("cell").unwrap().data_type(), &DataType::UInt64);
    /// assert_eq!(Layout::V3.file_schema(&s), s);
    /// assert_eq!(Layout::V5.file_schema(&s), f);
    /// ```
    pub fn file_schema(self, schema: &SchemaRef) -> SchemaRef {
        if !matches!(self, Layout::V4 | Layout::V5) {
            return schema.clone();
        }
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Decimal128(38, 6) => Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(DataType::Decimal128(NARROW_PRECISION, 6)),
                ),
                _ => f.clone(),
            })
            .collect();
        Arc::new(arrow_schema::Schema::new_with_metadata(
            fields,
            schema.metadata().clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::novelty::freshness::CellState;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// Coverage rows of `n` sorted cells in `layout`: (column, encodings, has a dictionary page).
    fn coverage_columns(layout: Layout, n: u64) -> Vec<(String, Vec<Encoding>, bool)> {
        let s = CellState {
            first_epoch: 1,
            last_epoch: 1,
            times_covered: 1,
        };
        let rows: Vec<(u64, CellState)> = (0..n).map(|i| (0x8a1f_0000_0000_0000 + i * 64, s)).collect();
        let schema = super::super::coverage_schema();
        let mut sink = super::super::BatchSink::with_props(
            Vec::new(),
            &schema,
            layout.props(&schema),
            super::super::coverage_batch,
        )
        .unwrap();
        sink.extend(rows.iter().copied()).unwrap();
        let bytes = bytes::Bytes::from(sink.finish().unwrap());
        let back = super::super::from_parquet(bytes.clone()).unwrap();
        assert_eq!(super::super::coverage_rows(&back[0]).unwrap(), rows, "{layout:?} rows");
        let r = SerializedFileReader::new(bytes).unwrap();
        let rg = r.metadata().row_group(0);
        rg.columns()
            .iter()
            .map(|c| {
                (
                    c.column_path().string(),
                    c.encodings().collect(),
                    c.dictionary_page_offset().is_some(),
                )
            })
            .collect()
    }

    #[test]
    fn rule_layout_2_writes_cells_and_their_ids_without_a_dictionary_and_cells_delta_packed() {
        let cols = coverage_columns(Layout::V2, 5000);
        let col = |n: &str| cols.iter().find(|c| c.0 == n).unwrap().clone();
        let (_, enc, dict) = col("cell");
        assert!(!dict && enc.contains(&Encoding::DELTA_BINARY_PACKED), "{enc:?}");
        let (_, enc, dict) = col("cell_id");
        assert!(!dict && !enc.contains(&Encoding::RLE_DICTIONARY), "{enc:?}");
        // Repeating columns keep their dictionary.
        assert!(col("times_covered").2);
    }

    #[test]
    fn rule_layout_5_writes_cell_ids_delta_byte_array_and_keeps_layout_2s_other_encodings() {
        let (v4, v5) = (coverage_columns(Layout::V4, 5000), coverage_columns(Layout::V5, 5000));
        let col = |cols: &[(String, Vec<Encoding>, bool)], n: &str| cols.iter().find(|c| c.0 == n).unwrap().clone();
        let (_, enc, dict) = col(&v5, "cell_id");
        assert!(!dict && enc.contains(&Encoding::DELTA_BYTE_ARRAY), "{enc:?}");
        assert!(!col(&v4, "cell_id").1.contains(&Encoding::DELTA_BYTE_ARRAY));
        for n in ["cell", "first_epoch", "last_epoch", "times_covered"] {
            assert_eq!(col(&v4, n), col(&v5, n), "{n}");
        }
    }

    #[test]
    fn rule_layout_5_delta_packs_rejections_times_and_lines_only() {
        let schema = super::super::rejections_schema();
        let (v4, v5) = (Layout::V4.props(&schema), Layout::V5.props(&schema));
        for n in ["time", "line"] {
            assert_eq!(v5.encoding(&n.into()), Some(Encoding::DELTA_BINARY_PACKED), "{n}");
            assert_eq!(v4.encoding(&n.into()), Some(Encoding::PLAIN), "{n}");
        }
        for n in ["lat", "lon", "source", "detail"] {
            assert_eq!(v5.encoding(&n.into()), v4.encoding(&n.into()), "{n}");
            assert_eq!(
                v5.dictionary_enabled(&n.into()),
                v4.dictionary_enabled(&n.into()),
                "{n}"
            );
        }
        // Explain's times jump from row to row (sorted by cell): PLAIN as before.
        let e = super::super::explain_schema();
        assert_eq!(
            Layout::V5.props(&e).encoding(&"first_time".into()),
            Some(Encoding::PLAIN)
        );
    }

    #[test]
    fn rule_layout_1_keeps_a_dictionary_on_every_column_as_published_before() {
        let cols = coverage_columns(Layout::V1, 5000);
        assert!(cols.iter().all(|c| c.2), "{cols:?}");
    }

    #[test]
    fn rule_an_unknown_layout_is_refused_by_number() {
        assert_eq!(Layout::of_manifest(Some(2)), Ok(Layout::V2));
        assert_eq!(Layout::of_manifest(Some(3)), Ok(Layout::V3));
        assert_eq!(Layout::of_manifest(Some(4)), Ok(Layout::V4));
        assert_eq!(Layout::of_manifest(Some(5)), Ok(Layout::V5));
        let e = Layout::of_manifest(Some(6)).unwrap_err();
        assert!(e.contains("layout 6") && e.contains("newer"), "{e}");
    }

    #[test]
    fn rule_narrow_precision_holds_the_largest_points_a_valid_policy_gives_one_visit() {
        use crate::cells::Visit;
        use crate::novelty::{score, VisitRow};
        // Every weight at the most `Policy::kernels` accepts (1000); one more is refused.
        let mut p = crate::policy::Policy::default();
        p.novelty.rank_weights = vec![1000.0];
        p.novelty.discovery_weight = 1000.0;
        p.novelty.outside_region_weight = 1000.0;
        let k = p.kernels().unwrap();
        for bump in [
            |p: &mut crate::policy::Policy| p.novelty.rank_weights[0] = 1000.001,
            |p: &mut crate::policy::Policy| p.novelty.discovery_weight = 1000.001,
            |p: &mut crate::policy::Policy| p.novelty.outside_region_weight = 1000.001,
        ] {
            let mut q = p.clone();
            bump(&mut q);
            assert!(q.kernels().is_err());
        }
        let v = VisitRow {
            cell: 0x8a1f_0000_0000_0000,
            device: 0,
            visit: Visit {
                first_ms: 0,
                last_ms: 0,
                fixes: 1,
                best_hdop_centi: 50,
            },
        };
        let places = crate::places::Places::default();
        let s = score(&[v], &["a".into()], &|_| None, 0, &k, &places, None);
        // The largest region weight is 1000 too (`regions.weight`); trust and quality are ≤ 1.
        assert_eq!(s[0].points, 1_000_000_000 * crate::fixed::SCALE, "10^9 points");
        assert!(s[0].points < 10u64.pow(u32::from(NARROW_PRECISION)));
        let b = super::super::explain_batch(&s, &["a".into()], &["w".into()], &[]);
        let schema = super::super::explain_schema();
        let file = Layout::V4.file_schema(&schema);
        let mut w = super::super::ColumnParallelWriter::try_new(Vec::new(), &file, Layout::V4.props(&file)).unwrap();
        w.write(std::slice::from_ref(&b)).unwrap();
        let back = super::super::from_parquet(w.into_inner().unwrap().into()).unwrap();
        assert_eq!(super::super::conform(&back[0], &schema).unwrap(), b);
    }
}

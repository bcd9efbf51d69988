//! How an epoch's streamed Parquet outputs (`explain`, `coverage`, `rejections`) are encoded.
//!
//! The encoding is part of the published bytes, so it is versioned: the manifest records the
//! layout an epoch was written in (`layout`, absent for layout 1), `epoch verify` recomputes in
//! that layout and every re-run of a published epoch keeps it (`--replace` included: the next
//! epoch's manifest holds the hash of its `coverage.parquet`). New epochs get
//! [`Layout::CURRENT`]. A layout is frozen once released: the shared writer settings
//! (`props()`: compression, row-group size, `created_by`), [`HIGH_CARDINALITY_COLUMNS`] and
//! which columns keep statistics are part of it, so a change to any is a new layout, not an edit.

use super::props;
use arrow_schema::{DataType, SchemaRef};
use parquet::basic::Encoding;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

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
}

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
    pub const CURRENT: Layout = Layout::V3;

    /// The number the manifest records (`1`, `2`, `3`).
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
        }
    }

    /// The layout numbered `n` (`None`: a layout this build does not know, i.e. written by a
    /// newer tessera).
    ///
    /// ```
    /// assert_eq!(tessera::tables::Layout::from_number(1), Some(tessera::tables::Layout::V1));
    /// assert_eq!(tessera::tables::Layout::from_number(4), None);
    /// ```
    pub fn from_number(n: u32) -> Option<Layout> {
        match n {
            1 => Some(Layout::V1),
            2 => Some(Layout::V2),
            3 => Some(Layout::V3),
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
        if self == Layout::V3 {
            for field in schema.fields() {
                if matches!(field.data_type(), DataType::Decimal128(..)) {
                    b = b.set_column_statistics_enabled(
                        ColumnPath::from(field.name().as_str()),
                        EnabledStatistics::None,
                    );
                }
            }
        }
        b.build()
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
    fn rule_layout_1_keeps_a_dictionary_on_every_column_as_published_before() {
        let cols = coverage_columns(Layout::V1, 5000);
        assert!(cols.iter().all(|c| c.2), "{cols:?}");
    }

    #[test]
    fn rule_an_unknown_layout_is_refused_by_number() {
        assert_eq!(Layout::of_manifest(Some(2)), Ok(Layout::V2));
        assert_eq!(Layout::of_manifest(Some(3)), Ok(Layout::V3));
        let e = Layout::of_manifest(Some(4)).unwrap_err();
        assert!(e.contains("layout 4") && e.contains("newer"), "{e}");
    }
}

//! `epochs/E/places.parquet` (the regions, road cells and bounty areas an epoch was scored with,
//! so `epoch verify` needs neither the sources nor GDAL) and `epochs/E/regions.parquet` (per
//! region statistics).

use super::{column, decimal_builder, ppm_type};
use crate::places::{BountyArea, Places, Region};
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, Decimal128Array, DictionaryArray, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;
use std::sync::Arc;

/// Schema of `places.parquet`: one row per (kind, name, cell). `kind` is `region` (name: the
/// region, `weight`: its multiplier), `road` (name null, `road_mm`: road length in the cell, 0
/// for buffer cells) or `bounty` (name: the bounty id).
///
/// ```
/// assert_eq!(tessera::tables::places_schema().fields().len(), 6);
/// ```
pub fn places_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("weight", ppm_type(), true),
        Field::new("road_mm", DataType::UInt64, true),
    ]))
}

/// `places.parquet` of `p`: the bytes an epoch writes (one definition, used by the epoch and by
/// the places cache, whose files are these bytes).
///
/// # Errors
/// The Parquet writer's error.
///
/// ```
/// use tessera::places::Places;
/// let p = Places { roads: Some(vec![(0x8c1f18a24004bff, 1200)]), ..Places::default() };
/// let b = tessera::tables::places_parquet(&p).unwrap();
/// let back = tessera::tables::from_parquet(b.into()).unwrap();
/// assert_eq!(tessera::tables::places_from_batches(&back, true, &[]).unwrap(), p);
/// ```
pub fn places_parquet(p: &Places) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    super::to_parquet(&places_schema(), &[places_batch(p)])
}

/// [`Places`] → one batch (regions by name then cell, roads by cell, bounties in policy order).
///
/// ```
/// let b = tessera::tables::places_batch(&tessera::places::Places::default());
/// assert_eq!(b.num_rows(), 0);
/// ```
pub fn places_batch(p: &Places) -> RecordBatch {
    let (mut kind, mut name, mut cell, mut id) = (
        StringBuilder::new(),
        StringBuilder::new(),
        UInt64Builder::new(),
        StringBuilder::new(),
    );
    let mut weight = decimal_builder(0, &ppm_type());
    let mut road = UInt64Builder::new();
    let mut regions: Vec<(u32, u64)> = p.region_cells.iter().map(|(c, r)| (*r, *c)).collect();
    regions.sort_unstable();
    let mut push = |k: &str, n: Option<&str>, c: u64, w: Option<u64>, mm: Option<u64>| {
        kind.append_value(k);
        name.append_option(n);
        cell.append_value(c);
        id.append_value(super::cell_hex(c, &mut [0u8; 16]));
        weight.append_option(w.map(i128::from));
        road.append_option(mm);
    };
    for (r, c) in regions {
        let reg = &p.regions[r as usize];
        push("region", Some(&reg.name), c, Some(reg.weight), None);
    }
    for (c, mm) in p.roads.iter().flatten() {
        push("road", None, *c, None, Some(*mm));
    }
    for b in &p.bounties {
        for c in &b.cells {
            push("bounty", Some(&b.id), *c, None, None);
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(kind.finish()),
        Arc::new(name.finish()),
        Arc::new(cell.finish()),
        Arc::new(id.finish()),
        Arc::new(weight.finish()),
        Arc::new(road.finish()),
    ];
    RecordBatch::try_new(places_schema(), cols).expect("schema matches")
}

/// A text column of `places.parquet` as the reader gave it: plain strings, or a dictionary
/// (what the places cache asks the Parquet reader for: the file's dictionary pages kept, no
/// string copied per row).
enum Text<'a> {
    Plain(&'a StringArray),
    Dict(&'a DictionaryArray<Int32Type>, &'a StringArray),
}

impl<'a> Text<'a> {
    fn of(b: &'a RecordBatch, name: &str) -> Result<Self, String> {
        if let Ok(d) = column::<DictionaryArray<Int32Type>>(b, name) {
            let values = d.values().as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                format!(
                    "column {name:?}: a dictionary of {}, not of strings",
                    d.values().data_type()
                )
            })?;
            return Ok(Text::Dict(d, values));
        }
        column::<StringArray>(b, name).map(Text::Plain)
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Text::Plain(a) => (!a.is_null(i)).then(|| a.value(i)),
            Text::Dict(d, v) => d.key(i).filter(|&k| k < v.len() && v.is_valid(k)).map(|k| v.value(k)),
        }
    }

    /// Whether rows `i` and `j` hold the same text (or are both null).
    fn same(&self, i: usize, j: usize) -> bool {
        match self {
            Text::Plain(_) => self.get(i) == self.get(j),
            Text::Dict(d, _) => d.key(i) == d.key(j) || self.get(i) == self.get(j),
        }
    }
}

/// Rows `rows` of a batch: one kind and one name (regions grouped by name, then roads, then
/// bounties, as [`places_batch`] writes them), and for a region the weight of its last row.
struct Run<'a> {
    rows: std::ops::Range<usize>,
    kind: &'a str,
    name: Option<&'a str>,
    weight: Option<u64>,
}

/// The runs of one batch, in row order.
fn runs_of(b: &RecordBatch) -> Result<Vec<Run<'_>>, String> {
    let (kind, name) = (Text::of(b, "kind")?, Text::of(b, "name")?);
    let weight = column::<Decimal128Array>(b, "weight")?;
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.num_rows() {
        let mut j = i + 1;
        while j < b.num_rows() && kind.same(i, j) && name.same(i, j) {
            j += 1;
        }
        let k = kind.get(i).ok_or("a row without a kind")?;
        let mut w = None;
        if k == "region" {
            for r in i..j {
                w = Some(u64::try_from(weight.value(r)).map_err(|_| "negative region weight")?);
            }
        }
        runs.push(Run {
            rows: i..j,
            kind: k,
            name: name.get(i),
            weight: w,
        });
        i = j;
    }
    Ok(runs)
}

/// `places.parquet` batches → [`Places`]. `roads` says whether a road network was configured
/// (an empty one has no rows); `bounty_ids` lists the policy's bounties in order.
///
/// # Errors
/// A message naming the column or the unknown kind.
///
/// ```
/// let b = tessera::tables::places_batch(&tessera::places::Places::default());
/// assert!(tessera::tables::places_from_batches(&[b], false, &[]).unwrap().is_empty());
/// ```
pub fn places_from_batches(batches: &[RecordBatch], roads: bool, bounty_ids: &[String]) -> Result<Places, String> {
    // Region names in order of first appearance, with their weight (the last row's, as rows of
    // one region carry one weight); rows are grouped by region, so a name is looked up rarely.
    let mut names: Vec<(String, u64)> = Vec::new();
    let mut region_rows: Vec<(u64, u32)> = Vec::new();
    let mut road_rows: Vec<(u64, u64)> = Vec::new();
    let mut bounties: Vec<BountyArea> = bounty_ids
        .iter()
        .map(|id| BountyArea {
            id: id.clone(),
            cells: Vec::new(),
        })
        .collect();
    // The runs of each batch found in parallel (the per-row work), then taken in file order.
    let runs: Vec<Result<Vec<Run>, String>> = batches.par_iter().map(runs_of).collect();
    let runs: Vec<Vec<Run>> = runs.into_iter().collect::<Result<_, _>>()?;
    let rows = |k: &str| {
        runs.iter()
            .flatten()
            .filter(|r| r.kind == k)
            .map(|r| r.rows.len())
            .sum::<usize>()
    };
    region_rows.reserve_exact(rows("region"));
    road_rows.reserve_exact(rows("road"));
    for (b, run) in batches.iter().zip(&runs) {
        let cells = column::<UInt64Array>(b, "cell")?.values();
        let road = column::<UInt64Array>(b, "road_mm")?.values();
        for Run {
            rows,
            kind,
            name,
            weight,
        } in run
        {
            let (i, j) = (rows.start, rows.end);
            let n = || name.ok_or("region or bounty row without a name");
            match *kind {
                "region" => {
                    let (nm, w) = (n()?, weight.unwrap_or(0));
                    let idx = names.iter().position(|(x, _)| x == nm).unwrap_or_else(|| {
                        names.push((nm.to_string(), w));
                        names.len() - 1
                    });
                    names[idx].1 = w;
                    region_rows.extend(cells[i..j].iter().map(|&c| (c, idx as u32)));
                }
                "road" => road_rows.extend(cells[i..j].iter().copied().zip(road[i..j].iter().copied())),
                "bounty" => {
                    let id = n()?;
                    let slot = bounties
                        .iter_mut()
                        .find(|x| x.id == id)
                        .ok_or(format!("bounty {id:?} is not in the policy"))?;
                    slot.cells.extend_from_slice(&cells[i..j]);
                }
                other => return Err(format!("places.parquet: unknown kind {other:?}")),
            }
        }
    }
    // Regions sorted by name; rows re-pointed from first-appearance order.
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|a, b| names[*a].0.cmp(&names[*b].0));
    let mut sorted_at = vec![0u32; names.len()];
    for (pos, &i) in order.iter().enumerate() {
        sorted_at[i] = pos as u32;
    }
    let regions: Vec<Region> = order
        .iter()
        .map(|&i| Region {
            name: names[i].0.clone(),
            weight: names[i].1,
        })
        .collect();
    let mut region_cells: Vec<(u64, u32)> = region_rows
        .into_iter()
        .map(|(c, i)| (c, sorted_at[i as usize]))
        .collect();
    // Stable sorts (the same order: equal rows are equal), as they merge runs already in order:
    // tessera writes roads and bounty cells sorted and each region's cells sorted (6 M rows at
    // 10^7 fixes' places, sorted in O(n log regions) instead of O(n log n)).
    region_cells.sort();
    road_rows.sort();
    for b in &mut bounties {
        b.cells.sort();
    }
    Ok(Places {
        regions,
        region_cells,
        roads: roads.then_some(road_rows),
        bounties,
        sources: Vec::new(),
    })
}

/// `places.parquet` bytes → [`Places`], as [`places_from_batches`] over the file's batches
/// decoded column-parallel: each row group's columns but `cell_id` (the hex text of `cell`)
/// decoded in groups on all cores, `kind` and `name` kept as the dictionaries they are stored as.
/// `roads` and `bounty_ids` as for [`places_from_batches`]. A file whose schema is not exactly
/// [`places_schema`] (written by another tool: columns added, reordered or of another
/// nullability) is read whole instead, as [`super::from_parquet`] reads it.
///
/// # Errors
/// The Parquet reader's message, or [`places_from_batches`]'s.
///
/// ```
/// use tessera::places::Places;
/// let p = Places { region_cells: vec![], roads: Some(vec![(7, 900)]), ..Places::default() };
/// let bytes = bytes::Bytes::from(tessera::tables::places_parquet(&p).unwrap());
/// assert_eq!(tessera::tables::places_from_parquet(&bytes, true, &[]).unwrap(), p);
/// ```
pub fn places_from_parquet(bytes: &bytes::Bytes, roads: bool, bounty_ids: &[String]) -> Result<Places, String> {
    match decode_batches(bytes) {
        Ok(batches) => places_from_batches(&batches, roads, bounty_ids),
        Err(_) => {
            let batches = super::from_parquet(bytes.clone()).map_err(|e| e.to_string())?;
            places_from_batches(&batches, roads, bounty_ids)
        }
    }
}

/// The columns of `places.parquet` the places need, in groups decoded apart: every column but
/// `cell_id` (the hex text of `cell`: 6 M strings at 10^7 fixes' places).
const COLUMN_GROUPS: [&[&str]; 4] = [&["kind", "name"], &["cell"], &["weight"], &["road_mm"]];

/// `places.parquet` bytes → its batches (every column but `cell_id`), in file order: each row
/// group's column groups decoded in parallel (a 10^6-fix lake's places are one row group), then
/// put side by side (the same batch size gives the same batch boundaries in every column).
fn decode_batches(bytes: &bytes::Bytes) -> Result<Vec<RecordBatch>, String> {
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
    // The footer parsed once, shared by every task.
    let meta = ArrowReaderMetadata::load(bytes, dictionary_text()).map_err(|e| e.to_string())?;
    let groups = meta.metadata().num_row_groups();
    let n = COLUMN_GROUPS.len();
    let parts: Vec<Vec<RecordBatch>> = (0..groups * n)
        .into_par_iter()
        .map(|t| {
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes.clone(), meta.clone());
            let mask =
                parquet::arrow::ProjectionMask::columns(builder.parquet_schema(), COLUMN_GROUPS[t % n].iter().copied());
            builder
                .with_row_groups(vec![t / n])
                .with_projection(mask)
                .with_batch_size(1 << 16)
                .build()
                .map_err(|e| e.to_string())?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let mut batches = Vec::new();
    for group in parts.chunks(n) {
        if group.iter().any(|part| part.len() != group[0].len()) {
            return Err("column groups with different batch counts".into());
        }
        for i in 0..group[0].len() {
            let (mut fields, mut columns) = (Vec::new(), Vec::new());
            for part in group {
                let b = &part[i];
                fields.extend(b.schema().fields().iter().cloned());
                columns.extend(b.columns().iter().cloned());
            }
            let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
            batches.push(RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?);
        }
    }
    Ok(batches)
}

/// Reader options reading `kind` and `name` as dictionaries (as they are stored): one small
/// dictionary per row group instead of 6 M strings copied at 10^7 fixes' places.
fn dictionary_text() -> parquet::arrow::arrow_reader::ArrowReaderOptions {
    use arrow_schema::{DataType, Field, Schema};
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let fields: Vec<Field> = places_schema()
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "kind" | "name" => f.as_ref().clone().with_data_type(dict.clone()),
            _ => f.as_ref().clone(),
        })
        .collect();
    parquet::arrow::arrow_reader::ArrowReaderOptions::new().with_schema(std::sync::Arc::new(Schema::new(fields)))
}

/// Schema of `regions.parquet`: one row per region (and a last row, `region` null, for cells
/// outside every region): its multiplier, cells covered, cells never covered before, road
/// length covered and fresh (mm), contributors (devices with points) and points.
///
/// ```
/// assert!(tessera::tables::regions_schema().field_with_name("fresh_road_mm").is_ok());
/// ```
pub fn regions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, true),
        Field::new("weight", ppm_type(), false),
        Field::new("cells", DataType::UInt64, false),
        Field::new("fresh_cells", DataType::UInt64, false),
        Field::new("road_mm", DataType::UInt64, false),
        Field::new("fresh_road_mm", DataType::UInt64, false),
        Field::new("contributors", DataType::UInt64, false),
        Field::new("points", ppm_type(), false),
    ]))
}

/// One region's row of `regions.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRow {
    /// Region name (`None`: outside every region).
    pub region: Option<String>,
    /// Multiplier, ppm.
    pub weight: u64,
    /// Cells covered.
    pub cells: u64,
    /// Cells covered for the first time.
    pub fresh_cells: u64,
    /// Road length in covered cells, mm.
    pub road_mm: u64,
    /// Road length in fresh cells, mm.
    pub fresh_road_mm: u64,
    /// Devices with points.
    pub contributors: u64,
    /// Points, millionths.
    pub points: u128,
}

/// Rows → one `regions.parquet` batch.
///
/// ```
/// assert_eq!(tessera::tables::regions_batch(&[]).num_rows(), 0);
/// ```
pub fn regions_batch(rows: &[RegionRow]) -> RecordBatch {
    let mut region = StringBuilder::new();
    let mut weight = decimal_builder(rows.len(), &ppm_type());
    let mut points = decimal_builder(rows.len(), &ppm_type());
    let mut u = [(); 5].map(|_| UInt64Builder::with_capacity(rows.len()));
    for r in rows {
        region.append_option(r.region.as_deref());
        weight.append_value(i128::from(r.weight));
        points.append_value(i128::try_from(r.points).unwrap_or(i128::MAX));
        for (b, v) in u
            .iter_mut()
            .zip([r.cells, r.fresh_cells, r.road_mm, r.fresh_road_mm, r.contributors])
        {
            b.append_value(v);
        }
    }
    let [mut cells, mut fresh, mut road, mut fresh_road, mut contributors] = u;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(region.finish()),
        Arc::new(weight.finish()),
        Arc::new(cells.finish()),
        Arc::new(fresh.finish()),
        Arc::new(road.finish()),
        Arc::new(fresh_road.finish()),
        Arc::new(contributors.finish()),
        Arc::new(points.finish()),
    ];
    RecordBatch::try_new(regions_schema(), cols).expect("schema matches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_round_trip_through_their_batch_whatever_the_row_order() {
        let p = Places {
            regions: vec![
                Region {
                    name: "a".into(),
                    weight: 1_500_000,
                },
                Region {
                    name: "b".into(),
                    weight: 0,
                },
                Region {
                    name: "c".into(),
                    weight: 2_000_000,
                },
            ],
            region_cells: vec![(1, 2), (2, 0), (3, 1), (4, 2), (5, 0)],
            roads: Some(vec![(2, 900), (7, 0)]),
            bounties: vec![BountyArea {
                id: "x".into(),
                cells: vec![3, 9],
            }],
            sources: Vec::new(),
        };
        let b = places_batch(&p);
        assert_eq!(
            places_from_batches(std::slice::from_ref(&b), true, &["x".into()]).unwrap(),
            p
        );
        // Rows in reverse order, one batch each: the same places.
        let rev: Vec<RecordBatch> = (0..b.num_rows()).rev().map(|i| b.slice(i, 1)).collect();
        assert_eq!(places_from_batches(&rev, true, &["x".into()]).unwrap(), p);
        // `kind` and `name` as dictionaries (as the places cache reads them), rows reversed: the
        // same places.
        let dict = |b: &RecordBatch| {
            let mut cols = b.columns().to_vec();
            let mut fields: Vec<Field> = b.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
            for name in ["kind", "name"] {
                let i = b.schema().index_of(name).unwrap();
                let text = cols[i].as_any().downcast_ref::<StringArray>().unwrap();
                let d: DictionaryArray<Int32Type> = text.iter().collect();
                fields[i] = fields[i].clone().with_data_type(d.data_type().clone());
                cols[i] = Arc::new(d);
            }
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
        };
        assert_eq!(places_from_batches(&[dict(&b)], true, &["x".into()]).unwrap(), p);
        let rev: Vec<RecordBatch> = rev.iter().map(dict).collect();
        assert_eq!(places_from_batches(&rev, true, &["x".into()]).unwrap(), p);
        assert!(places_from_batches(std::slice::from_ref(&b), true, &[])
            .unwrap_err()
            .contains("bounty \"x\""));
        // A row of another kind, a negative weight, a region without a name: errors naming them.
        let edit = |kind: &str, name: Option<&str>, weight: i128| {
            let mut cols = b.columns().to_vec();
            cols[0] = Arc::new(StringArray::from(vec![kind]));
            cols[1] = Arc::new(StringArray::from(vec![name]));
            cols[2] = Arc::new(UInt64Array::from(vec![9u64]));
            cols[3] = Arc::new(StringArray::from(vec!["9"]));
            cols[4] = Arc::new(Decimal128Array::from(vec![weight]).with_data_type(ppm_type()));
            cols[5] = Arc::new(UInt64Array::from(vec![None::<u64>]));
            places_from_batches(&[RecordBatch::try_new(places_schema(), cols).unwrap()], true, &[]).unwrap_err()
        };
        assert!(edit("lake", Some("a"), 1).contains("unknown kind \"lake\""));
        assert!(edit("region", Some("a"), -1).contains("negative region weight"));
        assert!(edit("region", None, 1).contains("without a name"));
    }

    #[test]
    fn decoded_column_groups_give_the_places_over_many_batches() {
        use crate::places::Region;
        let regions = [("a", 1_500_000), ("b", 0)].map(|(name, weight)| Region {
            name: name.into(),
            weight,
        });
        let p = Places {
            regions: regions.to_vec(),
            region_cells: (0..150_000u64).map(|c| (c * 3, (c % 2) as u32)).collect(),
            roads: Some((0..100_000u64).map(|c| (c * 5, c % 7)).collect()),
            ..Places::default()
        };
        let bytes = bytes::Bytes::from(places_parquet(&p).unwrap());
        let batches = decode_batches(&bytes).unwrap();
        assert!(batches.len() > 3, "{} batches", batches.len());
        assert_eq!(places_from_batches(&batches, true, &[]).unwrap(), p);
        assert_eq!(places_from_parquet(&bytes, true, &[]).unwrap(), p);
    }

    #[test]
    fn rule_a_places_file_rewritten_by_another_tool_still_reads() {
        // The same rows with the columns reversed, `cell_id` dropped and a column added (what a
        // rewrite by pyarrow or Spark can give): not the schema the column-parallel reader
        // expects, read whole instead.
        let p = Places {
            regions: vec![Region {
                name: "a".into(),
                weight: 1_500_000,
            }],
            region_cells: (0..1000u64).map(|c| (c * 3, 0)).collect(),
            roads: Some((0..500u64).map(|c| (c * 5, c % 7)).collect()),
            ..Places::default()
        };
        let b = places_batch(&p);
        let mut cols: Vec<(String, ArrayRef)> = b
            .schema()
            .fields()
            .iter()
            .zip(b.columns())
            .filter(|(f, _)| f.name() != "cell_id")
            .map(|(f, c)| (f.name().clone(), c.clone()))
            .rev()
            .collect();
        cols.push(("note".into(), Arc::new(StringArray::from(vec!["x"; b.num_rows()]))));
        let other = RecordBatch::try_from_iter(cols).unwrap();
        let bytes = bytes::Bytes::from(super::super::to_parquet(&other.schema(), &[other]).unwrap());
        assert!(decode_batches(&bytes).is_err());
        assert_eq!(places_from_parquet(&bytes, true, &[]).unwrap(), p);
    }
}

//! `epochs/E/places.parquet` (the regions, road cells and bounty areas an epoch was scored with,
//! so `epoch verify` needs neither the sources nor GDAL) and `epochs/E/regions.parquet` (per
//! region statistics).

use super::{column, decimal_builder, ppm_type};
use crate::places::{BountyArea, Places, Region};
use arrow_array::builder::{StringBuilder, UInt64Builder};
use arrow_array::{Array, ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
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
    for b in batches {
        let kind = column::<StringArray>(b, "kind")?;
        let name = column::<StringArray>(b, "name")?;
        let cell = column::<UInt64Array>(b, "cell")?;
        let weight = column::<Decimal128Array>(b, "weight")?;
        let road = column::<UInt64Array>(b, "road_mm")?;
        for i in 0..b.num_rows() {
            let n = || {
                (!name.is_null(i))
                    .then(|| name.value(i))
                    .ok_or("region or bounty row without a name")
            };
            match kind.value(i) {
                "region" => {
                    let (nm, w) = (
                        n()?,
                        u64::try_from(weight.value(i)).map_err(|_| "negative region weight")?,
                    );
                    let idx = match names.last() {
                        Some((last, _)) if last == nm => names.len() - 1,
                        _ => names.iter().position(|(x, _)| x == nm).unwrap_or_else(|| {
                            names.push((nm.to_string(), w));
                            names.len() - 1
                        }),
                    };
                    names[idx].1 = w;
                    region_rows.push((cell.value(i), idx as u32));
                }
                "road" => road_rows.push((cell.value(i), road.value(i))),
                "bounty" => {
                    let id = n()?;
                    let slot = bounties
                        .iter_mut()
                        .find(|x| x.id == id)
                        .ok_or(format!("bounty {id:?} is not in the policy"))?;
                    slot.cells.push(cell.value(i));
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
    region_cells.sort_unstable();
    road_rows.sort_unstable();
    for b in &mut bounties {
        b.cells.sort_unstable();
    }
    Ok(Places {
        regions,
        region_cells,
        roads: roads.then_some(road_rows),
        bounties,
        sources: Vec::new(),
    })
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
        assert!(places_from_batches(&[b], true, &[])
            .unwrap_err()
            .contains("bounty \"x\""));
    }
}

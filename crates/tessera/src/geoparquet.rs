//! GeoParquet 1.1 export of an epoch's cells: every cell of the coverage state after the epoch,
//! with that epoch's visits and points, as WKB polygons with a `bbox` covering column and the
//! `geo` file metadata — a layer GeoPandas, DuckDB spatial, GDAL/QGIS open directly.

use crate::epoch::Epoch;
use crate::lake::{Error, Lake, Result};
use crate::tables;
use arrow_array::builder::{BinaryBuilder, Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, Decimal128Array, RecordBatch, StringArray, StructArray, UInt32Array, UInt64Array};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::sync::Arc;

/// WKB (little endian) of a cell's outline, lng/lat, closed rings: a Polygon, or a MultiPolygon
/// of its two halves when it crosses the antimeridian ([`crate::cells::boundary_parts`]; GeoParquet
/// 1.1 geometry types `Polygon`, `MultiPolygon`); and its bbox `[xmin, ymin, xmax, ymax]` (for a
/// split cell, over both halves: −180..180 in longitude, a box that covers it).
///
/// ```
/// let c = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
/// let (wkb, bbox) = tessera::geoparquet::cell_wkb(c);
/// assert_eq!(wkb[0], 1); // little endian
/// assert_eq!(u32::from_le_bytes(wkb[1..5].try_into().unwrap()), 3); // Polygon
/// assert!(bbox[0] < 13.405 && 13.405 < bbox[2]);
/// ```
pub fn cell_wkb(c: h3o::CellIndex) -> (Vec<u8>, [f64; 4]) {
    let parts = crate::cells::boundary_parts(c);
    let polygon = |w: &mut Vec<u8>, ring: &[(f64, f64)], bbox: &mut [f64; 4]| {
        w.push(1u8);
        w.extend_from_slice(&3u32.to_le_bytes());
        w.extend_from_slice(&1u32.to_le_bytes());
        w.extend_from_slice(&(ring.len() as u32).to_le_bytes());
        for (x, y) in ring {
            w.extend_from_slice(&x.to_le_bytes());
            w.extend_from_slice(&y.to_le_bytes());
            *bbox = [bbox[0].min(*x), bbox[1].min(*y), bbox[2].max(*x), bbox[3].max(*y)];
        }
    };
    let mut w = Vec::with_capacity(22 + 16 * 8 * parts.len());
    let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    if let [ring] = &parts[..] {
        polygon(&mut w, ring, &mut bbox);
    } else {
        w.push(1u8);
        w.extend_from_slice(&6u32.to_le_bytes());
        w.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for ring in &parts {
            polygon(&mut w, ring, &mut bbox);
        }
    }
    (w, bbox)
}

pub(crate) fn bbox_fields() -> Fields {
    Fields::from(vec![
        Field::new("xmin", DataType::Float64, false),
        Field::new("ymin", DataType::Float64, false),
        Field::new("xmax", DataType::Float64, false),
        Field::new("ymax", DataType::Float64, false),
    ])
}

/// Schema of the exported layer.
///
/// ```
/// assert!(tessera::geoparquet::cells_schema().field_with_name("geometry").is_ok());
/// ```
pub fn cells_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("cell", DataType::UInt64, false),
        Field::new("cell_id", DataType::Utf8, false),
        Field::new("epoch", DataType::Utf8, false),
        Field::new("first_epoch", DataType::Utf8, false),
        Field::new("last_epoch", DataType::Utf8, false),
        Field::new("times_covered", DataType::UInt32, false),
        Field::new("age_epochs", DataType::UInt32, false),
        Field::new("visits", DataType::UInt32, false),
        Field::new("points", tables::ppm_type(), false),
        Field::new("bbox", DataType::Struct(bbox_fields()), false),
        Field::new("geometry", DataType::Binary, false),
    ]))
}

fn read(lake: &Lake, e: &Epoch, name: &str) -> Result<Vec<RecordBatch>> {
    let p = lake.epoch_dir(e).join(name);
    let bytes = std::fs::read(&p).map_err(|source| Error::Io {
        path: p.display().to_string(),
        source,
    })?;
    tables::from_parquet(bytes.into()).map_err(|x| Error::Data {
        path: p.display().to_string(),
        message: x.to_string(),
    })
}

fn col<'a, T: 'static>(b: &'a RecordBatch, n: &str) -> Result<&'a T> {
    crate::tables::column(b, n).map_err(Error::Invalid)
}

/// One cell of the coverage state after an epoch, with what that epoch did to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCell {
    /// H3 cell index.
    pub cell: h3o::CellIndex,
    /// First epoch that covered the cell.
    pub first_epoch: Epoch,
    /// Last epoch (up to and including this one) that covered the cell.
    pub last_epoch: Epoch,
    /// Number of epochs that covered the cell.
    pub times_covered: u32,
    /// Epochs since the cell was last covered (0 = covered in this epoch).
    pub age_epochs: u32,
    /// Visits (cell, device) in this epoch.
    pub visits: u32,
    /// Points earned in this cell in this epoch (ppm: 1_000_000 = one point).
    pub points: i128,
}

/// Every cell of the coverage state after epoch `e`, in cell order, with that epoch's visits and
/// points (from `epochs/E/coverage.parquet` and `explain.parquet`).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(dir.path()).unwrap();
/// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
/// let err = tessera::geoparquet::epoch_cells(&lake, &e).unwrap_err();
/// assert!(err.to_string().contains("2026-W47 has not been run"));
/// ```
///
/// # Errors
/// [`Error::Invalid`] when the epoch has not been run; I/O and data errors naming the file.
pub fn epoch_cells(lake: &Lake, e: &Epoch) -> Result<Vec<EpochCell>> {
    if !lake.epoch_dir(e).join("manifest.json").is_file() {
        return Err(Error::Invalid(format!(
            "epoch {e} has not been run in lake {} (tessera epoch run --lake {} --epoch {e})",
            lake.root().display(),
            lake.root().display()
        )));
    }
    let mut per: BTreeMap<u64, (u32, i128)> = BTreeMap::new();
    for b in read(lake, e, "explain.parquet")? {
        let cell = col::<UInt64Array>(&b, "cell")?;
        let pts = col::<Decimal128Array>(&b, "points")?;
        for i in 0..b.num_rows() {
            let v = per.entry(cell.value(i)).or_default();
            v.0 += 1;
            v.1 += pts.value(i);
        }
    }
    let mut out = Vec::new();
    for b in read(lake, e, "coverage.parquet")? {
        let cell = col::<UInt64Array>(&b, "cell")?;
        let first = col::<StringArray>(&b, "first_epoch")?;
        let last = col::<StringArray>(&b, "last_epoch")?;
        let times = col::<UInt32Array>(&b, "times_covered")?;
        for i in 0..b.num_rows() {
            let bad = |what: &str, x: String| Error::Data {
                path: lake.epoch_dir(e).join("coverage.parquet").display().to_string(),
                message: format!("row {i}: {what}: {x}"),
            };
            let c = h3o::CellIndex::try_from(cell.value(i)).map_err(|x| bad("cell", x.to_string()))?;
            let first_e: Epoch = first
                .value(i)
                .parse()
                .map_err(|x: crate::epoch::EpochParseError| bad("first_epoch", x.to_string()))?;
            let last_e: Epoch = last
                .value(i)
                .parse()
                .map_err(|x: crate::epoch::EpochParseError| bad("last_epoch", x.to_string()))?;
            let (visits, points) = per.get(&cell.value(i)).copied().unwrap_or((0, 0));
            out.push(EpochCell {
                cell: c,
                first_epoch: first_e,
                last_epoch: last_e,
                times_covered: times.value(i),
                age_epochs: (e.index() - last_e.index()).max(0) as u32,
                visits,
                points,
            });
        }
    }
    out.sort_by_key(|c| u64::from(c.cell));
    Ok(out)
}

/// The GeoParquet bytes of an epoch's cells.
///
/// # Errors
/// As [`epoch_cells`], and [`Error::Data`] when the Parquet encoding fails.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// # let lake = tessera::lake::Lake::open(d.path()).unwrap();
/// # let fleet = tessera::simulate::simulate(&tessera::simulate::SimConfig { drivers: 4, epochs: 1, trips: 1, minutes: 2, ..Default::default() });
/// # for f in &fleet.files { lake.ingest(&f.device, &f.name, &f.bytes).unwrap(); }
/// # let reg = tessera::registry::Registry::parse(fleet.registry_csv.as_bytes(), "r").unwrap();
/// let e: tessera::epoch::Epoch = "2026-W46".parse().unwrap();
/// tessera::pipeline::run(&lake, &tessera::pipeline::EpochInputs::new(e, 1000, reg), &tessera::pipeline::no_progress).unwrap();
/// let bytes = tessera::geoparquet::export_cells(&lake, &e).unwrap();
/// assert_eq!(&bytes[..4], b"PAR1");
/// ```
pub fn export_cells(lake: &Lake, e: &Epoch) -> Result<Vec<u8>> {
    let cells = epoch_cells(lake, e)?;
    let mut cell_b = UInt64Builder::new();
    let mut id_b = StringBuilder::new();
    let mut ep_b = StringBuilder::new();
    let mut first_b = StringBuilder::new();
    let mut last_b = StringBuilder::new();
    let mut times_b = UInt32Builder::new();
    let mut age_b = UInt32Builder::new();
    let mut visits_b = UInt32Builder::new();
    let mut pts_b = tables::decimal_builder(0, &tables::ppm_type());
    let (mut x0, mut y0, mut x1, mut y1) = (
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
        Float64Builder::new(),
    );
    let mut geom_b = BinaryBuilder::new();
    let mut total = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut multi = false;
    for c in &cells {
        let (wkb, bb) = cell_wkb(c.cell);
        multi |= u32::from_le_bytes([wkb[1], wkb[2], wkb[3], wkb[4]]) == 6;
        cell_b.append_value(u64::from(c.cell));
        id_b.append_value(c.cell.to_string());
        ep_b.append_value(e.to_string());
        first_b.append_value(c.first_epoch.to_string());
        last_b.append_value(c.last_epoch.to_string());
        times_b.append_value(c.times_covered);
        age_b.append_value(c.age_epochs);
        visits_b.append_value(c.visits);
        pts_b.append_value(c.points);
        x0.append_value(bb[0]);
        y0.append_value(bb[1]);
        x1.append_value(bb[2]);
        y1.append_value(bb[3]);
        geom_b.append_value(&wkb);
        total = [
            total[0].min(bb[0]),
            total[1].min(bb[1]),
            total[2].max(bb[2]),
            total[3].max(bb[3]),
        ];
    }
    let bbox: ArrayRef = Arc::new(StructArray::new(
        bbox_fields(),
        vec![
            Arc::new(x0.finish()),
            Arc::new(y0.finish()),
            Arc::new(x1.finish()),
            Arc::new(y1.finish()),
        ],
        None,
    ));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(cell_b.finish()),
        Arc::new(id_b.finish()),
        Arc::new(ep_b.finish()),
        Arc::new(first_b.finish()),
        Arc::new(last_b.finish()),
        Arc::new(times_b.finish()),
        Arc::new(age_b.finish()),
        Arc::new(visits_b.finish()),
        Arc::new(pts_b.finish()),
        bbox,
        Arc::new(geom_b.finish()),
    ];
    let batch = RecordBatch::try_new(cells_schema(), cols).map_err(|x| Error::Invalid(x.to_string()))?;
    let bbox = (batch.num_rows() > 0).then_some(total);
    // The types present: MultiPolygon only when a cell crosses the antimeridian.
    let types: &[&str] = if multi {
        &["Polygon", "MultiPolygon"]
    } else {
        &["Polygon"]
    };
    write_geoparquet(batch, &geo_metadata(bbox, types), "cells.parquet")
}

/// The GeoParquet 1.1 `geo` metadata: WKB geometries of `types` in `geometry`, the file's
/// bbox (`null` without rows) and the `bbox` covering column.
pub(crate) fn geo_metadata(bbox: Option<[f64; 4]>, types: &[&str]) -> String {
    let geo = serde_json::json!({
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {"geometry": {
            "encoding": "WKB",
            "geometry_types": types,
            "bbox": bbox,
            "covering": {"bbox": {"xmin": ["bbox", "xmin"], "ymin": ["bbox", "ymin"], "xmax": ["bbox", "xmax"], "ymax": ["bbox", "ymax"]}},
        }},
    });
    geo.to_string()
}

/// One batch as a Parquet file with `geo` in the file's key-value metadata (what GDAL and
/// GeoPandas read) and on the Arrow schema embedded in the file (what pyarrow restores as
/// `schema.metadata`).
pub(crate) fn write_geoparquet(batch: RecordBatch, geo: &str, name: &str) -> Result<Vec<u8>> {
    let schema = Arc::new(
        batch
            .schema()
            .as_ref()
            .clone()
            .with_metadata([("geo".to_string(), geo.to_string())].into()),
    );
    let batch = batch
        .with_schema(schema.clone())
        .map_err(|x| Error::Invalid(x.to_string()))?;
    let props = WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(
            parquet::basic::ZstdLevel::try_new(3).expect("level"),
        ))
        .set_created_by(format!("tessera {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![KeyValue::new("geo".to_string(), geo.to_string())]))
        .build();
    let mut buf = Vec::new();
    let pe = |source: parquet::errors::ParquetError| Error::Parquet {
        path: name.to_string(),
        source,
    };
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(pe)?;
    w.write(&batch).map_err(pe)?;
    w.close().map_err(pe)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_a_cell_crossing_the_antimeridian_is_a_multipolygon_of_two_halves() {
        let c = h3o::LatLng::new(-16.8, 180.0).unwrap().to_cell(h3o::Resolution::Nine);
        let (wkb, bbox) = cell_wkb(c);
        assert_eq!(u32::from_le_bytes(wkb[1..5].try_into().unwrap()), 6); // MultiPolygon
        assert_eq!(u32::from_le_bytes(wkb[5..9].try_into().unwrap()), 2);
        assert!(
            bbox[0] >= -180.0 && bbox[2] <= 180.0 && bbox[1] < -16.79 && bbox[3] > -16.81,
            "{bbox:?}"
        );
        // An ordinary cell stays one Polygon with a tight box.
        let d = h3o::LatLng::new(-16.8, 179.0).unwrap().to_cell(h3o::Resolution::Nine);
        let (wkb, bbox) = cell_wkb(d);
        assert_eq!(u32::from_le_bytes(wkb[1..5].try_into().unwrap()), 3);
        assert!(bbox[2] - bbox[0] < 0.01);
    }
}

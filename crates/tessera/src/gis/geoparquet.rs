//! Any [`Layer`] as GeoParquet 1.1: one column per field, the geometry as WKB in `geometry`, a
//! `bbox` covering struct and the `geo` metadata. (The epoch's cell file with its own schema is
//! [`crate::geoparquet::export_cells`].)

use super::{FieldKind, Layer, Value};
use crate::lake::{Error, Result};
use arrow_array::builder::{BinaryBuilder, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, StructArray};
use arrow_schema::{DataType, Field, Schema};
use std::sync::Arc;

/// WKB (little endian, 2D) of a geometry and its bbox `[xmin, ymin, xmax, ymax]`.
///
/// # Errors
/// A message for geometry types WKB has no code for here (`Line`, `Rect`, `Triangle`: convert
/// them first).
///
/// ```
/// let g = geo::Geometry::LineString(geo::LineString::from(vec![(1.0, 2.0), (3.0, 4.0)]));
/// let (wkb, bbox) = tessera::gis::geoparquet::wkb(&g).unwrap();
/// assert_eq!((wkb.len(), bbox), (9 + 32, [1.0, 2.0, 3.0, 4.0]));
/// ```
pub fn wkb(g: &geo::Geometry<f64>) -> std::result::Result<(Vec<u8>, [f64; 4]), String> {
    let mut w = Vec::new();
    let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    put(&mut w, g, &mut bbox)?;
    Ok((w, bbox))
}

fn put(w: &mut Vec<u8>, g: &geo::Geometry<f64>, bbox: &mut [f64; 4]) -> std::result::Result<(), String> {
    use geo::Geometry as G;
    let head = |w: &mut Vec<u8>, code: u32| {
        w.push(1);
        w.extend_from_slice(&code.to_le_bytes());
    };
    let coords = |w: &mut Vec<u8>, cs: &[geo::Coord<f64>], bbox: &mut [f64; 4]| {
        w.extend_from_slice(&(cs.len() as u32).to_le_bytes());
        for c in cs {
            w.extend_from_slice(&c.x.to_le_bytes());
            w.extend_from_slice(&c.y.to_le_bytes());
            *bbox = [bbox[0].min(c.x), bbox[1].min(c.y), bbox[2].max(c.x), bbox[3].max(c.y)];
        }
    };
    let polygon = |w: &mut Vec<u8>, p: &geo::Polygon<f64>, bbox: &mut [f64; 4]| {
        head(w, 3);
        w.extend_from_slice(&(1 + p.interiors().len() as u32).to_le_bytes());
        coords(w, &p.exterior().0, bbox);
        for r in p.interiors() {
            coords(w, &r.0, bbox);
        }
    };
    match g {
        G::Point(p) => {
            head(w, 1);
            w.extend_from_slice(&p.x().to_le_bytes());
            w.extend_from_slice(&p.y().to_le_bytes());
            *bbox = [
                bbox[0].min(p.x()),
                bbox[1].min(p.y()),
                bbox[2].max(p.x()),
                bbox[3].max(p.y()),
            ];
        }
        G::LineString(l) => {
            head(w, 2);
            coords(w, &l.0, bbox);
        }
        G::Polygon(p) => polygon(w, p, bbox),
        G::MultiLineString(m) => {
            head(w, 5);
            w.extend_from_slice(&(m.0.len() as u32).to_le_bytes());
            for l in &m.0 {
                head(w, 2);
                coords(w, &l.0, bbox);
            }
        }
        G::MultiPolygon(m) => {
            head(w, 6);
            w.extend_from_slice(&(m.0.len() as u32).to_le_bytes());
            for p in &m.0 {
                polygon(w, p, bbox);
            }
        }
        other => return Err(format!("no WKB writer for {other:?}")),
    }
    Ok(())
}

fn type_name(g: &geo::Geometry<f64>) -> &'static str {
    use geo::Geometry as G;
    match g {
        G::Point(_) => "Point",
        G::LineString(_) => "LineString",
        G::Polygon(_) => "Polygon",
        G::MultiLineString(_) => "MultiLineString",
        G::MultiPolygon(_) => "MultiPolygon",
        _ => "Unknown",
    }
}

/// The layer as GeoParquet 1.1 bytes (ZSTD, `created_by` fixed: the same layer gives the same
/// bytes).
///
/// # Errors
/// [`Error::Invalid`] for a value whose kind does not match its field, or a geometry type
/// without a WKB code here.
///
/// ```
/// use tessera::gis::{Layer, Field, FieldKind, Feature, Value};
/// let l = Layer { name: "t".into(), fields: vec![Field { name: "n", kind: FieldKind::Integer64 }],
///     features: vec![Feature { geometry: geo::Geometry::Point(geo::point!(x: 1.0, y: 2.0)), values: vec![Value::Integer64(3)] }] };
/// assert_eq!(&tessera::gis::geoparquet::write(&l).unwrap()[..4], b"PAR1");
/// ```
pub fn write(layer: &Layer) -> Result<Vec<u8>> {
    let bad = |m: String| Error::Invalid(format!("layer {}: {m}", layer.name));
    let mut cols: Vec<ArrayRef> = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    for (i, f) in layer.fields.iter().enumerate() {
        let vals = layer.features.iter().map(|x| &x.values[i]);
        let (dt, col): (DataType, ArrayRef) = match f.kind {
            FieldKind::Text => {
                let mut b = StringBuilder::new();
                for v in vals {
                    match v {
                        Value::Text(s) => b.append_value(s),
                        Value::Null => b.append_null(),
                        other => return Err(bad(format!("field {}: {other:?} is not text", f.name))),
                    }
                }
                (DataType::Utf8, Arc::new(b.finish()))
            }
            FieldKind::Integer64 => {
                let mut b = Int64Builder::new();
                for v in vals {
                    match v {
                        Value::Integer64(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(bad(format!("field {}: {other:?} is not an integer", f.name))),
                    }
                }
                (DataType::Int64, Arc::new(b.finish()))
            }
            FieldKind::Real => {
                let mut b = Float64Builder::new();
                for v in vals {
                    match v {
                        Value::Real(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(bad(format!("field {}: {other:?} is not a real", f.name))),
                    }
                }
                (DataType::Float64, Arc::new(b.finish()))
            }
            FieldKind::Boolean => {
                let mut b = BooleanBuilder::new();
                for v in vals {
                    match v {
                        Value::Boolean(x) => b.append_value(*x),
                        Value::Null => b.append_null(),
                        other => return Err(bad(format!("field {}: {other:?} is not a boolean", f.name))),
                    }
                }
                (DataType::Boolean, Arc::new(b.finish()))
            }
        };
        fields.push(Field::new(f.name, dt, true));
        cols.push(col);
    }
    let mut geom = BinaryBuilder::new();
    let mut bb = [(); 4].map(|_| Float64Builder::new());
    let mut total = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    let mut types = std::collections::BTreeSet::new();
    for x in &layer.features {
        let (w, b) = wkb(&x.geometry).map_err(bad)?;
        types.insert(type_name(&x.geometry));
        geom.append_value(&w);
        for (k, v) in bb.iter_mut().zip(b) {
            k.append_value(v);
        }
        total = [
            total[0].min(b[0]),
            total[1].min(b[1]),
            total[2].max(b[2]),
            total[3].max(b[3]),
        ];
    }
    let bbox_fields = crate::geoparquet::bbox_fields();
    cols.push(Arc::new(StructArray::new(
        bbox_fields.clone(),
        bb.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect(),
        None,
    )));
    fields.push(Field::new("bbox", DataType::Struct(bbox_fields), false));
    cols.push(Arc::new(geom.finish()));
    fields.push(Field::new("geometry", DataType::Binary, false));
    let geo = crate::geoparquet::geo_metadata(
        (!layer.features.is_empty()).then_some(total),
        &types.into_iter().collect::<Vec<_>>(),
    );
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| bad(e.to_string()))?;
    crate::geoparquet::write_geoparquet(batch, &geo, &format!("{}.parquet", layer.name))
}

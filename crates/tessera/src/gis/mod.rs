//! What GIS tools read, as plain data: an epoch's cells, tracks and regions as feature layers
//! (geometry in longitude/latitude degrees, EPSG:4326, and typed attributes) and its coverage as
//! a raster grid. The CLI writes layers through GDAL (GeoPackage, FlatGeobuf, GeoJSON, KML,
//! Shapefile: `tessera-gis`) or as GeoParquet 1.1 ([`geoparquet`], tessera's own writer since
//! Debian's GDAL 3.6 has no Parquet driver).
//!
//! Field names are at most 10 characters (Shapefile's limit) and the same in every format.
//! Decimal amounts are a `Real` (double, for styling) with the exact value in a `*_txt` text
//! column.

pub mod geoparquet;
pub mod layers;
pub mod raster;

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FieldKind {
    /// UTF-8 text.
    Text,
    /// 64-bit integer.
    Integer64,
    /// Double.
    Real,
    /// Boolean.
    Boolean,
}

/// A field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name (≤ 10 characters).
    pub name: &'static str,
    /// Type.
    pub kind: FieldKind,
}

/// A value (its kind matches the field's, or is `Null`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Value {
    /// No value.
    Null,
    /// Text.
    Text(String),
    /// Integer.
    Integer64(i64),
    /// Double.
    Real(f64),
    /// Boolean.
    Boolean(bool),
}

/// A feature: a geometry and one value per field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Feature {
    /// Geometry, longitude/latitude degrees.
    pub geometry: geo::Geometry<f64>,
    /// Values, in field order.
    pub values: Vec<Value>,
}

/// A layer.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Layer name.
    pub name: String,
    /// Fields.
    pub fields: Vec<Field>,
    /// Features in a fixed order.
    pub features: Vec<Feature>,
}

/// A cell's outline as a geometry: a polygon, or a multipolygon of its two halves when it
/// crosses the antimeridian (each half valid on its own side).
///
/// ```
/// let c = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
/// assert!(matches!(tessera::gis::cell_geometry(c), geo::Geometry::MultiPolygon(_)));
/// ```
pub fn cell_geometry(c: h3o::CellIndex) -> geo::Geometry<f64> {
    let polys: Vec<geo::Polygon<f64>> = crate::cells::boundary_parts(c)
        .into_iter()
        .map(|ring| geo::Polygon::new(geo::LineString::from(ring), vec![]))
        .collect();
    geo::Geometry::MultiPolygon(geo::MultiPolygon(polys))
}

/// A decimal in millionths as (double, exact text).
///
/// ```
/// assert_eq!(tessera::gis::ppm_values(1_500_000), (1.5, "1.500000".to_string()));
/// ```
pub fn ppm_values(v: i128) -> (f64, String) {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    (v as f64 / 1e6, format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000))
}

//! The plain data types crossing the GDAL edge.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Vector formats written through GDAL.
///
/// Byte-reproducibility (same [`crate::OutLayer`] written twice gives identical bytes; checked by
/// `tests/vector.rs`): **all five**, given the options this crate sets:
/// - `Gpkg`: `OGR_CURRENT_DATE` is pinned to [`crate::FIXED_DATE`] for the write, so
///   `gpkg_contents.last_change` is constant.
/// - `Shp`: `DBF_DATE_LAST_UPDATE` is pinned to the same date (the `.dbf` header holds a date).
/// - `Fgb`, `GeoJson`, `Kml`: nothing time-dependent is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VectorFormat {
    /// OGC GeoPackage (`GPKG` driver), `.gpkg`.
    Gpkg,
    /// FlatGeobuf (`FlatGeobuf` driver), `.fgb`, written without a spatial index so that features
    /// keep their order.
    Fgb,
    /// GeoJSON (`GeoJSON` driver, not RFC 7946 mode), `.geojson`.
    GeoJson,
    /// KML 2.2 (GDAL's `KML` driver, which adds its own `Name` and `description` fields first),
    /// `.kml`. Not `LIBKML`: GDAL 3.6's LIBKML writer (libkml 1.3) grows worse than linearly
    /// with the feature count (3 210 cells: 44 s, against 0.3 s here).
    Kml,
    /// ESRI Shapefile, `.shp` plus `.shx .dbf .prj .cpg` sidecars.
    Shp,
}

impl VectorFormat {
    /// Every format, in the order of [`FromStr`]'s choices.
    pub const ALL: [VectorFormat; 5] = [
        VectorFormat::Gpkg,
        VectorFormat::Fgb,
        VectorFormat::GeoJson,
        VectorFormat::Kml,
        VectorFormat::Shp,
    ];

    /// The GDAL driver short name.
    pub fn driver(&self) -> &'static str {
        match self {
            VectorFormat::Gpkg => "GPKG",
            VectorFormat::Fgb => "FlatGeobuf",
            VectorFormat::GeoJson => "GeoJSON",
            VectorFormat::Kml => "KML",
            VectorFormat::Shp => "ESRI Shapefile",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(&self) -> &'static str {
        match self {
            VectorFormat::Gpkg => "gpkg",
            VectorFormat::Fgb => "fgb",
            VectorFormat::GeoJson => "geojson",
            VectorFormat::Kml => "kml",
            VectorFormat::Shp => "shp",
        }
    }

    /// The longest field name the format stores unchanged (Shapefile/dBASE: 10 bytes), `None`
    /// when there is no practical limit.
    pub fn max_field_name(&self) -> Option<usize> {
        match self {
            VectorFormat::Shp => Some(10),
            _ => None,
        }
    }

    /// The name accepted by [`FromStr`].
    fn name(&self) -> &'static str {
        match self {
            VectorFormat::GeoJson => "geojson",
            other => other.extension(),
        }
    }
}

impl fmt::Display for VectorFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown format name; its message lists the choices.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown vector format {0:?}; choose one of: gpkg, fgb, geojson, kml, shp")]
pub struct UnknownFormat(pub String);

impl FromStr for VectorFormat {
    type Err = UnknownFormat;

    /// `"gpkg" | "fgb" | "geojson" | "kml" | "shp"` (ASCII case-insensitive).
    ///
    /// # Errors
    ///
    /// [`UnknownFormat`] for anything else, listing the choices.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VectorFormat::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The type of an output field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// UTF-8 text (Shapefile: at most 254 bytes per value).
    Text,
    /// 64-bit integer. KML has no 64-bit integer type: written there as text (exact).
    Integer64,
    /// 64-bit float, finite values only.
    Real,
    /// Written as OGR `Integer` with the `Boolean` sub-type where the driver supports it
    /// (GeoPackage, FlatGeobuf, GeoJSON), else as a plain `Integer` 0/1 (Shapefile, KML).
    Boolean,
}

/// One output field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// The field name (Shapefile: at most 10 bytes).
    pub name: String,
    /// The field type.
    pub kind: FieldKind,
}

/// One attribute value; its variant must match the field's [`FieldKind`] (or be `Null`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (GDAL null).
    Null,
    /// For [`FieldKind::Text`].
    Text(String),
    /// For [`FieldKind::Integer64`].
    Integer64(i64),
    /// For [`FieldKind::Real`]; must be finite.
    Real(f64),
    /// For [`FieldKind::Boolean`].
    Boolean(bool),
}

impl Value {
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Text(_) => "Text",
            Value::Integer64(_) => "Integer64",
            Value::Real(_) => "Real",
            Value::Boolean(_) => "Boolean",
        }
    }
}

/// One output feature.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFeature {
    /// Lon/lat degrees (x = longitude).
    pub geometry: geo::Geometry<f64>,
    /// One value per [`OutLayer::fields`] entry, in that order.
    pub values: Vec<Value>,
}

/// One output layer.
#[derive(Debug, Clone, PartialEq)]
pub struct OutLayer {
    /// The layer name (Shapefile: ignored, the layer is named after the file).
    pub name: String,
    /// The attribute fields.
    pub fields: Vec<FieldDef>,
    /// The features, written in this order.
    pub features: Vec<OutFeature>,
}

/// A feature read from any OGR source.
#[derive(Debug, Clone, PartialEq)]
pub struct InFeature {
    /// The FID the source reports, if any.
    pub fid: Option<u64>,
    /// WGS84 lon/lat degrees (x = longitude), 2D.
    pub geometry: geo::Geometry<f64>,
    /// Set, non-null attributes as strings: integers in decimal, reals in Rust's shortest
    /// round-trip form (`0.1`, not `0.100000000000000`), booleans as `1`/`0`, text unchanged,
    /// anything else as GDAL formats it.
    pub attrs: BTreeMap<String, String>,
}

/// A raster of `u32` counts on a lon/lat grid; row 0 is the northern row, column 0 the western.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Longitude of the western edge of column 0.
    pub west: f64,
    /// Latitude of the northern edge of row 0.
    pub north: f64,
    /// Pixel width and height in degrees (square pixels), > 0.
    pub pixel_deg: f64,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` counts, row-major from the north-west corner; 0 is nodata.
    pub data: Vec<u32>,
}

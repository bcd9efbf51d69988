//! tessera's only GDAL edge: writes reward/coverage layers as GeoPackage, FlatGeobuf, GeoJSON, KML
//! or Shapefile, reads any OGR vector source back as WGS84 lon/lat, and writes count grids as
//! GeoTIFF or Cloud-Optimized GeoTIFF.
//!
//! Built against the system GDAL (Debian 12: 3.6.2) through the `gdal` crate. All coordinates
//! crossing this API are WGS84 (EPSG:4326) in traditional GIS order: x = longitude, y = latitude,
//! degrees.
//!
//! Geometry types per layer: a layer whose features all have the same geometry type is written
//! with that type; Polygon and MultiPolygon (likewise LineString/MultiLineString,
//! Point/MultiPoint) mixed in one layer are written as the multi type, single geometries promoted
//! to one-part multi geometries; other mixes are written as an untyped (`Unknown`) layer, which
//! Shapefile refuses ([`Error::GeometryMix`]).
//!
//! Outputs are written atomically (temporary name in the same directory, flushed to disk, then
//! renamed; a missing output directory is created) and are
//! byte-reproducible for every format (see [`VectorFormat`]); dates GDAL would stamp into
//! GeoPackage and dBASE headers are pinned to [`FIXED_DATE`].

mod error;
mod fsutil;
mod geom;
mod model;
mod raster;
mod read;
mod write;

pub use error::{Error, FeatureRef};
pub use model::{FieldDef, FieldKind, Grid, InFeature, OutFeature, OutLayer, UnknownFormat, Value, VectorFormat};
pub use raster::write_raster;
pub use read::{layer_names, read_layer};
pub use write::write_layer;

/// The GDAL library in use: `GDAL <release> (<date>)`, e.g. `GDAL 3.6.2 (2023-01-02)` — part of
/// what identifies how places sources were read (the places cache key).
///
/// ```
/// assert!(tessera_gis::gdal_version().starts_with("GDAL "));
/// ```
pub fn gdal_version() -> String {
    format!(
        "GDAL {} ({})",
        gdal::version::version_info("RELEASE_NAME"),
        gdal::version::version_info("RELEASE_DATE")
    )
}

/// GDAL's failure messages since the last [`take_gdal_messages`], once
/// [`capture_gdal_messages`] is installed.
static MESSAGES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Keeps GDAL's failure messages (`CE_Failure`, `CE_Fatal`) instead of letting GDAL print them
/// to stderr as `ERROR n: …`: a failing call already returns an [`Error`] carrying GDAL's last
/// message, so the default handler printed every failure twice. Collect them with
/// [`take_gdal_messages`]. Warnings still go to stderr (as `GDAL warning n: …`); debug output is
/// dropped. Process-wide; call once, before any GDAL call.
///
/// ```
/// tessera_gis::capture_gdal_messages();
/// let garbage = std::env::temp_dir().join(format!("not-a-geopackage-{}.gpkg", std::process::id()));
/// std::fs::write(&garbage, b"not a GeoPackage").unwrap();
/// let err = tessera_gis::read_layer(&garbage, None).unwrap_err();
/// let said = tessera_gis::take_gdal_messages();
/// std::fs::remove_file(&garbage).unwrap();
/// assert!(!said.is_empty() && said.iter().all(|m| m.starts_with("GDAL error")), "{said:?} / {err}");
/// assert!(tessera_gis::take_gdal_messages().is_empty());
/// ```
pub fn capture_gdal_messages() {
    use gdal::errors::CplErrType;
    gdal::config::set_error_handler(|kind, num, msg| match kind {
        CplErrType::Failure | CplErrType::Fatal => {
            let mut m = MESSAGES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            m.push(format!("GDAL error {num}: {msg}"));
        }
        CplErrType::Warning => eprintln!("GDAL warning {num}: {msg}"),
        CplErrType::Debug | CplErrType::None => {}
    });
}

/// The GDAL failure messages kept since the last call (see [`capture_gdal_messages`]), oldest
/// first.
///
/// ```
/// assert!(tessera_gis::take_gdal_messages().is_empty());
/// ```
pub fn take_gdal_messages() -> Vec<String> {
    std::mem::take(&mut *MESSAGES.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
}

/// The date written where a format insists on a "last modified" date (GeoPackage
/// `gpkg_contents.last_change`, dBASE header), so that outputs are reproducible.
pub const FIXED_DATE: &str = "2000-01-01";

use std::path::Path;

/// GDAL's last error message (GDAL keeps one per thread), for OGR error codes that carry none.
fn last_gdal_message() -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local, NUL-terminated buffer owned
    // by GDAL (never NULL); it is copied out before any other GDAL call can change it.
    unsafe {
        let msg = gdal_sys::CPLGetLastErrorMsg();
        if msg.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(msg).to_string_lossy().into_owned()
        }
    }
}

/// Builds [`Error::Gdal`] for `path` (and `layer`).
fn gdal_error(path: &Path, layer: Option<&str>, op: &'static str) -> impl FnOnce(gdal::errors::GdalError) -> Error {
    let path = path.to_path_buf();
    let layer = layer.map(str::to_owned);
    move |source| {
        let detail = match source {
            gdal::errors::GdalError::OgrError { .. } => last_gdal_message(),
            _ => String::new(),
        };
        Error::Gdal {
            path,
            layer,
            op,
            source: Box::new(source),
            detail,
        }
    }
}

/// EPSG:4326 with x = longitude.
fn wgs84(path: &Path) -> Result<gdal::spatial_ref::SpatialRef, Error> {
    let mut srs = gdal::spatial_ref::SpatialRef::from_epsg(4326).map_err(gdal_error(path, None, "EPSG:4326"))?;
    srs.set_axis_mapping_strategy(gdal::spatial_ref::AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// Looks up a GDAL driver by short name.
fn driver(path: &Path, name: &'static str) -> Result<gdal::Driver, Error> {
    gdal::DriverManager::get_driver_by_name(name).map_err(gdal_error(path, None, "GDAL driver lookup"))
}

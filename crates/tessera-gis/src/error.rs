//! The one error type of this crate. Every variant names the file; layer, feature and field too
//! where one is involved.

use std::fmt;
use std::path::PathBuf;

/// A feature's identity in an error message: its FID when read from a source, its 0-based
/// position in [`crate::OutLayer::features`] when being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureRef {
    /// The FID GDAL reported for a feature read from a source.
    Fid(u64),
    /// A feature the source gave no FID.
    NoFid,
    /// The 0-based position of a feature in the layer being written.
    Index(usize),
}

impl fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureRef::Fid(fid) => write!(f, "feature FID {fid}"),
            FeatureRef::NoFid => f.write_str("feature (no FID)"),
            FeatureRef::Index(i) => write!(f, "feature #{i}"),
        }
    }
}

/// Everything that can go wrong at the GDAL edge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input file does not exist.
    #[error("{}: no such file", .path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A filesystem operation (temporary file, rename, removal) failed.
    #[error("{}: {op}: {source}", .path.display())]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// GDAL refused an operation on a file (or layer) as a whole.
    #[error("{}{}: {op}: {source}{}", .path.display(), layer_suffix(.layer.as_deref()), detail_suffix(.detail))]
    Gdal {
        /// The file.
        path: PathBuf,
        /// The layer, when one is involved.
        layer: Option<String>,
        /// What was being done.
        op: &'static str,
        /// GDAL's error.
        #[source]
        source: Box<gdal::errors::GdalError>,
        /// GDAL's last error message when `source` does not carry it (OGR error codes), else empty.
        detail: String,
    },
    /// The path cannot be used for this format (e.g. a Shapefile path not ending in `.shp`).
    #[error("{}: {reason}", .path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why it is refused.
        reason: String,
    },
    /// A requested layer is not in the source.
    #[error("{}: no layer {layer:?}; layers: {}", .path.display(), list(.available))]
    NoSuchLayer {
        /// The source.
        path: PathBuf,
        /// The requested layer.
        layer: String,
        /// The layers the source has.
        available: Vec<String>,
    },
    /// The source has no layer at all.
    #[error("{}: no layers", .path.display())]
    NoLayers {
        /// The source.
        path: PathBuf,
    },
    /// A field definition is refused before anything is written (name too long, duplicate, empty).
    #[error("{}: layer {layer:?}: field {field:?}: {reason}", .path.display())]
    BadField {
        /// The output file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// The field name.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// A feature is refused (wrong number of values, geometry GDAL cannot take, missing geometry
    /// on read, failed reprojection ...).
    #[error("{}: layer {layer:?}: {feature}: {reason}", .path.display())]
    BadFeature {
        /// The file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// The feature.
        feature: FeatureRef,
        /// What is wrong with it.
        reason: String,
    },
    /// One value of one feature is refused (kind mismatch, not finite, too long for the format),
    /// or GDAL could not read it.
    #[error("{}: layer {layer:?}: {feature}: field {field:?}: {reason}", .path.display())]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// The feature.
        feature: FeatureRef,
        /// The field name.
        field: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// The layer's geometries cannot share one layer in this format (Shapefile: one type family).
    #[error("{}: layer {layer:?}: {reason}", .path.display())]
    GeometryMix {
        /// The output file.
        path: PathBuf,
        /// The layer.
        layer: String,
        /// Which geometries clash.
        reason: String,
    },
    /// A raster grid is inconsistent (size, pixel size, data length).
    #[error("{}: invalid grid: {reason}", .path.display())]
    BadGrid {
        /// The output file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
}

fn layer_suffix(layer: Option<&str>) -> String {
    layer.map(|l| format!(": layer {l:?}")).unwrap_or_default()
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
    }
}

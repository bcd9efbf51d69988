//! `read_layer` and `layer_names`: any OGR vector source, back to WGS84 lon/lat.

use std::collections::BTreeMap;
use std::path::Path;

use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform};
use gdal::vector::{Feature, LayerAccess, OGRFieldType};
use gdal::{Dataset, DatasetOptions, GdalOpenFlags};

use crate::{gdal_error, geom, Error, FeatureRef, InFeature};

/// The names of the vector layers of any OGR-readable source, in the source's order.
///
/// # Errors
///
/// [`Error::NotFound`] when `path` does not exist; [`Error::Gdal`] when GDAL cannot open it as a
/// vector source.
pub fn layer_names(path: &Path) -> Result<Vec<String>, Error> {
    Ok(open(path)?.layers().map(|l| l.name()).collect())
}

/// Read a layer (`None`: the first/only layer) from any OGR-readable source (GeoPackage,
/// Shapefile, GeoJSON, FlatGeobuf, KML, CSV ...), with geometries transformed to WGS84 lon/lat
/// degrees (source CRS from the layer; a layer without CRS is assumed to be WGS84 lon/lat already)
/// and flattened to 2D, and attribute values as strings (null/unset fields absent; see
/// [`InFeature::attrs`] for the formatting). Features come in the source's order.
///
/// Format notes: KML sources carry extra OGR fields (`Name`, `description`, and set
/// `tessellate`/`extrude`/`visibility` values) besides the `ExtendedData` ones, and one-part
/// multi geometries come back as their single part; a Shapefile's polygon layer returns
/// `Polygon` for one-part and `MultiPolygon` for multi-part shapes, exterior rings clockwise.
/// FIDs are the source's: GeoPackage and KML count from 1, the others from 0.
///
/// # Errors
///
/// [`Error::NotFound`] when `path` does not exist; [`Error::Gdal`] when GDAL cannot open it or
/// build the transformation; [`Error::NoLayers`]; [`Error::NoSuchLayer`] (listing the layers)
/// for a missing layer name; [`Error::BadFeature`] naming the FID for a feature without geometry,
/// with an empty or unsupported (curved, TIN ...) geometry, or one that fails to reproject;
/// [`Error::BadValue`] naming FID and field when GDAL cannot read a value.
pub fn read_layer(path: &Path, layer: Option<&str>) -> Result<Vec<InFeature>, Error> {
    let ds = open(path)?;
    let mut lyr = match layer {
        None if ds.layer_count() == 0 => {
            return Err(Error::NoLayers {
                path: path.to_path_buf(),
            })
        }
        None => ds.layer(0).map_err(gdal_error(path, None, "open layer 0"))?,
        Some(name) => match ds.layer_by_name(name) {
            Ok(l) => l,
            Err(_) => {
                return Err(Error::NoSuchLayer {
                    path: path.to_path_buf(),
                    layer: name.to_owned(),
                    available: ds.layers().map(|l| l.name()).collect(),
                })
            }
        },
    };
    let lname = lyr.name();
    let transform = to_wgs84(path, &lname, lyr.spatial_ref())?;
    let fields: Vec<(String, OGRFieldType::Type)> = lyr.defn().fields().map(|f| (f.name(), f.field_type())).collect();
    let mut out = Vec::new();
    for feat in lyr.features() {
        out.push(read_feature(path, &lname, &feat, &fields, transform.as_ref())?);
    }
    Ok(out)
}

fn open(path: &Path) -> Result<Dataset, Error> {
    let virtual_fs = path.to_str().is_some_and(|s| s.starts_with("/vsi"));
    if !virtual_fs && !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let options = DatasetOptions {
        open_flags: GdalOpenFlags::GDAL_OF_VECTOR
            | GdalOpenFlags::GDAL_OF_READONLY
            | GdalOpenFlags::GDAL_OF_VERBOSE_ERROR,
        ..DatasetOptions::default()
    };
    Dataset::open_ex(path, options).map_err(gdal_error(path, None, "open as a vector source"))
}

/// The transformation from the layer CRS to WGS84 lon/lat; `None` when there is nothing to do.
fn to_wgs84(
    path: &Path,
    layer: &str,
    source: Option<gdal::spatial_ref::SpatialRef>,
) -> Result<Option<CoordTransform>, Error> {
    let Some(mut source) = source else {
        return Ok(None);
    };
    source.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let target = crate::wgs84(path)?;
    if source == target {
        return Ok(None);
    }
    CoordTransform::new(&source, &target)
        .map(Some)
        .map_err(gdal_error(path, Some(layer), "transformation to WGS84"))
}

fn read_feature(
    path: &Path,
    layer: &str,
    feat: &Feature<'_>,
    fields: &[(String, OGRFieldType::Type)],
    transform: Option<&CoordTransform>,
) -> Result<InFeature, Error> {
    let feature = feat.fid().map_or(FeatureRef::NoFid, FeatureRef::Fid);
    let bad = |reason: String| Error::BadFeature {
        path: path.to_path_buf(),
        layer: layer.to_owned(),
        feature,
        reason,
    };
    let g = feat.geometry().ok_or_else(|| bad("no geometry".to_owned()))?;
    let geometry = match transform {
        Some(ct) => {
            let t = g
                .transform(ct)
                .map_err(|e| bad(format!("reprojection to WGS84 failed: {e}")))?;
            geom::from_gdal(&t)
        }
        None => geom::from_gdal(g),
    }
    .map_err(bad)?;
    let mut attrs = BTreeMap::new();
    for (idx, (name, ty)) in fields.iter().enumerate() {
        let value = field_string(feat, idx, *ty).map_err(|e| Error::BadValue {
            path: path.to_path_buf(),
            layer: layer.to_owned(),
            feature,
            field: name.clone(),
            reason: e.to_string(),
        })?;
        if let Some(v) = value {
            attrs.insert(name.clone(), v);
        }
    }
    Ok(InFeature {
        fid: feat.fid(),
        geometry,
        attrs,
    })
}

/// The value of field `idx` as a string, `None` when unset or null.
fn field_string(feat: &Feature<'_>, idx: usize, ty: OGRFieldType::Type) -> gdal::errors::Result<Option<String>> {
    let c_idx = i32::try_from(idx)?;
    // SAFETY: `c_feature` is the live OGRFeatureH owned by `feat`; `idx` comes from the layer
    // definition the feature was read with, and OGR checks it against the feature's field count.
    let set = unsafe { gdal_sys::OGR_F_IsFieldSetAndNotNull(feat.c_feature(), c_idx) } != 0;
    if !set {
        return Ok(None);
    }
    Ok(match ty {
        OGRFieldType::OFTInteger => feat.field_as_integer(idx)?.map(|v| v.to_string()),
        OGRFieldType::OFTInteger64 => feat.field_as_integer64(idx)?.map(|v| v.to_string()),
        OGRFieldType::OFTReal => feat.field_as_double(idx)?.map(|v| v.to_string()),
        _ => feat.field_as_string(idx)?,
    })
}

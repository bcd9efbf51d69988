//! `write_layer`: one layer, one file (or one Shapefile set), atomically.

use std::collections::HashSet;
use std::path::Path;

use gdal::vector::{Feature, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType as Ogr};
use gdal::{Dataset, Driver, Metadata};

use crate::geom::{self, Family};
use crate::{fsutil, gdal_error, Error, FeatureRef, FieldKind, OutFeature, OutLayer, Value, VectorFormat, FIXED_DATE};

/// dBASE limits as GDAL's Shapefile driver applies them.
const SHP_MAX_TEXT: usize = 254;
const SHP_REAL_WIDTH: usize = 24;
const SHP_INT64_WIDTH: usize = 18;

/// How one field is created.
struct FieldPlan {
    ogr_type: OGRFieldType::Type,
    boolean_subtype: bool,
    width: Option<i32>,
    precision: Option<i32>,
}

/// The layer's geometry type, and whether single geometries are promoted to multi.
struct GeomPlan {
    ogr_type: Ogr::Type,
    promote: bool,
}

/// Write one layer (lon/lat degrees, EPSG:4326, traditional GIS axis order) to `path` atomically:
/// written under a temporary name in the same directory, then renamed; for Shapefile every
/// sidecar (`.shp .shx .dbf .prj .cpg`) is written in a temporary directory and all are renamed
/// into place (`.shp` last; stale `.qix .sbn .sbx .shp.xml` of a replaced Shapefile are removed).
/// Existing output is replaced. Features are written in the given order.
///
/// Format notes: Shapefile ignores `layer.name` (the layer is named after the file), needs a
/// path ending in `.shp`, is written UTF-8 (`.cpg`), stores exterior rings clockwise (GDAL
/// reverses them), sizes text fields to the longest value and gives Real fields (width 24) 15
/// decimals, fewer when the largest integer part needs the room; KML stores Integer64 as text;
/// FlatGeobuf is written without spatial index (an index would reorder the features). See
/// [`VectorFormat`] for reproducibility.
///
/// # Errors
///
/// Before anything is written: [`Error::BadField`] for an empty, duplicate (case-insensitive) or
/// too long field name (longer than [`VectorFormat::max_field_name`], Shapefile: 10 bytes);
/// [`Error::BadFeature`] for a wrong number of values or a non-finite coordinate;
/// [`Error::BadValue`] for a value of the wrong kind, a non-finite Real, or a value a Shapefile
/// cannot hold (text over 254 bytes, an integer over 18 digits, a Real over 22 integer digits);
/// [`Error::GeometryMix`] for geometry families a Shapefile cannot share. While writing:
/// [`Error::Gdal`] / [`Error::BadFeature`] when GDAL refuses, [`Error::Io`] for the temporary
/// files, creating a missing output directory, flushing and the rename, and when the file
/// system is full after writing (under 1 MiB free: GDAL's FlatGeobuf, GeoJSON and KML drivers
/// ignore a short write). On error no output is left behind and an existing one is untouched
/// (Shapefile: unless a rename fails after the first sidecar was moved into place).
pub fn write_layer(path: &Path, format: VectorFormat, layer: &OutLayer) -> Result<(), Error> {
    check_fields(path, format, layer)?;
    check_features(path, format, layer)?;
    let geom_plan = plan_geometry(path, format, layer)?;
    let drv = crate::driver(path, format.driver())?;
    let field_plans = plan_fields(&drv, format, layer);
    if format == VectorFormat::Shp {
        return write_shapefile(path, &drv, layer, &geom_plan, &field_plans);
    }
    fsutil::create_parent(path)?;
    let tmp = fsutil::temp_file(path)?;
    write_dataset(&tmp.path, path, &drv, format, layer, &geom_plan, &field_plans)?;
    fsutil::check_space(&tmp.path, path)?;
    fsutil::sync(&tmp.path, path)?;
    fsutil::rename(&tmp.path, path)?;
    tmp.keep();
    fsutil::sync_dir(path)
}

fn bad_field(path: &Path, layer: &OutLayer, field: &str, reason: String) -> Error {
    Error::BadField {
        path: path.to_path_buf(),
        layer: layer.name.clone(),
        field: field.to_owned(),
        reason,
    }
}

fn check_fields(path: &Path, format: VectorFormat, layer: &OutLayer) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for f in &layer.fields {
        if f.name.is_empty() {
            return Err(bad_field(path, layer, &f.name, "empty field name".to_owned()));
        }
        if let Some(max) = format.max_field_name() {
            if f.name.len() > max {
                let reason = format!("name is {} bytes; {format} allows at most {max}", f.name.len());
                return Err(bad_field(path, layer, &f.name, reason));
            }
        }
        if !seen.insert(f.name.to_lowercase()) {
            return Err(bad_field(
                path,
                layer,
                &f.name,
                "duplicate field name (case-insensitive)".to_owned(),
            ));
        }
    }
    Ok(())
}

fn check_features(path: &Path, format: VectorFormat, layer: &OutLayer) -> Result<(), Error> {
    for (i, feat) in layer.features.iter().enumerate() {
        let bad_feature = |reason: String| Error::BadFeature {
            path: path.to_path_buf(),
            layer: layer.name.clone(),
            feature: FeatureRef::Index(i),
            reason,
        };
        if feat.values.len() != layer.fields.len() {
            return Err(bad_feature(format!(
                "{} values for {} fields",
                feat.values.len(),
                layer.fields.len()
            )));
        }
        if let Some(c) = geom::first_non_finite(&feat.geometry) {
            return Err(bad_feature(format!("non-finite coordinate ({}, {})", c.x, c.y)));
        }
        for (def, value) in layer.fields.iter().zip(&feat.values) {
            check_value(format, def.kind, value).map_err(|reason| Error::BadValue {
                path: path.to_path_buf(),
                layer: layer.name.clone(),
                feature: FeatureRef::Index(i),
                field: def.name.clone(),
                reason,
            })?;
        }
    }
    Ok(())
}

fn check_value(format: VectorFormat, kind: FieldKind, value: &Value) -> Result<(), String> {
    let shp = format == VectorFormat::Shp;
    match (kind, value) {
        (_, Value::Null) | (FieldKind::Boolean, Value::Boolean(_)) => Ok(()),
        (FieldKind::Text, Value::Text(s)) if shp && s.len() > SHP_MAX_TEXT => Err(format!(
            "text of {} bytes; Shapefile holds at most {SHP_MAX_TEXT}",
            s.len()
        )),
        (FieldKind::Text, Value::Text(_)) => Ok(()),
        (FieldKind::Integer64, Value::Integer64(v)) if shp && v.to_string().len() > SHP_INT64_WIDTH => Err(format!(
            "{v} needs more than {SHP_INT64_WIDTH} characters, the Shapefile Integer64 width"
        )),
        (FieldKind::Integer64, Value::Integer64(_)) => Ok(()),
        (FieldKind::Real, Value::Real(v)) if !v.is_finite() => Err(format!("non-finite Real {v}")),
        (FieldKind::Real, Value::Real(v)) if shp && int_digits(*v) > SHP_REAL_WIDTH - 2 => Err(format!(
            "{v} does not fit a Shapefile Real field ({SHP_REAL_WIDTH} characters)"
        )),
        (FieldKind::Real, Value::Real(_)) => Ok(()),
        (kind, v) => Err(format!("{} value for a {kind:?} field", v.kind_name())),
    }
}

/// Characters of the integer part of `v` as `%f` prints it, sign included.
fn int_digits(v: f64) -> usize {
    format!("{:.0}", v.trunc()).len()
}

fn plan_geometry(path: &Path, format: VectorFormat, layer: &OutLayer) -> Result<GeomPlan, Error> {
    let mut kinds = layer.features.iter().map(|f| geom::classify(&f.geometry));
    let Some(first) = kinds.next() else {
        return Ok(GeomPlan {
            ogr_type: Ogr::wkbUnknown,
            promote: false,
        });
    };
    let (mut same_type, mut same_family) = (true, true);
    for k in kinds {
        same_type &= k.2 == first.2;
        same_family &= k.0 == first.0;
    }
    let plan = if same_type {
        GeomPlan {
            ogr_type: first.2,
            promote: false,
        }
    } else if same_family && first.0 != Family::Collection {
        GeomPlan {
            ogr_type: geom::multi_type(first.0),
            promote: true,
        }
    } else {
        GeomPlan {
            ogr_type: Ogr::wkbUnknown,
            promote: false,
        }
    };
    if format == VectorFormat::Shp && (plan.ogr_type == Ogr::wkbUnknown || first.0 == Family::Collection) {
        return Err(Error::GeometryMix {
            path: path.to_path_buf(),
            layer: layer.name.clone(),
            reason: "a Shapefile holds one geometry family (points, lines or polygons), no collections".to_owned(),
        });
    }
    Ok(plan)
}

/// Whether `drv` lists `item` in the space-separated driver metadata `key`.
fn driver_lists(drv: &Driver, key: &str, item: &str) -> bool {
    drv.metadata_item(key, "")
        .is_some_and(|v| v.split_whitespace().any(|t| t == item))
}

fn plan_fields(drv: &Driver, format: VectorFormat, layer: &OutLayer) -> Vec<FieldPlan> {
    let has_int64 = driver_lists(drv, "DMD_CREATIONFIELDDATATYPES", "Integer64");
    let has_bool = driver_lists(drv, "DMD_CREATIONFIELDDATASUBTYPES", "Boolean");
    let shp = format == VectorFormat::Shp;
    let mut plans = Vec::with_capacity(layer.fields.len());
    for (i, def) in layer.fields.iter().enumerate() {
        let column = || layer.features.iter().filter_map(move |f| f.values.get(i));
        let mut plan = FieldPlan {
            ogr_type: OGRFieldType::OFTString,
            boolean_subtype: false,
            width: None,
            precision: None,
        };
        match def.kind {
            FieldKind::Text if shp => {
                let longest = column().map(|v| if let Value::Text(s) = v { s.len() } else { 0 }).max();
                plan.width = Some(clamp_i32(longest.unwrap_or(1).clamp(1, SHP_MAX_TEXT)));
            }
            FieldKind::Text => {}
            FieldKind::Integer64 if has_int64 => plan.ogr_type = OGRFieldType::OFTInteger64,
            FieldKind::Integer64 => {}
            FieldKind::Real => {
                plan.ogr_type = OGRFieldType::OFTReal;
                if shp {
                    let widest = column()
                        .map(|v| if let Value::Real(r) = v { int_digits(*r) } else { 1 })
                        .max();
                    plan.width = Some(clamp_i32(SHP_REAL_WIDTH));
                    plan.precision = Some(clamp_i32(
                        (SHP_REAL_WIDTH - 2).saturating_sub(widest.unwrap_or(1)).min(15),
                    ));
                }
            }
            FieldKind::Boolean => {
                plan.ogr_type = OGRFieldType::OFTInteger;
                plan.boolean_subtype = has_bool;
                plan.width = shp.then_some(1);
            }
        }
        plans.push(plan);
    }
    plans
}

fn clamp_i32(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn write_shapefile(
    path: &Path,
    drv: &Driver,
    layer: &OutLayer,
    geom_plan: &GeomPlan,
    field_plans: &[FieldPlan],
) -> Result<(), Error> {
    let is_shp = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("shp"));
    if !is_shp {
        return Err(Error::BadPath {
            path: path.to_path_buf(),
            reason: "a Shapefile path must end in .shp".to_owned(),
        });
    }
    fsutil::create_parent(path)?;
    let dir = fsutil::temp_dir(path)?;
    let name = fsutil::file_name(path)?;
    write_dataset(
        &dir.path.join(&name),
        path,
        drv,
        VectorFormat::Shp,
        layer,
        geom_plan,
        field_plans,
    )?;
    let read_err = |source| Error::Io {
        path: dir.path.clone(),
        op: "list temporary directory",
        source,
    };
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&dir.path).map_err(read_err)? {
        written.push(entry.map_err(read_err)?.file_name());
    }
    // .shp last: a reader opening the new .shp finds the new .shx/.dbf already in place.
    written.sort_by_key(|n| Path::new(n).extension().is_some_and(|e| e.eq_ignore_ascii_case("shp")));
    fsutil::check_space(&dir.path, path)?;
    fsutil::sync(&dir.path, path)?;
    let parent = fsutil::parent_dir(path);
    for n in &written {
        fsutil::rename(&dir.path.join(n), &parent.join(n))?;
    }
    fsutil::sync_dir(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in ["qix", "sbn", "sbx", "shp.xml", "cpg", "prj"] {
        let stale = parent.join(format!("{stem}.{ext}"));
        if !written.iter().any(|n| parent.join(n) == stale) && stale.exists() {
            std::fs::remove_file(&stale).map_err(|source| Error::Io {
                path: stale,
                op: "remove stale sidecar",
                source,
            })?;
        }
    }
    Ok(())
}

/// Sets a GDAL config option for this thread until dropped.
struct ThreadConfig(&'static str);

impl ThreadConfig {
    fn set(key: &'static str, value: &str) -> Option<ThreadConfig> {
        gdal::config::set_thread_local_config_option(key, value)
            .ok()
            .map(|()| ThreadConfig(key))
    }
}

impl Drop for ThreadConfig {
    fn drop(&mut self) {
        let _ = gdal::config::clear_thread_local_config_option(self.0);
    }
}

/// Creates the dataset at `target` (a temporary), fills it and closes it; errors name `path`.
fn write_dataset(
    target: &Path,
    path: &Path,
    drv: &Driver,
    format: VectorFormat,
    layer: &OutLayer,
    geom_plan: &GeomPlan,
    field_plans: &[FieldPlan],
) -> Result<(), Error> {
    let _date = (format == VectorFormat::Gpkg)
        .then(|| ThreadConfig::set("OGR_CURRENT_DATE", &format!("{FIXED_DATE}T00:00:00.000Z")))
        .flatten();
    let mut ds = drv
        .create_vector_only(target)
        .map_err(gdal_error(path, None, "create dataset"))?;
    if format == VectorFormat::Gpkg {
        let mut txn = ds
            .start_transaction()
            .map_err(gdal_error(path, None, "start transaction"))?;
        fill(&mut txn, path, format, layer, geom_plan, field_plans)?;
        txn.commit().map_err(gdal_error(path, Some(&layer.name), "commit"))?;
    } else {
        fill(&mut ds, path, format, layer, geom_plan, field_plans)?;
    }
    ds.close().map_err(gdal_error(path, Some(&layer.name), "close dataset"))
}

fn layer_options(format: VectorFormat) -> Vec<String> {
    match format {
        VectorFormat::Fgb => vec!["SPATIAL_INDEX=NO".to_owned()],
        VectorFormat::Shp => vec![
            "ENCODING=UTF-8".to_owned(),
            format!("DBF_DATE_LAST_UPDATE={FIXED_DATE}"),
        ],
        VectorFormat::Gpkg | VectorFormat::GeoJson | VectorFormat::Kml => Vec::new(),
    }
}

fn fill(
    ds: &mut Dataset,
    path: &Path,
    format: VectorFormat,
    layer: &OutLayer,
    geom_plan: &GeomPlan,
    field_plans: &[FieldPlan],
) -> Result<(), Error> {
    let err = |op| gdal_error(path, Some(&layer.name), op);
    let srs = crate::wgs84(path)?;
    let options = layer_options(format);
    let option_refs: Vec<&str> = options.iter().map(String::as_str).collect();
    let lyr = ds
        .create_layer(LayerOptions {
            name: &layer.name,
            srs: Some(&srs),
            ty: geom_plan.ogr_type,
            options: Some(&option_refs),
        })
        .map_err(err("create layer"))?;
    for (def, plan) in layer.fields.iter().zip(field_plans) {
        let field_err = |reason| Error::BadField {
            path: path.to_path_buf(),
            layer: layer.name.clone(),
            field: def.name.clone(),
            reason,
        };
        create_field(&lyr, &def.name, plan).map_err(field_err)?;
    }
    for (i, feat) in layer.features.iter().enumerate() {
        write_feature(&lyr, layer, feat, geom_plan.promote, field_plans).map_err(|reason| Error::BadFeature {
            path: path.to_path_buf(),
            layer: layer.name.clone(),
            feature: FeatureRef::Index(i),
            reason,
        })?;
    }
    Ok(())
}

/// `OGR_L_CreateField` with width, precision and the Boolean sub-type, which the gdal crate's
/// `FieldDefn` cannot set.
fn create_field<L: LayerAccess>(lyr: &L, name: &str, plan: &FieldPlan) -> Result<(), String> {
    let c_name = std::ffi::CString::new(name).map_err(|_| "field name contains NUL".to_owned())?;
    // SAFETY: the field definition is created, used and destroyed here (OGR_L_CreateField copies
    // it); `c_name` outlives the call that reads it; `lyr.c_layer()` is the live layer handle.
    let rv = unsafe {
        let fd = gdal_sys::OGR_Fld_Create(c_name.as_ptr(), plan.ogr_type);
        if fd.is_null() {
            return Err(format!("OGR_Fld_Create failed ({})", crate::last_gdal_message()));
        }
        if let Some(w) = plan.width {
            gdal_sys::OGR_Fld_SetWidth(fd, w);
        }
        if let Some(p) = plan.precision {
            gdal_sys::OGR_Fld_SetPrecision(fd, p);
        }
        if plan.boolean_subtype {
            gdal_sys::OGR_Fld_SetSubType(fd, gdal_sys::OGRFieldSubType::OFSTBoolean);
        }
        let rv = gdal_sys::OGR_L_CreateField(lyr.c_layer(), fd, 1);
        gdal_sys::OGR_Fld_Destroy(fd);
        rv
    };
    if rv == gdal_sys::OGRErr::OGRERR_NONE {
        Ok(())
    } else {
        Err(format!("GDAL refused the field ({})", crate::last_gdal_message()))
    }
}

/// Writes one feature; a GDAL refusal comes back as a message (field named when it is one).
fn write_feature<L: LayerAccess>(
    lyr: &L,
    layer: &OutLayer,
    feat: &OutFeature,
    promote: bool,
    field_plans: &[FieldPlan],
) -> Result<(), String> {
    let gdal_msg = |e: gdal::errors::GdalError| format!("{e} ({})", crate::last_gdal_message());
    let mut out = Feature::new(lyr.defn()).map_err(gdal_msg)?;
    let g = geom::to_gdal(&feat.geometry, promote).map_err(gdal_msg)?;
    out.set_geometry(g).map_err(gdal_msg)?;
    for ((def, plan), value) in layer.fields.iter().zip(field_plans).zip(&feat.values) {
        // By name: a driver may add fields of its own first (KML: `Name`, `description`).
        let idx = out
            .field_index(&def.name)
            .map_err(|e| format!("field {:?}: {}", def.name, gdal_msg(e)))?;
        let r = match value {
            Value::Null => out.set_field_null(idx),
            Value::Text(s) => out.set_field_string(idx, s),
            Value::Integer64(v) if plan.ogr_type == OGRFieldType::OFTString => {
                out.set_field_string(idx, &v.to_string())
            }
            Value::Integer64(v) => out.set_field_integer64(idx, *v),
            Value::Real(v) => out.set_field_double(idx, *v),
            Value::Boolean(b) => out.set_field_integer(idx, i32::from(*b)),
        };
        r.map_err(|e| format!("field {:?}: {}", def.name, gdal_msg(e)))?;
    }
    out.create(lyr).map_err(gdal_msg)
}

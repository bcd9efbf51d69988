//! Features read from a vector source: a geometry in WGS84 longitude/latitude degrees and its
//! attributes as text. GeoJSON (RFC 7946) is read here; other OGR formats through a
//! [`ShapeReader`] the caller supplies (the CLI's GDAL reader).

use std::collections::BTreeMap;
use std::path::Path;

/// One feature.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Feature id (GeoJSON: 0-based position in the collection; OGR: the FID).
    pub fid: u64,
    /// Geometry, longitude/latitude degrees.
    pub geometry: geo::Geometry<f64>,
    /// Attributes as text (null and absent attributes are missing).
    pub attrs: BTreeMap<String, String>,
}

/// A source that cannot be used, naming the file and, where it applies, the feature and field.
#[derive(Debug, thiserror::Error)]
pub enum PlacesError {
    /// The file cannot be read or parsed.
    #[error("{path}: {message}")]
    Source {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// One feature is unusable.
    #[error("{path}: feature {fid}: {message}")]
    Feature {
        /// The file.
        path: String,
        /// Its feature id.
        fid: u64,
        /// What is wrong (names the field).
        message: String,
    },
}

impl PlacesError {
    pub(crate) fn source(path: &Path, message: impl Into<String>) -> Self {
        PlacesError::Source {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Reads the features of one layer of a vector source.
pub trait ShapeReader: Sync {
    /// The features of `layer` (`None`: the first layer) of `path`.
    ///
    /// # Errors
    /// [`PlacesError`] naming the file, layer or feature.
    fn read(&self, path: &Path, layer: Option<&str>) -> Result<Vec<Shape>, PlacesError>;

    /// What reads the sources (e.g. the GDAL release): part of the places cache key, so cells
    /// read by another reader are never reused. `native` for the built-in readers.
    ///
    /// ```
    /// use tessera::places::shapes::{Native, ShapeReader};
    /// assert_eq!(Native.id(), "native");
    /// ```
    fn id(&self) -> String {
        "native".into()
    }
}

/// GeoJSON only (the build without GDAL): other formats are refused with a message naming the
/// GIS build.
///
/// ```
/// use tessera::places::shapes::{Native, ShapeReader};
/// let e = Native.read(std::path::Path::new("regions.gpkg"), None).unwrap_err();
/// assert!(e.to_string().contains("GDAL"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Native;

impl ShapeReader for Native {
    fn read(&self, path: &Path, layer: Option<&str>) -> Result<Vec<Shape>, PlacesError> {
        if !is_geojson(path) {
            return Err(PlacesError::source(
                path,
                "only GeoJSON (.geojson, .json) and OpenStreetMap (.osm.pbf) are read without GDAL; \
                 use the CLI's default build (GIS, through GDAL) for other formats",
            ));
        }
        read_geojson(path, layer)
    }
}

/// Whether a path names a GeoJSON file (`.geojson` or `.json`).
///
/// ```
/// assert!(tessera::places::shapes::is_geojson(std::path::Path::new("a/b.GeoJSON")));
/// ```
pub fn is_geojson(path: &Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    ext == "geojson" || ext == "json"
}

/// The features of a GeoJSON file (a FeatureCollection, a Feature or a bare geometry). Its one
/// layer is named after the file stem, as GDAL names it.
///
/// # Errors
/// [`PlacesError`] for unreadable or invalid GeoJSON, a feature without geometry, or a layer
/// other than the file stem.
///
/// ```
/// # let d = tempfile::tempdir().unwrap();
/// let p = d.path().join("zones.geojson");
/// std::fs::write(&p, r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a","w":2},
///   "geometry":{"type":"Point","coordinates":[1.0,2.0]}}]}"#).unwrap();
/// let s = tessera::places::shapes::read_geojson(&p, None).unwrap();
/// assert_eq!((s[0].attrs["name"].as_str(), s[0].attrs["w"].as_str()), ("a", "2"));
/// ```
pub fn read_geojson(path: &Path, layer: Option<&str>) -> Result<Vec<Shape>, PlacesError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if let Some(l) = layer.filter(|l| *l != stem) {
        return Err(PlacesError::source(
            path,
            format!("no layer {l:?}: a GeoJSON file has one layer, {stem:?}"),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| PlacesError::source(path, e.to_string()))?;
    let gj: geojson::GeoJson = text
        .parse()
        .map_err(|e: geojson::Error| PlacesError::source(path, format!("invalid GeoJSON: {e}")))?;
    let features: Vec<geojson::Feature> = match gj {
        geojson::GeoJson::FeatureCollection(fc) => fc.features,
        geojson::GeoJson::Feature(f) => vec![f],
        geojson::GeoJson::Geometry(g) => vec![geojson::Feature::from(g)],
    };
    let mut out = Vec::with_capacity(features.len());
    for (i, f) in features.into_iter().enumerate() {
        let fid = i as u64;
        let bad = |message: String| PlacesError::Feature {
            path: path.display().to_string(),
            fid,
            message,
        };
        let g = f.geometry.ok_or_else(|| bad("no geometry".into()))?;
        let geometry = geo::Geometry::<f64>::try_from(g).map_err(|e| bad(format!("geometry: {e}")))?;
        let mut attrs = BTreeMap::new();
        for (k, v) in f.properties.unwrap_or_default() {
            let s = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            attrs.insert(k, s);
        }
        out.push(Shape { fid, geometry, attrs });
    }
    Ok(out)
}

/// The polygons of a geometry (polygon, multipolygon or a collection of them).
///
/// # Errors
/// A message naming the geometry type when it has no area (points, lines).
///
/// ```
/// use geo::{polygon, Geometry};
/// let g = Geometry::Polygon(polygon![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0), (x: 0.0, y: 1.0)]);
/// assert_eq!(tessera::places::shapes::polygons(&g).unwrap().len(), 1);
/// assert!(tessera::places::shapes::polygons(&Geometry::Point(geo::point!(x: 0.0, y: 0.0))).is_err());
/// ```
pub fn polygons(g: &geo::Geometry<f64>) -> Result<Vec<geo::Polygon<f64>>, String> {
    use geo::Geometry as G;
    match g {
        G::Polygon(p) => Ok(vec![p.clone()]),
        G::MultiPolygon(m) => Ok(m.0.clone()),
        G::GeometryCollection(c) => {
            let mut v = Vec::new();
            for x in &c.0 {
                v.extend(polygons(x)?);
            }
            Ok(v)
        }
        other => Err(format!("geometry is a {}, not a polygon", type_name(other))),
    }
}

/// The line strings of a geometry (line, line string, multi line string or a collection).
///
/// # Errors
/// A message naming the geometry type when it is not linear.
///
/// ```
/// use geo::{line_string, Geometry};
/// let g = Geometry::LineString(line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 0.0)]);
/// assert_eq!(tessera::places::shapes::lines(&g).unwrap().len(), 1);
/// ```
pub fn lines(g: &geo::Geometry<f64>) -> Result<Vec<geo::LineString<f64>>, String> {
    use geo::Geometry as G;
    match g {
        G::LineString(l) => Ok(vec![l.clone()]),
        G::Line(l) => Ok(vec![geo::LineString::from(vec![l.start, l.end])]),
        G::MultiLineString(m) => Ok(m.0.clone()),
        G::GeometryCollection(c) => {
            let mut v = Vec::new();
            for x in &c.0 {
                v.extend(lines(x)?);
            }
            Ok(v)
        }
        other => Err(format!("geometry is a {}, not a line", type_name(other))),
    }
}

fn type_name(g: &geo::Geometry<f64>) -> &'static str {
    use geo::Geometry as G;
    match g {
        G::Point(_) => "Point",
        G::Line(_) => "Line",
        G::LineString(_) => "LineString",
        G::Polygon(_) => "Polygon",
        G::MultiPoint(_) => "MultiPoint",
        G::MultiLineString(_) => "MultiLineString",
        G::MultiPolygon(_) => "MultiPolygon",
        G::GeometryCollection(_) => "GeometryCollection",
        G::Rect(_) => "Rect",
        G::Triangle(_) => "Triangle",
    }
}

//! geo <-> GDAL geometry conversion.
//!
//! geo -> GDAL uses the gdal crate's `ToGdal`. GDAL -> geo is done here rather than with the gdal
//! crate's `TryFrom<&Geometry>`, which panics on some unexpected inputs (empty polygons, collection
//! members of the wrong type) and rejects 2.5D/measured types: the geometry is flattened to 2D and
//! walked, and anything unexpected is an error message.

use gdal::vector::{Geometry as GdalGeometry, OGRwkbGeometryType as Ogr, ToGdal};
use geo::{Coord, Geometry, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};

/// The family a geometry belongs to; a Shapefile layer holds one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Point,
    Line,
    Polygon,
    Collection,
}

/// (family, is multi, GDAL type) of a geo geometry.
pub(crate) fn classify(g: &Geometry<f64>) -> (Family, bool, Ogr::Type) {
    match g {
        Geometry::Point(_) => (Family::Point, false, Ogr::wkbPoint),
        Geometry::MultiPoint(_) => (Family::Point, true, Ogr::wkbMultiPoint),
        Geometry::Line(_) | Geometry::LineString(_) => (Family::Line, false, Ogr::wkbLineString),
        Geometry::MultiLineString(_) => (Family::Line, true, Ogr::wkbMultiLineString),
        Geometry::Polygon(_) | Geometry::Rect(_) | Geometry::Triangle(_) => (Family::Polygon, false, Ogr::wkbPolygon),
        Geometry::MultiPolygon(_) => (Family::Polygon, true, Ogr::wkbMultiPolygon),
        Geometry::GeometryCollection(_) => (Family::Collection, true, Ogr::wkbGeometryCollection),
    }
}

/// The multi type of a family.
pub(crate) fn multi_type(family: Family) -> Ogr::Type {
    match family {
        Family::Point => Ogr::wkbMultiPoint,
        Family::Line => Ogr::wkbMultiLineString,
        Family::Polygon => Ogr::wkbMultiPolygon,
        Family::Collection => Ogr::wkbGeometryCollection,
    }
}

/// The first non-finite coordinate of a geometry, if any.
pub(crate) fn first_non_finite(g: &Geometry<f64>) -> Option<Coord<f64>> {
    use geo::CoordsIter;
    g.coords_iter().find(|c| !(c.x.is_finite() && c.y.is_finite()))
}

/// Converts to GDAL; with `promote`, single geometries become one-part multi geometries.
pub(crate) fn to_gdal(g: &Geometry<f64>, promote: bool) -> Result<GdalGeometry, gdal::errors::GdalError> {
    if !promote {
        return g.to_gdal();
    }
    match g {
        Geometry::Point(p) => MultiPoint(vec![*p]).to_gdal(),
        Geometry::Line(l) => MultiLineString(vec![LineString(vec![l.start, l.end])]).to_gdal(),
        Geometry::LineString(l) => MultiLineString(vec![l.clone()]).to_gdal(),
        Geometry::Polygon(p) => MultiPolygon(vec![p.clone()]).to_gdal(),
        Geometry::Rect(r) => MultiPolygon(vec![r.to_polygon()]).to_gdal(),
        Geometry::Triangle(t) => MultiPolygon(vec![t.to_polygon()]).to_gdal(),
        other => other.to_gdal(),
    }
}

/// Converts a GDAL geometry (any dimension) to a 2D geo geometry.
///
/// # Errors
///
/// A message for empty geometries and types geo cannot hold (curves, TINs, ...).
pub(crate) fn from_gdal(g: &GdalGeometry) -> Result<Geometry<f64>, String> {
    let mut flat = g.clone();
    flat.flatten_to_2d();
    if flat.is_empty() {
        return Err(format!("empty {} geometry", flat.geometry_name()));
    }
    walk(&flat)
}

fn walk(g: &GdalGeometry) -> Result<Geometry<f64>, String> {
    match g.geometry_type() {
        Ogr::wkbPoint => point(g).map(Geometry::Point),
        Ogr::wkbLineString | Ogr::wkbLinearRing => Ok(Geometry::LineString(line(g))),
        Ogr::wkbPolygon => polygon(g).map(Geometry::Polygon),
        Ogr::wkbMultiPoint => parts(g, point).map(|v| Geometry::MultiPoint(MultiPoint(v))),
        Ogr::wkbMultiLineString => parts(g, expect_line).map(|v| Geometry::MultiLineString(MultiLineString(v))),
        Ogr::wkbMultiPolygon => parts(g, polygon).map(|v| Geometry::MultiPolygon(MultiPolygon(v))),
        Ogr::wkbGeometryCollection => parts(g, walk).map(|v| Geometry::GeometryCollection(geo::GeometryCollection(v))),
        _ => Err(format!("unsupported geometry type {}", g.geometry_name())),
    }
}

fn parts<T>(g: &GdalGeometry, f: impl Fn(&GdalGeometry) -> Result<T, String>) -> Result<Vec<T>, String> {
    (0..g.geometry_count()).map(|i| f(&g.get_geometry(i))).collect()
}

fn point(g: &GdalGeometry) -> Result<Point<f64>, String> {
    if g.geometry_type() != Ogr::wkbPoint {
        return Err(format!("expected a point, found {}", g.geometry_name()));
    }
    if g.is_empty() || g.point_count() == 0 {
        return Err("empty point".to_owned());
    }
    let (x, y, _) = g.get_point(0);
    Ok(Point::new(x, y))
}

fn line(g: &GdalGeometry) -> LineString<f64> {
    let mut pts = Vec::new();
    g.get_points(&mut pts);
    LineString(pts.into_iter().map(|(x, y, _)| Coord { x, y }).collect())
}

fn expect_line(g: &GdalGeometry) -> Result<LineString<f64>, String> {
    match g.geometry_type() {
        Ogr::wkbLineString | Ogr::wkbLinearRing => Ok(line(g)),
        _ => Err(format!("expected a linestring, found {}", g.geometry_name())),
    }
}

fn polygon(g: &GdalGeometry) -> Result<Polygon<f64>, String> {
    if g.geometry_type() != Ogr::wkbPolygon {
        return Err(format!("expected a polygon, found {}", g.geometry_name()));
    }
    let mut rings = parts(g, expect_line)?.into_iter();
    let exterior = rings.next().ok_or_else(|| "polygon without rings".to_owned())?;
    Ok(Polygon::new(exterior, rings.collect()))
}

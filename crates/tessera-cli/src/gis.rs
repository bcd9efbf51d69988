//! The GIS edge of the CLI: export formats, core layers to `tessera-gis` (GDAL) layers, and the
//! shape reader for places (GDAL for every OGR format when built with `gis`; GeoJSON and
//! OpenStreetMap PBF only without it).

use anyhow::{bail, Result};
use std::path::Path;
use tessera::gis::Layer;
use tessera::places::shapes::ShapeReader;

/// An export format, from `--format` or the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// GeoParquet 1.1 (tessera's own writer; no GDAL needed).
    Parquet,
    /// GeoPackage.
    Gpkg,
    /// FlatGeobuf.
    Fgb,
    /// GeoJSON.
    Geojson,
    /// KML.
    Kml,
    /// ESRI Shapefile (`.shp` with its sidecars).
    Shp,
}

impl ExportFormat {
    /// The format named by `--format`, else by the output's extension.
    pub fn resolve(given: Option<ExportFormat>, output: &Path) -> Result<ExportFormat> {
        if let Some(f) = given {
            return Ok(f);
        }
        let ext = output
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        Ok(match ext.as_str() {
            "parquet" | "geoparquet" => ExportFormat::Parquet,
            "gpkg" => ExportFormat::Gpkg,
            "fgb" => ExportFormat::Fgb,
            "geojson" | "json" => ExportFormat::Geojson,
            "kml" => ExportFormat::Kml,
            "shp" => ExportFormat::Shp,
            _ => bail!(
                "{}: cannot tell the format from the extension; pass --format parquet|gpkg|fgb|geojson|kml|shp",
                output.display()
            ),
        })
    }
}

/// Write a layer in `format` (atomically).
pub fn write(layer: &Layer, format: ExportFormat, output: &Path) -> Result<()> {
    if format == ExportFormat::Parquet {
        let bytes = tessera::gis::geoparquet::write(layer)?;
        tessera::lake::write_atomic(output, &bytes)?;
        return Ok(());
    }
    write_gdal(layer, format, output)
}

#[cfg(feature = "gis")]
fn write_gdal(layer: &Layer, format: ExportFormat, output: &Path) -> Result<()> {
    use tessera::gis::{FieldKind as K, Value as V};
    use tessera_gis as g;
    let f = match format {
        ExportFormat::Gpkg => g::VectorFormat::Gpkg,
        ExportFormat::Fgb => g::VectorFormat::Fgb,
        ExportFormat::Geojson => g::VectorFormat::GeoJson,
        ExportFormat::Kml => g::VectorFormat::Kml,
        ExportFormat::Shp => g::VectorFormat::Shp,
        ExportFormat::Parquet => unreachable!("written above"),
    };
    let out = g::OutLayer {
        name: layer.name.clone(),
        fields: layer
            .fields
            .iter()
            .map(|x| g::FieldDef {
                name: x.name.to_string(),
                kind: match x.kind {
                    K::Text => g::FieldKind::Text,
                    K::Integer64 => g::FieldKind::Integer64,
                    K::Real => g::FieldKind::Real,
                    K::Boolean => g::FieldKind::Boolean,
                },
            })
            .collect(),
        features: layer
            .features
            .iter()
            .map(|x| g::OutFeature {
                geometry: x.geometry.clone(),
                values: x
                    .values
                    .iter()
                    .map(|v| match v {
                        V::Null => g::Value::Null,
                        V::Text(s) => g::Value::Text(s.clone()),
                        V::Integer64(i) => g::Value::Integer64(*i),
                        V::Real(r) => g::Value::Real(*r),
                        V::Boolean(b) => g::Value::Boolean(*b),
                    })
                    .collect(),
            })
            .collect(),
    };
    g::write_layer(output, f, &out)?;
    Ok(())
}

#[cfg(not(feature = "gis"))]
fn write_gdal(_: &Layer, format: ExportFormat, _: &Path) -> Result<()> {
    bail!("{format:?} is written through GDAL, which this build leaves out: build the CLI with its default features (needs libgdal-dev), or export --format parquet")
}

/// Write a coverage grid as GeoTIFF or COG.
#[cfg(feature = "gis")]
pub fn write_raster(grid: &tessera::gis::raster::Grid, output: &Path, cog: bool) -> Result<()> {
    let g = tessera_gis::Grid {
        west: grid.west,
        north: grid.north,
        pixel_deg: grid.pixel_deg,
        width: grid.width,
        height: grid.height,
        data: grid.data.clone(),
    };
    tessera_gis::write_raster(output, &g, cog)?;
    Ok(())
}

/// Write a coverage grid as GeoTIFF or COG.
#[cfg(not(feature = "gis"))]
pub fn write_raster(_: &tessera::gis::raster::Grid, _: &Path, _: bool) -> Result<()> {
    bail!("GeoTIFF is written through GDAL, which this build leaves out: build the CLI with its default features (needs libgdal-dev)")
}

/// Reads places through GDAL (any OGR vector source).
#[cfg(feature = "gis")]
struct Gdal;

#[cfg(feature = "gis")]
impl ShapeReader for Gdal {
    fn id(&self) -> String {
        tessera_gis::gdal_version()
    }

    fn read(
        &self,
        path: &Path,
        layer: Option<&str>,
    ) -> Result<Vec<tessera::places::shapes::Shape>, tessera::places::shapes::PlacesError> {
        let feats = tessera_gis::read_layer(path, layer).map_err(|e| tessera::places::shapes::PlacesError::Source {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(feats
            .into_iter()
            .enumerate()
            .map(|(i, f)| tessera::places::shapes::Shape {
                fid: f.fid.unwrap_or(i as u64),
                geometry: f.geometry,
                attrs: f.attrs,
            })
            .collect())
    }
}

/// The shape reader of this build.
pub fn reader() -> &'static dyn ShapeReader {
    #[cfg(feature = "gis")]
    {
        &Gdal
    }
    #[cfg(not(feature = "gis"))]
    {
        &tessera::places::shapes::Native
    }
}

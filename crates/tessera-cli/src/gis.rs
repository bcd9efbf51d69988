//! The GIS edge of the CLI: export formats, and the shape reader for places (GDAL for every OGR
//! format when built with `gis`; GeoJSON and OpenStreetMap PBF only without it). GDAL itself runs
//! in the `tessera-gdal` helper process ([`crate::gdal_helper`]).

use anyhow::{bail, Result};
use std::path::Path;
use tessera::gis::Layer;
use tessera::places::shapes::ShapeReader;

/// An export format, from `--format` or the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
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
    use crate::gdal_helper::{call, path_bytes, Request};
    call(&Request::WriteLayer {
        path: path_bytes(output),
        format,
        name: layer.name.as_str().into(),
        fields: layer.fields.iter().map(|f| (f.name.to_string(), f.kind)).collect(),
        features: layer.features.as_slice().into(),
    })?;
    Ok(())
}

#[cfg(not(feature = "gis"))]
fn write_gdal(_: &Layer, format: ExportFormat, _: &Path) -> Result<()> {
    bail!("{format:?} is written through GDAL, which this build leaves out: build the CLI with its default features (needs libgdal-dev), or export --format parquet")
}

/// Write a coverage grid as GeoTIFF or COG.
#[cfg(feature = "gis")]
pub fn write_raster(grid: &tessera::gis::raster::Grid, output: &Path, cog: bool) -> Result<()> {
    use crate::gdal_helper::{call, path_bytes, Request};
    call(&Request::WriteRaster {
        path: path_bytes(output),
        grid: std::borrow::Cow::Borrowed(grid),
        cog,
    })?;
    Ok(())
}

/// Write a coverage grid as GeoTIFF or COG.
#[cfg(not(feature = "gis"))]
pub fn write_raster(_: &tessera::gis::raster::Grid, _: &Path, _: bool) -> Result<()> {
    bail!("GeoTIFF is written through GDAL, which this build leaves out: build the CLI with its default features (needs libgdal-dev)")
}

/// Reads places through GDAL (any OGR vector source), in the helper process.
#[cfg(feature = "gis")]
struct Gdal;

#[cfg(feature = "gis")]
impl ShapeReader for Gdal {
    fn id(&self) -> String {
        // A helper that cannot start gives an id no helper ever has (no cache entry matches),
        // and the read that follows reports why.
        crate::gdal_helper::reader_id().unwrap_or_else(|e| format!("no GDAL helper: {e}"))
    }

    fn read(
        &self,
        path: &Path,
        layer: Option<&str>,
    ) -> Result<Vec<tessera::places::shapes::Shape>, tessera::places::shapes::PlacesError> {
        use crate::gdal_helper::{call, path_bytes, Request, Response};
        let shown = path.display().to_string();
        // The helper's errors name the file already; PlacesError names it once more.
        let failed = |message: String| tessera::places::shapes::PlacesError::Source {
            message: match message.strip_prefix(&format!("{shown}: ")) {
                Some(rest) => rest.to_owned(),
                None => message,
            },
            path: shown.clone(),
        };
        let req = Request::ReadLayer {
            path: path_bytes(path),
            layer: layer.map(str::to_owned),
        };
        match call(&req) {
            Ok(Response::Shapes(shapes)) => Ok(shapes),
            Ok(other) => Err(failed(format!("the GDAL helper answered {other:?} to a read"))),
            Err(e) => Err(failed(crate::output::error_text(&e))),
        }
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

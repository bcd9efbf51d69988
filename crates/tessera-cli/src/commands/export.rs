//! `tessera export cells|tracks|regions|coverage`: an epoch as GIS layers (GeoParquet 1.1, or
//! GeoPackage, FlatGeobuf, GeoJSON, KML, Shapefile through GDAL) or a coverage raster
//! (GeoTIFF/COG through GDAL).

use crate::cli::{EpochArg, ExportArgs};
use crate::gis::ExportFormat;
use crate::output::print_json;
use anyhow::Result;
use std::path::Path;

/// Which layer.
#[derive(Debug, Clone, Copy)]
pub enum Which {
    Cells,
    Tracks,
    Regions,
}

pub fn layer(a: &ExportArgs, which: Which, json: bool) -> Result<()> {
    let lake = super::open_lake(&a.at.lake)?;
    let e = &a.at.epoch;
    let format = ExportFormat::resolve(a.format, &a.output)?;
    let (layer, left_out, what) = match which {
        // The cells as GeoParquet keep their established schema (decimal points, u64 cell).
        Which::Cells if format == ExportFormat::Parquet => {
            let bytes = tessera::geoparquet::export_cells(&lake, e)?;
            tessera::lake::write_atomic(&a.output, &bytes)?;
            let n = tessera::tables::from_parquet(bytes.into())?
                .iter()
                .map(|b| b.num_rows())
                .sum::<usize>();
            return report(&a.output, format, n, 0, "single fixes", e, json);
        }
        Which::Cells => (tessera::gis::layers::cells(&lake, e)?, 0, ""),
        Which::Tracks => {
            let (l, single) = tessera::gis::layers::tracks(&lake, e)?;
            (l, single, "single fixes (a run of one fix has no line)")
        }
        Which::Regions => {
            let (l, empty) = tessera::gis::layers::regions(&lake, e)?;
            (l, empty, "regions without a cell")
        }
    };
    crate::gis::write(&layer, format, &a.output)?;
    report(&a.output, format, layer.features.len(), left_out, what, e, json)
}

fn report(
    output: &Path,
    format: ExportFormat,
    features: usize,
    left_out: u64,
    what: &str,
    e: &tessera::epoch::Epoch,
    json: bool,
) -> Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "output": output, "format": format!("{format:?}").to_lowercase(), "features": features,
            "left_out": left_out, "epoch": e.to_string(),
        }));
    }
    println!(
        "wrote {} ({:?}) with {features} features of {e}{}",
        output.display(),
        format,
        if left_out > 0 {
            format!("; {left_out} {what} not drawn")
        } else {
            String::new()
        }
    );
    Ok(())
}

pub fn coverage(at: &EpochArg, output: &Path, pixel_deg: f64, cog: bool, json: bool) -> Result<()> {
    let lake = super::open_lake(&at.lake)?;
    let grid = tessera::gis::raster::coverage(&lake, &at.epoch, pixel_deg)?;
    crate::gis::write_raster(&grid, output, cog)?;
    let covered = grid.data.iter().filter(|v| **v > 0).count();
    if json {
        return print_json(&serde_json::json!({
            "output": output, "cog": cog, "width": grid.width, "height": grid.height,
            "pixel_deg": pixel_deg, "covered_pixels": covered, "epoch": at.epoch.to_string(),
        }));
    }
    println!(
        "wrote {} ({}, {} × {} pixels of {pixel_deg}°, {covered} covered) for {}",
        output.display(),
        if cog { "COG" } else { "GeoTIFF" },
        grid.width,
        grid.height,
        at.epoch
    );
    Ok(())
}

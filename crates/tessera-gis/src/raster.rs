//! `write_raster`: a `u32` count grid as GeoTIFF or Cloud-Optimized GeoTIFF.

use std::path::Path;

use gdal::raster::{Buffer, RasterCreationOptions};
use gdal::Dataset;

use crate::{fsutil, gdal_error, Error, Grid};

/// Write `grid` as a single-band `UInt32` GeoTIFF (`cog = false`, GDAL's `GTiff` driver) or
/// Cloud-Optimized GeoTIFF (`cog = true`, GDAL's `COG` driver via CreateCopy from an in-memory
/// `MEM` dataset), EPSG:4326 (x = longitude), geotransform
/// `[west, pixel_deg, 0, north, 0, -pixel_deg]`, nodata 0, DEFLATE compression; atomically
/// (temporary file in the same directory, then renamed over any existing `path`).
/// Both variants are byte-reproducible.
///
/// # Errors
///
/// [`Error::BadGrid`] when the grid is empty, `data.len() != width * height`, `pixel_deg` is not
/// a positive finite number or an edge is not finite; [`Error::Gdal`] when GDAL fails;
/// [`Error::Io`] for the temporary file, creating a missing output directory, flushing and the
/// rename, and when the file system is full after writing.
pub fn write_raster(path: &Path, grid: &Grid, cog: bool) -> Result<(), Error> {
    check_grid(path, grid)?;
    let mem = in_memory(path, grid)?;
    let drv = crate::driver(path, if cog { "COG" } else { "GTiff" })?;
    let mut options = RasterCreationOptions::new();
    options
        .set_name_value("COMPRESS", "DEFLATE")
        .map_err(gdal_error(path, None, "creation options"))?;
    fsutil::create_parent(path)?;
    let tmp = fsutil::temp_file(path)?;
    let out = mem
        .create_copy(&drv, &tmp.path, &options)
        .map_err(gdal_error(path, None, "write GeoTIFF"))?;
    out.close().map_err(gdal_error(path, None, "close GeoTIFF"))?;
    fsutil::check_space(&tmp.path, path)?;
    fsutil::sync(&tmp.path, path)?;
    fsutil::rename(&tmp.path, path)?;
    tmp.keep();
    fsutil::sync_dir(path)
}

fn check_grid(path: &Path, grid: &Grid) -> Result<(), Error> {
    let bad = |reason: String| {
        Err(Error::BadGrid {
            path: path.to_path_buf(),
            reason,
        })
    };
    if grid.width == 0 || grid.height == 0 {
        return bad(format!("empty grid {}x{}", grid.width, grid.height));
    }
    if i32::try_from(grid.width).is_err() || i32::try_from(grid.height).is_err() {
        return bad(format!("grid {}x{} too large for GDAL", grid.width, grid.height));
    }
    if grid.width.checked_mul(grid.height) != Some(grid.data.len()) {
        return bad(format!(
            "{} values for a {}x{} grid",
            grid.data.len(),
            grid.width,
            grid.height
        ));
    }
    if !(grid.pixel_deg.is_finite() && grid.pixel_deg > 0.0) {
        return bad(format!(
            "pixel size {} is not a positive number of degrees",
            grid.pixel_deg
        ));
    }
    if !(grid.west.is_finite() && grid.north.is_finite()) {
        return bad(format!("non-finite corner ({}, {})", grid.west, grid.north));
    }
    Ok(())
}

fn in_memory(path: &Path, grid: &Grid) -> Result<Dataset, Error> {
    let err = |op| gdal_error(path, None, op);
    let mut mem = crate::driver(path, "MEM")?
        .create_with_band_type::<u32, _>("", grid.width, grid.height, 1)
        .map_err(err("create in-memory raster"))?;
    mem.set_geo_transform(&[grid.west, grid.pixel_deg, 0.0, grid.north, 0.0, -grid.pixel_deg])
        .map_err(err("set geotransform"))?;
    mem.set_spatial_ref(&crate::wgs84(path)?)
        .map_err(err("set spatial reference"))?;
    {
        let mut band = mem.rasterband(1).map_err(err("raster band"))?;
        band.set_no_data_value(Some(0.0)).map_err(err("set nodata"))?;
        let mut buf = Buffer::new((grid.width, grid.height), grid.data.clone());
        band.write((0, 0), (grid.width, grid.height), &mut buf)
            .map_err(err("write band"))?;
    }
    Ok(mem)
}

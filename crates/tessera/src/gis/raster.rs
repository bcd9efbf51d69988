//! An epoch's coverage as a raster: each pixel holds how many epochs covered the H3 cell its
//! centre lies in (0: never), on a longitude/latitude grid over the covered cells' extent.

use crate::epoch::Epoch;
use crate::lake::{Error, Lake, Result};

/// A grid of counts, row 0 at the north edge.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// West edge, degrees.
    pub west: f64,
    /// North edge, degrees.
    pub north: f64,
    /// Pixel size, degrees (square pixels in degrees).
    pub pixel_deg: f64,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width × height` counts, row-major.
    pub data: Vec<u32>,
}

/// Most pixels a coverage raster may have (a typo in the pixel size must not fill the disk).
pub const MAX_PIXELS: usize = 100_000_000;

/// The coverage state after epoch `e` rasterised at `pixel_deg` degrees. The extent is the
/// covered cells' bounding box (cells across the antimeridian: −180..180).
///
/// # Errors
/// As [`crate::geoparquet::epoch_cells`]; [`Error::Invalid`] for a pixel size that is not
/// positive or gives more than [`MAX_PIXELS`] pixels, or an epoch with no covered cell.
///
/// ```no_run
/// # let lake = tessera::lake::Lake::open(std::path::Path::new("lake")).unwrap();
/// let g = tessera::gis::raster::coverage(&lake, &"2026-W47".parse().unwrap(), 0.0001).unwrap();
/// ```
pub fn coverage(lake: &Lake, e: &Epoch, pixel_deg: f64) -> Result<Grid> {
    if !(pixel_deg.is_finite() && pixel_deg > 0.0) {
        return Err(Error::Invalid(format!(
            "pixel size {pixel_deg} must be a positive number of degrees"
        )));
    }
    let cells = crate::geoparquet::epoch_cells(lake, e)?;
    let Some(first) = cells.first() else {
        return Err(Error::Invalid(format!(
            "epoch {e} covers no cell: nothing to rasterise"
        )));
    };
    let res = first.cell.resolution();
    let mut bb = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for c in &cells {
        for ring in crate::cells::boundary_parts(c.cell) {
            for (x, y) in ring {
                bb = [bb[0].min(x), bb[1].min(y), bb[2].max(x), bb[3].max(y)];
            }
        }
    }
    let width = ((bb[2] - bb[0]) / pixel_deg).ceil().max(1.0);
    let height = ((bb[3] - bb[1]) / pixel_deg).ceil().max(1.0);
    if width * height > MAX_PIXELS as f64 {
        return Err(Error::Invalid(format!(
            "{width} × {height} pixels at {pixel_deg}° is more than {MAX_PIXELS}: use a larger pixel size"
        )));
    }
    let (width, height) = (width as usize, height as usize);
    let times: std::collections::HashMap<u64, u32> =
        cells.iter().map(|c| (u64::from(c.cell), c.times_covered)).collect();
    let mut data = vec![0u32; width * height];
    for row in 0..height {
        let lat = bb[3] - (row as f64 + 0.5) * pixel_deg;
        for col in 0..width {
            let lon = bb[0] + (col as f64 + 0.5) * pixel_deg;
            if let Ok(p) = h3o::LatLng::new(lat, lon) {
                data[row * width + col] = times.get(&u64::from(p.to_cell(res))).copied().unwrap_or(0);
            }
        }
    }
    Ok(Grid {
        west: bb[0],
        north: bb[3],
        pixel_deg,
        width,
        height,
        data,
    })
}

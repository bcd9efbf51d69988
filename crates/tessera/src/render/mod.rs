//! A picture of an epoch: its cells on a Web-Mercator map image, coloured by coverage freshness
//! or by the points they earned, with a legend, a scale bar and a graticule — PNG bytes.
//!
//! Pure: [`render`] takes the cells (see [`crate::geoparquet::epoch_cells`]) and options and
//! returns the PNG; no clock, no I/O, the same input gives the same bytes. When cells would be
//! smaller than a few pixels they are drawn merged into their H3 parent at a coarser resolution
//! (freshness: the freshest child; points: the sum), and the footer says so.

use crate::epoch::Epoch;
use crate::geoparquet::EpochCell;
use h3o::{CellIndex, LatLng, Resolution};
use std::collections::BTreeMap;
use std::f64::consts::PI;
mod layout;
mod paint;
mod png;

use paint::{fill_rect, stroke_rect};
use tiny_skia::{Color, FillRule, PathBuilder, Pixmap, Rect, Transform};

/// What the colours show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorBy {
    /// Epochs since each cell of the coverage state was last covered (0 = this epoch).
    #[default]
    Freshness,
    /// Points the cell earned in this epoch (quantile classes).
    Points,
}

impl std::str::FromStr for ColorBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "freshness" => Ok(ColorBy::Freshness),
            "points" => Ok(ColorBy::Points),
            _ => Err(format!("unknown colouring {s:?}: freshness or points")),
        }
    }
}

/// How to draw.
#[derive(Debug, Clone)]
pub struct Options {
    /// What the colours show.
    pub color_by: ColorBy,
    /// Image width in pixels (800..=8000).
    pub width: u32,
    /// Map height in pixels; `None` follows the data's aspect ratio (360..=1400 px).
    pub map_height: Option<u32>,
    /// Draw at this H3 resolution (coarser cells merge children); `None` picks the finest at which
    /// a cell edge is at least 2 pixels.
    pub resolution: Option<Resolution>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color_by: ColorBy::Freshness,
            width: 1200,
            map_height: None,
            resolution: None,
        }
    }
}

/// One legend row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegendEntry {
    /// What the colour means.
    pub label: String,
    /// Fill colour (RGB).
    pub color: [u8; 3],
    /// Drawn cells in this class.
    pub count: usize,
}

/// Where the map sits in the image: projects coordinates to pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Longitudes are unwrapped to within 180° of this one, so a map across the antimeridian is
    /// drawn as one piece.
    lon0: f64,
    x0: f64,
    y1: f64,
    scale: f64,
    left: f64,
    top: f64,
    /// Map area in pixels: left, top, width, height.
    pub map_area: (u32, u32, u32, u32),
    /// Ground metres per pixel at the map's centre latitude.
    pub metres_per_pixel: f64,
}

impl View {
    /// Pixel position (x right, y down) of a coordinate.
    ///
    /// ```
    /// // see `render`: `map.view.pixel(cell_centre)` locates a cell in the image
    /// ```
    pub fn pixel(&self, ll: LatLng) -> (f64, f64) {
        self.pixel_deg(ll.lat(), ll.lng())
    }

    fn pixel_deg(&self, lat: f64, lng: f64) -> (f64, f64) {
        let (x, y) = merc_deg(lat, unwrap_lng(lng, self.lon0));
        (
            self.left + (x - self.x0) * self.scale,
            self.top + (self.y1 - y) * self.scale,
        )
    }
}

/// A rendered map.
#[derive(Debug, Clone)]
pub struct Map {
    /// PNG bytes.
    pub png: Vec<u8>,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Resolution the cells were drawn at.
    pub drawn_resolution: Resolution,
    /// Cells in the input.
    pub cells: usize,
    /// Polygons drawn (after merging into parents).
    pub drawn: usize,
    /// Legend rows, top to bottom.
    pub legend: Vec<LegendEntry>,
    /// Scale bar label, e.g. `"500 m"`.
    pub scale: String,
    /// The projection, for locating things in the image.
    pub view: View,
}

/// Why a map could not be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// Nothing to draw.
    #[error("epoch {0} has no covered cells to draw")]
    Empty(String),
    /// Bad option.
    #[error("{0}")]
    Option(String),
}

const LEGEND_W: u32 = 360;
const MARGIN: u32 = 16;
const TITLE_H: u32 = 52;
const FOOTER_H: u32 = 50;
const MAP_BG: [u8; 3] = [0xee, 0xf1, 0xf4];
const FRAME: [u8; 3] = [0x9a, 0xa3, 0xad];
const INK: [u8; 3] = [0x20, 0x24, 0x28];
const GRID: [u8; 3] = [0xd4, 0xd9, 0xdf];

/// Freshness classes: (lowest age, highest age, label, colour). YlGnBu, fresh = dark.
pub const FRESHNESS_CLASSES: [(u32, u32, &str, [u8; 3]); 5] = [
    (0, 0, "mapped this epoch", [0x0c, 0x2c, 0x84]),
    (1, 1, "1 epoch ago", [0x22, 0x5e, 0xa8]),
    (2, 3, "2-3 epochs ago", [0x1d, 0x91, 0xc0]),
    (4, 7, "4-7 epochs ago", [0x7f, 0xcd, 0xbb]),
    (8, u32::MAX, "8+ epochs ago", [0xc7, 0xe9, 0xb4]),
];
/// Points classes, low to high (OrRd), and the colour of cells without points.
pub const POINTS_RAMP: [[u8; 3]; 5] = [
    [0xfd, 0xcc, 0x8a],
    [0xfc, 0x8d, 0x59],
    [0xe3, 0x4a, 0x33],
    [0xb3, 0x00, 0x00],
    [0x6b, 0x00, 0x00],
];
/// Colour of cells that earned no points in the epoch.
pub const NO_POINTS: [u8; 3] = [0xc4, 0xc8, 0xcc];

/// `lng` moved by whole turns to within 180° of `lon0`.
fn unwrap_lng(lng: f64, lon0: f64) -> f64 {
    lon0 + (lng - lon0 + 540.0).rem_euclid(360.0) - 180.0
}

fn merc_deg(lat: f64, lng: f64) -> (f64, f64) {
    let lat = lat.clamp(-85.0511, 85.0511).to_radians();
    (lng.to_radians(), (PI / 4.0 + lat / 2.0).tan().ln())
}

fn inv_lat(y: f64) -> f64 {
    (2.0 * y.exp().atan() - PI / 2.0).to_degrees()
}

const EARTH_R: f64 = 6_371_007.180_918_475; // h3o's authalic radius, metres

/// A round scale-bar length (1, 2 or 5 × 10^k metres) no longer than `max_m`.
///
/// ```
/// assert_eq!(tessera::render::nice_length(730.0), 500.0);
/// assert_eq!(tessera::render::nice_length(2100.0), 2000.0);
/// assert_eq!(tessera::render::nice_length(99.0), 50.0);
/// ```
pub fn nice_length(max_m: f64) -> f64 {
    let mut best = 1.0;
    let mut p = 1.0;
    while p <= max_m {
        for m in [1.0, 2.0, 5.0] {
            if m * p <= max_m {
                best = m * p;
            }
        }
        p *= 10.0;
    }
    best
}

/// `"500 m"`, `"2 km"`, `"1.5 km"`.
fn metres_label(m: f64) -> String {
    if m >= 1000.0 {
        let km = m / 1000.0;
        if km.fract() == 0.0 {
            format!("{km:.0} km")
        } else {
            format!("{km} km")
        }
    } else {
        format!("{m:.0} m")
    }
}

/// Points (ppm) as a short decimal: `1234567` → `"1.23"`, rounded half up in integers.
///
/// ```
/// assert_eq!(tessera::render::points_label(1_234_567), "1.23");
/// assert_eq!(tessera::render::points_label(15_250_000), "15.3");
/// assert_eq!(tessera::render::points_label(250_000_000), "250");
/// assert_eq!(tessera::render::points_label(4_000), "0.004");
/// ```
pub fn points_label(ppm: i128) -> String {
    let decimals: u32 = match ppm.abs() {
        x if x >= 100_000_000 => 0,
        x if x >= 10_000_000 => 1,
        x if x >= 10_000 => 2,
        _ => 3,
    };
    let unit = 10i128.pow(6 - decimals);
    let q = (ppm + unit / 2).div_euclid(unit);
    if decimals == 0 {
        return q.to_string();
    }
    let d = 10i128.pow(decimals);
    format!("{}.{:0w$}", q / d, q % d, w = decimals as usize)
}

/// The resolution to draw at: the finest (not finer than the data) whose edge is ≥ 2 px.
fn auto_resolution(data: Resolution, metres_per_pixel: f64) -> Resolution {
    let mut r = data;
    while r.edge_length_m() / metres_per_pixel < 2.0 {
        match r.pred() {
            Some(p) => r = p,
            None => break,
        }
    }
    r
}

/// Freshness class index of an age.
fn freshness_class(age: u32) -> usize {
    FRESHNESS_CLASSES
        .iter()
        .position(|c| age >= c.0 && age <= c.1)
        .unwrap_or(FRESHNESS_CLASSES.len() - 1)
}

/// Quantile classes over the positive values: inclusive upper bounds, at most 5, ascending.
fn quantile_bounds(mut positive: Vec<i128>) -> Vec<i128> {
    positive.sort_unstable();
    let n = positive.len();
    let mut ub: Vec<i128> = Vec::new();
    for j in 1..=POINTS_RAMP.len() {
        if n == 0 {
            break;
        }
        let v = positive[(j * n).div_ceil(POINTS_RAMP.len()) - 1];
        if ub.last() != Some(&v) {
            ub.push(v);
        }
    }
    ub
}

/// Draw an epoch's cells.
///
/// ```
/// use tessera::geoparquet::EpochCell;
/// use tessera::render::{render, Options};
/// let e: tessera::epoch::Epoch = "2026-W47".parse().unwrap();
/// let cell = tessera::cells::cell_of(52.52, 13.405, h3o::Resolution::Twelve).unwrap();
/// let cells = vec![EpochCell { cell, first_epoch: e, last_epoch: e, times_covered: 1, age_epochs: 0, visits: 1, points: 2_000_000 }];
/// let map = render(&e, &cells, &Options::default()).unwrap();
/// assert_eq!(&map.png[1..4], b"PNG");
/// assert_eq!(map.legend[0].count, 1);
/// ```
///
/// # Errors
/// [`RenderError::Empty`] without cells, [`RenderError::Option`] for an out-of-range option.
pub fn render(epoch: &Epoch, cells: &[EpochCell], opts: &Options) -> Result<Map, RenderError> {
    let data_res = check(epoch, cells, opts)?;
    let (view, map_w, map_h) = layout::fit(cells, opts)?;
    let draw_res = opts
        .resolution
        .unwrap_or_else(|| auto_resolution(data_res, view.metres_per_pixel));
    let merged = merge(cells, draw_res);
    let (legend, class_of) = classify(&merged, opts.color_by);

    let legend_h = 90 + 30 * legend.len() as u32 + 120;
    let height = (TITLE_H + map_h + FOOTER_H).max(TITLE_H + legend_h);
    let mut pm = Pixmap::new(opts.width, height).expect("size checked");
    pm.fill(Color::WHITE);
    fill_rect(
        &mut pm,
        MARGIN as f32,
        TITLE_H as f32,
        map_w as f32,
        map_h as f32,
        MAP_BG,
    );
    let clip = Rect::from_xywh(MARGIN as f32, TITLE_H as f32, map_w as f32, map_h as f32).expect("rect");
    let mut mask = tiny_skia::Mask::new(opts.width, height).expect("mask");
    mask.fill_path(
        &PathBuilder::from_rect(clip),
        FillRule::Winding,
        false,
        Transform::identity(),
    );
    paint::graticule(&mut pm, &view, &mask);
    layout::cells(
        &mut pm,
        &mask,
        &view,
        &merged,
        &class_of,
        &legend,
        opts.color_by,
        draw_res,
    );
    stroke_rect(
        &mut pm,
        MARGIN as f32,
        TITLE_H as f32,
        map_w as f32,
        map_h as f32,
        FRAME,
    );
    let scale = layout::scale_bar(&mut pm, &view);
    layout::north_arrow(&mut pm, opts.width);
    let footer = footer_text(cells.len(), merged.len(), data_res, draw_res, opts.color_by, &view);
    layout::title_and_footer(&mut pm, epoch, opts, &view, &footer);
    layout::legend_panel(&mut pm, &view, &legend, cells, opts.color_by);
    Ok(Map {
        png: png::encode_png(&pm),
        width: opts.width,
        height,
        drawn_resolution: draw_res,
        cells: cells.len(),
        drawn: merged.len(),
        legend,
        scale,
        view,
    })
}

/// The options must fit and there must be cells; the finest resolution of the data.
fn check(epoch: &Epoch, cells: &[EpochCell], opts: &Options) -> Result<Resolution, RenderError> {
    if cells.is_empty() {
        return Err(RenderError::Empty(epoch.to_string()));
    }
    if !(800..=8000).contains(&opts.width) {
        return Err(RenderError::Option(format!(
            "width {} is outside 800..=8000",
            opts.width
        )));
    }
    let data_res = cells.iter().map(|c| c.cell.resolution()).min().expect("non-empty");
    if let Some(r) = opts.resolution
        && r > data_res
    {
        return Err(RenderError::Option(format!(
            "resolution {} is finer than the lake's cells (resolution {})",
            u8::from(r),
            u8::from(data_res)
        )));
    }
    if let Some(h) = opts.map_height.filter(|h| !(200..=8000).contains(h)) {
        return Err(RenderError::Option(format!("map height {h} is outside 200..=8000")));
    }
    Ok(data_res)
}

/// Cells merged into the drawing resolution: (freshest age, points sum) per parent.
fn merge(cells: &[EpochCell], draw_res: Resolution) -> BTreeMap<CellIndex, (u32, i128)> {
    let mut merged: BTreeMap<CellIndex, (u32, i128)> = BTreeMap::new();
    for c in cells {
        let p = c.cell.parent(draw_res).expect("draw_res <= cell resolution");
        let e = merged.entry(p).or_insert((u32::MAX, 0));
        e.0 = e.0.min(c.age_epochs);
        e.1 += c.points;
    }
    merged
}

/// The legend rows (with counts) and each merged cell's row.
fn classify(merged: &BTreeMap<CellIndex, (u32, i128)>, color_by: ColorBy) -> (Vec<LegendEntry>, Vec<usize>) {
    let (mut legend, class_of) = match color_by {
        ColorBy::Freshness => {
            let legend = FRESHNESS_CLASSES
                .iter()
                .map(|c| LegendEntry {
                    label: c.2.to_string(),
                    color: c.3,
                    count: 0,
                })
                .collect();
            (legend, merged.values().map(|(age, _)| freshness_class(*age)).collect())
        }
        ColorBy::Points => points_classes(merged),
    };
    for k in &class_of {
        legend[*k].count += 1;
    }
    (legend, class_of)
}

/// Quantile classes of the positive points, labelled with each class's smallest and largest
/// value (rounded to about 3 significant digits; exact values are in explain.parquet), the used
/// colours spread over the ramp, and a last class for cells without points.
fn points_classes(merged: &BTreeMap<CellIndex, (u32, i128)>) -> (Vec<LegendEntry>, Vec<usize>) {
    let ub = quantile_bounds(merged.values().map(|v| v.1).filter(|p| *p > 0).collect());
    let mut lo_hi: Vec<(i128, i128)> = vec![(i128::MAX, i128::MIN); ub.len()];
    let class_of = merged
        .values()
        .map(|(_, p)| {
            if *p <= 0 {
                return ub.len();
            }
            let k = ub.iter().position(|b| p <= b).expect("max is a bound");
            lo_hi[k] = (lo_hi[k].0.min(*p), lo_hi[k].1.max(*p));
            k
        })
        .collect();
    let n = ub.len();
    let mut legend: Vec<LegendEntry> = (0..n)
        .map(|k| {
            let ci = if n == 1 {
                POINTS_RAMP.len() - 1
            } else {
                k * (POINTS_RAMP.len() - 1) / (n - 1)
            };
            let (lo, hi) = lo_hi[k];
            let label = if lo == hi {
                format!("{} points", points_label(lo))
            } else {
                format!("{} - {} points", points_label(lo), points_label(hi))
            };
            LegendEntry {
                label,
                color: POINTS_RAMP[ci],
                count: 0,
            }
        })
        .collect();
    legend.push(LegendEntry {
        label: "no points this epoch".into(),
        color: NO_POINTS,
        count: 0,
    });
    (legend, class_of)
}

/// What the footer says about the cells and how they were drawn.
fn footer_text(
    n: usize,
    drawn: usize,
    data_res: Resolution,
    draw_res: Resolution,
    color_by: ColorBy,
    view: &View,
) -> String {
    if draw_res == data_res {
        return format!(
            "{n} H3 res {} cells; Web Mercator; {:.1} m/px",
            u8::from(data_res),
            view.metres_per_pixel
        );
    }
    let how = match color_by {
        ColorBy::Freshness => "freshest child",
        ColorBy::Points => "sum of points",
    };
    format!(
        "{n} H3 res {} cells drawn as {drawn} res {} parents ({how}); {:.1} m/px",
        u8::from(data_res),
        u8::from(draw_res),
        view.metres_per_pixel
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Epoch {
        s.parse().unwrap()
    }

    /// A strip of res-12 cells east of a point, with ages 0..n and points 0..n.
    fn strip(n: usize) -> Vec<EpochCell> {
        strip_from((52.52, 13.405), (52.52, 13.425), n)
    }

    fn strip_from(a: (f64, f64), b: (f64, f64), n: usize) -> Vec<EpochCell> {
        let ep = e("2026-W47");
        let start = crate::cells::cell_of(a.0, a.1, Resolution::Twelve).unwrap();
        let end = crate::cells::cell_of(b.0, b.1, Resolution::Twelve).unwrap();
        let path: Vec<CellIndex> = start.grid_path_cells(end).unwrap().map(|c| c.unwrap()).collect();
        path.into_iter()
            .take(n)
            .enumerate()
            .map(|(i, cell)| EpochCell {
                cell,
                first_epoch: ep,
                last_epoch: ep,
                times_covered: 1,
                age_epochs: (i % 10) as u32,
                visits: 1,
                points: (i as i128 % 7) * 1_000_000,
            })
            .collect()
    }

    fn pixel(map: &Map, x: f64, y: f64) -> [u8; 3] {
        let pm = Pixmap::decode_png(&map.png).unwrap();
        let p = pm.pixel(x as u32, y as u32).unwrap();
        [p.red(), p.green(), p.blue()]
    }

    #[test]
    fn rule_a_trace_across_the_antimeridian_is_drawn_as_one_local_map() {
        // A 300 m drive across 180° at 16.8°S: the map stays at street scale on both sides.
        let cells = strip_from((-16.8, 179.9985), (-16.8, -179.9985), 200);
        assert!(
            cells.iter().any(|c| LatLng::from(c.cell).lng() < 0.0)
                && cells.iter().any(|c| LatLng::from(c.cell).lng() > 0.0)
        );
        let map = render(&e("2026-W47"), &cells, &Options::default()).unwrap();
        assert!(map.view.metres_per_pixel < 5.0, "{} m/px", map.view.metres_per_pixel);
        assert_eq!(map.drawn_resolution, Resolution::Twelve);
        for c in &cells {
            let (x, y) = map.view.pixel(LatLng::from(c.cell));
            let (l, t, w, h) = map.view.map_area;
            assert!(
                x > l as f64 && x < (l + w) as f64 && y > t as f64 && y < (t + h) as f64,
                "{x},{y}"
            );
        }
    }

    #[test]
    fn rule_each_cell_is_filled_with_its_freshness_class_colour() {
        let cells = strip(40);
        let map = render(
            &e("2026-W47"),
            &cells,
            &Options {
                resolution: Some(Resolution::Twelve),
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(map.drawn, cells.len());
        for c in &cells {
            let (x, y) = map.view.pixel(LatLng::from(c.cell));
            let want = FRESHNESS_CLASSES[freshness_class(c.age_epochs)].3;
            assert_eq!(pixel(&map, x, y), want, "cell {} age {}", c.cell, c.age_epochs);
        }
        let counts: Vec<usize> = map.legend.iter().map(|l| l.count).collect();
        assert_eq!(counts, vec![4, 4, 8, 16, 8]); // ages 0..9 four times
    }

    #[test]
    fn rule_points_classes_are_quantiles_of_the_positive_points_with_exact_ranges() {
        let cells = strip(35);
        let map = render(
            &e("2026-W47"),
            &cells,
            &Options {
                color_by: ColorBy::Points,
                resolution: Some(Resolution::Twelve),
                ..Options::default()
            },
        )
        .unwrap();
        let labels: Vec<&str> = map.legend.iter().map(|l| l.label.as_str()).collect();
        // positive values 1..6 × 5 each (30 cells): quantile bounds 2, 3, 4, 5, 6 — value 1 joins 2.
        assert_eq!(
            labels,
            vec![
                "1.00 - 2.00 points",
                "3.00 points",
                "4.00 points",
                "5.00 points",
                "6.00 points",
                "no points this epoch"
            ]
        );
        assert_eq!(map.legend.iter().map(|l| l.count).sum::<usize>(), 35);
        assert_eq!(map.legend.last().unwrap().count, 5);
        for c in &cells {
            let (x, y) = map.view.pixel(LatLng::from(c.cell));
            let k = map
                .legend
                .iter()
                .position(|l| pixel(&map, x, y) == l.color)
                .expect("cell centre has a legend colour");
            if c.points == 0 {
                assert_eq!(k, map.legend.len() - 1);
            } else {
                assert!(map.legend[k].label.contains(&points_label(c.points)) || k == 0);
            }
        }
    }

    #[test]
    fn rule_tiny_cells_are_merged_into_parents_of_at_least_two_pixels() {
        let cells = strip(40);
        let map = render(&e("2026-W47"), &cells, &Options::default()).unwrap();
        let edge = map.drawn_resolution.edge_length_m() / map.view.metres_per_pixel;
        assert!(edge >= 2.0, "edge {edge} px");
        if let Some(finer) = map.drawn_resolution.succ() {
            assert!(finer > Resolution::Twelve || finer.edge_length_m() / map.view.metres_per_pixel < 2.0);
        }
        // A 40-cell strip over 300 m: res 12 cells (~9 m edge) stay at res 12 on a 800 px map.
        assert_eq!(map.drawn_resolution, Resolution::Twelve);
        let wide = Options {
            width: 800,
            ..Options::default()
        };
        let mut spread = cells.clone();
        let far = crate::cells::cell_of(52.70, 13.80, Resolution::Twelve).unwrap();
        spread.push(EpochCell {
            cell: far,
            ..cells[0].clone()
        });
        let m2 = render(&e("2026-W47"), &spread, &wide).unwrap();
        assert!(m2.drawn_resolution < Resolution::Twelve);
        assert!(m2.drawn < spread.len());
        assert_eq!(m2.legend.iter().map(|l| l.count).sum::<usize>(), m2.drawn);
    }

    #[test]
    fn rule_scale_bar_is_a_round_length_at_most_a_quarter_of_the_map() {
        let map = render(&e("2026-W47"), &strip(40), &Options::default()).unwrap();
        let metres: f64 = match map.scale.strip_suffix(" km") {
            Some(km) => km.parse::<f64>().unwrap() * 1000.0,
            None => map.scale.strip_suffix(" m").unwrap().parse().unwrap(),
        };
        let mantissa = metres / 10f64.powf(metres.log10().floor());
        assert!([1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-9), "{metres}");
        let px = metres / map.view.metres_per_pixel;
        assert!(px <= map.view.map_area.2 as f64 * 0.25 + 1e-9 && px > map.view.map_area.2 as f64 * 0.05);
    }

    #[test]
    fn same_cells_give_the_same_bytes_in_any_order() {
        let cells = strip(40);
        let a = render(&e("2026-W47"), &cells, &Options::default()).unwrap();
        let mut rev = cells.clone();
        rev.reverse();
        let b = render(&e("2026-W47"), &rev, &Options::default()).unwrap();
        assert_eq!(a.png, b.png);
    }

    #[test]
    fn bad_options_and_empty_input_are_clear_errors() {
        let ep = e("2026-W47");
        assert_eq!(
            render(&ep, &[], &Options::default()).unwrap_err().to_string(),
            "epoch 2026-W47 has no covered cells to draw"
        );
        let err = render(
            &ep,
            &strip(3),
            &Options {
                resolution: Some(Resolution::Thirteen),
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("finer than the lake's cells (resolution 12)"),
            "{err}"
        );
        let err = render(
            &ep,
            &strip(3),
            &Options {
                width: 10,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("width 10"), "{err}");
    }
}

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
use tiny_skia::{Color, FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

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
    pub fn pixel(&self, ll: LatLng) -> (f64, f64) {
        self.pixel_deg(ll.lat(), ll.lng())
    }

    fn pixel_deg(&self, lat: f64, lng: f64) -> (f64, f64) {
        let (x, y) = merc_deg(lat, lng);
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

fn merc(ll: LatLng) -> (f64, f64) {
    merc_deg(ll.lat(), ll.lng())
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
    points_label_extra(ppm, 0)
}

/// [`points_label`] with `extra` more decimals (at most 6 in all).
fn points_label_extra(ppm: i128, extra: u32) -> String {
    let decimals: u32 = match ppm.abs() {
        x if x >= 100_000_000 => 0,
        x if x >= 10_000_000 => 1,
        x if x >= 10_000 => 2,
        _ => 3,
    };
    let decimals = (decimals + extra).min(6);
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
pub fn render(epoch: &Epoch, cells: &[EpochCell], opts: &Options) -> Result<Map, RenderError> {
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
    if let Some(r) = opts.resolution {
        if r > data_res {
            return Err(RenderError::Option(format!(
                "resolution {} is finer than the lake's cells (resolution {})",
                u8::from(r),
                u8::from(data_res)
            )));
        }
    }

    // Extent in Mercator units (radians), padded.
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for c in cells {
        for v in c.cell.boundary().iter() {
            let (x, y) = merc(*v);
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    let lat_c = inv_lat((y0 + y1) / 2.0);
    let cos_c = lat_c.to_radians().cos();
    // At least 300 m across so one cell does not fill the image.
    let min_span = 300.0 / (EARTH_R * cos_c);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let half_w = ((x1 - x0).max(min_span) / 2.0) * 1.06;
    let half_h = ((y1 - y0).max(min_span) / 2.0) * 1.06;

    let map_w = opts.width - LEGEND_W - 3 * MARGIN;
    let map_h = match opts.map_height {
        Some(h) => {
            if !(200..=8000).contains(&h) {
                return Err(RenderError::Option(format!("map height {h} is outside 200..=8000")));
            }
            h
        }
        None => ((map_w as f64) * half_h / half_w).round().clamp(360.0, 1400.0) as u32,
    };
    let scale = (map_w as f64 / (2.0 * half_w)).min(map_h as f64 / (2.0 * half_h));
    let (left, top) = (MARGIN as f64, TITLE_H as f64);
    let view = View {
        x0: cx - (map_w as f64 / 2.0) / scale,
        y1: cy + (map_h as f64 / 2.0) / scale,
        scale,
        left,
        top,
        map_area: (MARGIN, TITLE_H, map_w, map_h),
        metres_per_pixel: EARTH_R * cos_c / scale,
    };
    let draw_res = opts
        .resolution
        .unwrap_or_else(|| auto_resolution(data_res, view.metres_per_pixel));

    // Merge into the drawing resolution: (freshest age, points sum).
    let mut merged: BTreeMap<CellIndex, (u32, i128)> = BTreeMap::new();
    for c in cells {
        let p = c.cell.parent(draw_res).expect("draw_res <= cell resolution");
        let e = merged.entry(p).or_insert((u32::MAX, 0));
        e.0 = e.0.min(c.age_epochs);
        e.1 += c.points;
    }

    // Classes.
    let mut legend: Vec<LegendEntry>;
    let class_of: Vec<usize>;
    match opts.color_by {
        ColorBy::Freshness => {
            legend = FRESHNESS_CLASSES
                .iter()
                .map(|c| LegendEntry {
                    label: c.2.to_string(),
                    color: c.3,
                    count: 0,
                })
                .collect();
            class_of = merged.values().map(|(age, _)| freshness_class(*age)).collect();
        }
        ColorBy::Points => {
            let ub = quantile_bounds(merged.values().map(|v| v.1).filter(|p| *p > 0).collect());
            let mut lo_hi: Vec<(i128, i128)> = vec![(i128::MAX, i128::MIN); ub.len()];
            class_of = merged
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
            // Labels show each class's smallest and largest value, rounded to about 3 significant
            // digits (so a class's top can read like the next one's bottom); exact values are in
            // explain.parquet.
            let extra = 0;
            // Spread the used colours over the ramp so few classes still span light..dark.
            let n = ub.len();
            legend = (0..n)
                .map(|k| {
                    let ci = if n == 1 {
                        POINTS_RAMP.len() - 1
                    } else {
                        k * (POINTS_RAMP.len() - 1) / (n - 1)
                    };
                    let (lo, hi) = lo_hi[k];
                    let label = if lo == hi {
                        format!("{} points", points_label_extra(lo, extra))
                    } else {
                        format!(
                            "{} - {} points",
                            points_label_extra(lo, extra),
                            points_label_extra(hi, extra)
                        )
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
        }
    }
    for k in &class_of {
        legend[*k].count += 1;
    }

    // Canvas.
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

    graticule(&mut pm, &view, &mask);

    // Cells, stale/low first so the interesting classes are drawn last.
    let mut order: Vec<(usize, CellIndex)> = merged.keys().zip(&class_of).map(|(c, k)| (*k, *c)).collect();
    match opts.color_by {
        ColorBy::Freshness => order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))),
        ColorBy::Points => order.sort_by(|a, b| {
            let ra = if a.0 == legend.len() - 1 { -1 } else { a.0 as i64 };
            let rb = if b.0 == legend.len() - 1 { -1 } else { b.0 as i64 };
            ra.cmp(&rb).then(a.1.cmp(&b.1))
        }),
    }
    let edge_px = draw_res.edge_length_m() / view.metres_per_pixel;
    for (k, cell) in &order {
        let mut pb = PathBuilder::new();
        for (i, v) in cell.boundary().iter().enumerate() {
            let (px, py) = view.pixel(*v);
            if i == 0 {
                pb.move_to(px as f32, py as f32);
            } else {
                pb.line_to(px as f32, py as f32);
            }
        }
        pb.close();
        let Some(path) = pb.finish() else { continue };
        let mut paint = Paint::default();
        let [r, g, b] = legend[*k].color;
        paint.set_color_rgba8(r, g, b, 255);
        paint.anti_alias = true;
        pm.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), Some(&mask));
        if edge_px >= 8.0 {
            let mut outline = Paint::default();
            outline.set_color_rgba8(255, 255, 255, 150);
            outline.anti_alias = true;
            let stroke = Stroke {
                width: 0.75,
                ..Stroke::default()
            };
            pm.stroke_path(&path, &outline, &stroke, Transform::identity(), Some(&mask));
        }
    }
    stroke_rect(
        &mut pm,
        MARGIN as f32,
        TITLE_H as f32,
        map_w as f32,
        map_h as f32,
        FRAME,
    );

    // Scale bar under the map, right-aligned (it never hides cells).
    let bar_m = nice_length(map_w as f64 * 0.25 * view.metres_per_pixel);
    let bar_px = (bar_m / view.metres_per_pixel) as f32;
    let scale_label = metres_label(bar_m);
    let (bx, by) = (
        (MARGIN + map_w) as f32 - bar_px - 14.0 - text_width(&scale_label, 2) as f32,
        (TITLE_H + map_h) as f32 + 6.0,
    );
    fill_rect(&mut pm, bx, by + 14.0, bar_px / 2.0, 6.0, INK);
    fill_rect(
        &mut pm,
        bx + bar_px / 2.0,
        by + 14.0,
        bar_px / 2.0,
        6.0,
        [255, 255, 255],
    );
    stroke_rect(&mut pm, bx, by + 14.0, bar_px, 6.0, INK);
    text(&mut pm, "0", bx as i32 - 4, by as i32 - 4, 1, INK);
    text(
        &mut pm,
        &scale_label,
        (bx + bar_px + 10.0) as i32,
        by as i32 + 9,
        2,
        INK,
    );
    // North arrow, top right of the legend panel.
    let (nx, ny) = ((opts.width - MARGIN) as i32 - 24, TITLE_H as i32 + 4);
    let mut pb = PathBuilder::new();
    pb.move_to(nx as f32 + 8.0, ny as f32);
    pb.line_to(nx as f32 + 15.0, ny as f32 + 18.0);
    pb.line_to(nx as f32 + 1.0, ny as f32 + 18.0);
    pb.close();
    if let Some(p) = pb.finish() {
        let mut paint = Paint::default();
        paint.set_color_rgba8(INK[0], INK[1], INK[2], 255);
        paint.anti_alias = true;
        pm.fill_path(&p, &paint, FillRule::Winding, Transform::identity(), None);
    }
    text(&mut pm, "N", nx, ny + 22, 2, INK);

    // Title and footer.
    let what = match opts.color_by {
        ColorBy::Freshness => "coverage freshness",
        ColorBy::Points => "points earned per cell",
    };
    let title = format!("tessera  epoch {epoch}  {what}");
    let title_scale = if text_width(&title, 3) + 2 * MARGIN <= opts.width {
        3
    } else {
        2
    };
    text(&mut pm, &title, MARGIN as i32, 16, title_scale, INK);
    let footer = if draw_res == data_res {
        format!(
            "{} H3 res {} cells; Web Mercator; {:.1} m/px",
            cells.len(),
            u8::from(data_res),
            view.metres_per_pixel
        )
    } else {
        format!(
            "{} H3 res {} cells drawn as {} res {} parents ({}); {:.1} m/px",
            cells.len(),
            u8::from(data_res),
            merged.len(),
            u8::from(draw_res),
            match opts.color_by {
                ColorBy::Freshness => "freshest child",
                ColorBy::Points => "sum of points",
            },
            view.metres_per_pixel
        )
    };
    text(&mut pm, &footer, MARGIN as i32, (TITLE_H + map_h + 36) as i32, 1, INK);

    // Legend.
    let lx = (MARGIN * 2 + map_w) as i32 + 4;
    let mut ly = TITLE_H as i32 + 4;
    let head = match opts.color_by {
        ColorBy::Freshness => "Last covered",
        ColorBy::Points => "Points this epoch",
    };
    text(&mut pm, head, lx, ly, 2, INK);
    ly += 28;
    text(&mut pm, "(cells drawn)", lx, ly, 1, INK);
    ly += 22;
    for entry in &legend {
        fill_rect(&mut pm, lx as f32, ly as f32, 22.0, 18.0, entry.color);
        stroke_rect(&mut pm, lx as f32, ly as f32, 22.0, 18.0, FRAME);
        text(&mut pm, &entry.label, lx + 30, ly + 1, 2, INK);
        text(
            &mut pm,
            &format!("{} cells", entry.count),
            lx + 30,
            ly + 19,
            1,
            [0x60, 0x66, 0x6c],
        );
        ly += 30;
    }
    ly += 16;
    let totals = [
        format!("cells covered: {}", cells.len()),
        format!(
            "mapped this epoch: {}",
            cells.iter().filter(|c| c.age_epochs == 0).count()
        ),
        format!("visits: {}", cells.iter().map(|c| c.visits as u64).sum::<u64>()),
        format!("points: {}", points_label(cells.iter().map(|c| c.points).sum())),
    ];
    for t in totals {
        text(&mut pm, &t, lx, ly, 1, INK);
        ly += 14;
    }

    let png = encode_png(&pm);
    Ok(Map {
        png,
        width: opts.width,
        height,
        drawn_resolution: draw_res,
        cells: cells.len(),
        drawn: merged.len(),
        legend,
        scale: scale_label,
        view,
    })
}

/// PNG (8-bit RGB, Sub filter, zlib level 6 by miniz_oxide) of an opaque pixmap. Encoded here
/// rather than by tiny-skia's `png` dependency because that one picks its deflate backend from
/// whatever cargo features the rest of the build enables, so the same pixels came out as different
/// bytes from the CLI and from the Python extension; miniz_oxide is pure Rust, pinned by
/// Cargo.lock, and its output depends only on the input and the level.
fn encode_png(pm: &Pixmap) -> Vec<u8> {
    let (w, h) = (pm.width() as usize, pm.height() as usize);
    let mut raw = Vec::with_capacity(h * (1 + 3 * w));
    for row in pm.data().chunks_exact(4 * w) {
        raw.push(1); // Sub: each byte minus the same channel of the pixel to its left
        let mut prev = [0u8; 3];
        for px in row.chunks_exact(4) {
            // Every pixel is opaque (white canvas, opaque fills): premultiplied = straight.
            for c in 0..3 {
                raw.push(px[c].wrapping_sub(prev[c]));
                prev[c] = px[c];
            }
        }
    }
    let idat = miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filters, no interlace
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    out
}

/// Light lat/lng lines every round step, labelled at the map edges.
fn graticule(pm: &mut Pixmap, view: &View, mask: &tiny_skia::Mask) {
    let (l, t, w, h) = view.map_area;
    let (l, t, w, h) = (l as f64, t as f64, w as f64, h as f64);
    let lng_at = |px: f64| (view.x0 + (px - view.left) / view.scale).to_degrees();
    let lat_at = |py: f64| inv_lat(view.y1 - (py - view.top) / view.scale);
    let (lng0, lng1) = (lng_at(l), lng_at(l + w));
    let (lat1, lat0) = (lat_at(t), lat_at(t + h));
    let step = {
        let span = (lng1 - lng0).max(lat1 - lat0) / 6.0;
        let mut s = 1e-4;
        for cand in [
            1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 45.0,
        ] {
            if cand <= span {
                s = cand;
            }
        }
        s
    };
    let decimals = (-step.log10()).ceil().max(0.0) as usize;
    let mut paint = Paint::default();
    paint.set_color_rgba8(GRID[0], GRID[1], GRID[2], 255);
    let stroke = Stroke {
        width: 1.0,
        ..Stroke::default()
    };
    let mut k = (lng0 / step).ceil() as i64;
    while (k as f64) * step <= lng1 {
        let lng = k as f64 * step;
        let (px, _) = view.pixel_deg(lat0, lng);
        let px = px.round() as f32 + 0.5;
        let mut pb = PathBuilder::new();
        pb.move_to(px, t as f32);
        pb.line_to(px, (t + h) as f32);
        if let Some(p) = pb.finish() {
            pm.stroke_path(&p, &paint, &stroke, Transform::identity(), Some(mask));
        }
        let label = format!("{lng:.decimals$}");
        text(pm, &label, px as i32 + 3, (t + h) as i32 - 12, 1, [0x70, 0x78, 0x80]);
        k += 1;
    }
    let mut k = (lat0 / step).ceil() as i64;
    while (k as f64) * step <= lat1 {
        let lat = k as f64 * step;
        let (_, py) = view.pixel_deg(lat, lng0);
        let py = py.round() as f32 + 0.5;
        let mut pb = PathBuilder::new();
        pb.move_to(l as f32, py);
        pb.line_to((l + w) as f32, py);
        if let Some(p) = pb.finish() {
            pm.stroke_path(&p, &paint, &stroke, Transform::identity(), Some(mask));
        }
        let label = format!("{lat:.decimals$}");
        text(pm, &label, l as i32 + 3, py as i32 - 10, 1, [0x70, 0x78, 0x80]);
        k += 1;
    }
}

fn fill_rect(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, c: [u8; 3]) {
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        let mut paint = Paint::default();
        paint.set_color_rgba8(c[0], c[1], c[2], 255);
        pm.fill_rect(r, &paint, Transform::identity(), None);
    }
}

fn stroke_rect(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, c: [u8; 3]) {
    if let Some(r) = Rect::from_xywh(x + 0.5, y + 0.5, w - 1.0, h - 1.0) {
        let mut paint = Paint::default();
        paint.set_color_rgba8(c[0], c[1], c[2], 255);
        let stroke = Stroke {
            width: 1.0,
            ..Stroke::default()
        };
        pm.stroke_path(&PathBuilder::from_rect(r), &paint, &stroke, Transform::identity(), None);
    }
}

fn glyph(ch: char) -> [u8; 8] {
    let c = ch as u32;
    if c < 128 {
        font8x8::legacy::BASIC_LEGACY[c as usize]
    } else if (0xA0..0x100).contains(&c) {
        font8x8::legacy::LATIN_LEGACY[(c - 0xA0) as usize]
    } else {
        font8x8::legacy::BASIC_LEGACY[b'?' as usize]
    }
}

/// Advance per character at `scale`: glyphs are 8 px wide with (mostly) one empty column.
fn advance(scale: u32) -> u32 {
    7 * scale
}

fn text_width(s: &str, scale: u32) -> u32 {
    s.chars().count() as u32 * advance(scale)
}

/// Bitmap text (font8x8), top-left at (x, y), each font pixel `scale`×`scale`.
fn text(pm: &mut Pixmap, s: &str, x: i32, y: i32, scale: u32, c: [u8; 3]) {
    let (w, h) = (pm.width() as i32, pm.height() as i32);
    let data = pm.data_mut();
    let mut cx = x;
    for ch in s.chars() {
        let g = glyph(ch);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..scale as i32 {
                    for dx in 0..scale as i32 {
                        let px = cx + col * scale as i32 + dx;
                        let py = y + row as i32 * scale as i32 + dy;
                        if px >= 0 && py >= 0 && px < w && py < h {
                            let i = ((py * w + px) * 4) as usize;
                            data[i..i + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
                        }
                    }
                }
            }
        }
        cx += advance(scale) as i32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Epoch {
        s.parse().unwrap()
    }

    /// A strip of res-12 cells east of a point, with ages 0..n and points 0..n.
    fn strip(n: usize) -> Vec<EpochCell> {
        let ep = e("2026-W47");
        let start = crate::cells::cell_of(52.52, 13.405, Resolution::Twelve).unwrap();
        let end = crate::cells::cell_of(52.52, 13.425, Resolution::Twelve).unwrap();
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

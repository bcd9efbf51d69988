//! Where things go on the image: the map's extent and projection, the cells, the scale bar, the
//! north arrow, title, footer and legend panel.

use super::paint::{fill_rect, stroke_rect, text, text_width};
use super::{
    inv_lat, merc_deg, metres_label, nice_length, points_label, unwrap_lng, ColorBy, LegendEntry, Options, RenderError,
    View, EARTH_R, FRAME, INK, LEGEND_W, MARGIN, TITLE_H,
};
use crate::epoch::Epoch;
use crate::geoparquet::EpochCell;
use h3o::{CellIndex, Resolution};
use std::collections::BTreeMap;
use tiny_skia::{FillRule, Mask, Paint, PathBuilder, Pixmap, Stroke, Transform};

/// The projection that fits every cell (padded, at least 300 m across), and the map's width and
/// height in pixels.
pub(super) fn fit(cells: &[EpochCell], opts: &Options) -> Result<(View, u32, u32), RenderError> {
    // Extent in Mercator units (radians), padded.
    // Longitudes unwrapped around the first cell's, so cells on both sides of 180° are neighbours.
    let lon0 = cells.first().map_or(0.0, |c| h3o::LatLng::from(c.cell).lng());
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for c in cells {
        for v in c.cell.boundary().iter() {
            let (x, y) = merc_deg(v.lat(), unwrap_lng(v.lng(), lon0));
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
        Some(h) => h,
        None => ((map_w as f64) * half_h / half_w).round().clamp(360.0, 1400.0) as u32,
    };
    let scale = (map_w as f64 / (2.0 * half_w)).min(map_h as f64 / (2.0 * half_h));
    let view = View {
        lon0,
        x0: cx - (map_w as f64 / 2.0) / scale,
        y1: cy + (map_h as f64 / 2.0) / scale,
        scale,
        left: MARGIN as f64,
        top: TITLE_H as f64,
        map_area: (MARGIN, TITLE_H, map_w, map_h),
        metres_per_pixel: EARTH_R * cos_c / scale,
    };
    Ok((view, map_w, map_h))
}

/// Fill every merged cell with its class colour, stale/low classes first so the interesting ones
/// are drawn last; white outlines once cells are big enough.
#[allow(clippy::too_many_arguments)]
pub(super) fn cells(
    pm: &mut Pixmap,
    mask: &Mask,
    view: &View,
    merged: &BTreeMap<CellIndex, (u32, i128)>,
    class_of: &[usize],
    legend: &[LegendEntry],
    color_by: ColorBy,
    draw_res: Resolution,
) {
    let mut order: Vec<(usize, CellIndex)> = merged.keys().zip(class_of).map(|(c, k)| (*k, *c)).collect();
    match color_by {
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
        pm.fill_path(&path, &paint, FillRule::Winding, Transform::identity(), Some(mask));
        if edge_px >= 8.0 {
            let mut outline = Paint::default();
            outline.set_color_rgba8(255, 255, 255, 150);
            outline.anti_alias = true;
            let stroke = Stroke {
                width: 0.75,
                ..Stroke::default()
            };
            pm.stroke_path(&path, &outline, &stroke, Transform::identity(), Some(mask));
        }
    }
}

/// The scale bar under the map, right-aligned (it never hides cells); its label.
pub(super) fn scale_bar(pm: &mut Pixmap, view: &View) -> String {
    let (_, _, map_w, map_h) = view.map_area;
    let bar_m = nice_length(map_w as f64 * 0.25 * view.metres_per_pixel);
    let bar_px = (bar_m / view.metres_per_pixel) as f32;
    let scale_label = metres_label(bar_m);
    let (bx, by) = (
        (MARGIN + map_w) as f32 - bar_px - 14.0 - text_width(&scale_label, 2) as f32,
        (TITLE_H + map_h) as f32 + 6.0,
    );
    fill_rect(pm, bx, by + 14.0, bar_px / 2.0, 6.0, INK);
    fill_rect(pm, bx + bar_px / 2.0, by + 14.0, bar_px / 2.0, 6.0, [255, 255, 255]);
    stroke_rect(pm, bx, by + 14.0, bar_px, 6.0, INK);
    text(pm, "0", bx as i32 - 4, by as i32 - 4, 1, INK);
    text(pm, &scale_label, (bx + bar_px + 10.0) as i32, by as i32 + 9, 2, INK);
    scale_label
}

/// A north arrow at the top right of the legend panel.
pub(super) fn north_arrow(pm: &mut Pixmap, width: u32) {
    let (nx, ny) = ((width - MARGIN) as i32 - 24, TITLE_H as i32 + 4);
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
    text(pm, "N", nx, ny + 22, 2, INK);
}

/// The title above the map and the footer under it.
pub(super) fn title_and_footer(pm: &mut Pixmap, epoch: &Epoch, opts: &Options, view: &View, footer: &str) {
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
    text(pm, &title, MARGIN as i32, 16, title_scale, INK);
    let (_, _, _, map_h) = view.map_area;
    text(pm, footer, MARGIN as i32, (TITLE_H + map_h + 36) as i32, 1, INK);
}

/// The legend panel right of the map: heading, one row per class with its count, then totals.
pub(super) fn legend_panel(
    pm: &mut Pixmap,
    view: &View,
    legend: &[LegendEntry],
    cells: &[EpochCell],
    color_by: ColorBy,
) {
    let (_, _, map_w, _) = view.map_area;
    let lx = (MARGIN * 2 + map_w) as i32 + 4;
    let mut ly = TITLE_H as i32 + 4;
    let head = match color_by {
        ColorBy::Freshness => "Last covered",
        ColorBy::Points => "Points this epoch",
    };
    text(pm, head, lx, ly, 2, INK);
    ly += 28;
    text(pm, "(cells drawn)", lx, ly, 1, INK);
    ly += 22;
    for entry in legend {
        fill_rect(pm, lx as f32, ly as f32, 22.0, 18.0, entry.color);
        stroke_rect(pm, lx as f32, ly as f32, 22.0, 18.0, FRAME);
        text(pm, &entry.label, lx + 30, ly + 1, 2, INK);
        text(
            pm,
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
        text(pm, &t, lx, ly, 1, INK);
        ly += 14;
    }
}

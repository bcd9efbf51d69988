//! Drawing primitives on the pixmap: rectangles, bitmap text (font8x8) and the graticule.

use super::{inv_lat, View, GRID};
use tiny_skia::{Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};

/// Light lat/lng lines every round step, labelled at the map edges.
pub(super) fn graticule(pm: &mut Pixmap, view: &View, mask: &tiny_skia::Mask) {
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

pub(super) fn fill_rect(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, c: [u8; 3]) {
    if let Some(r) = Rect::from_xywh(x, y, w, h) {
        let mut paint = Paint::default();
        paint.set_color_rgba8(c[0], c[1], c[2], 255);
        pm.fill_rect(r, &paint, Transform::identity(), None);
    }
}

pub(super) fn stroke_rect(pm: &mut Pixmap, x: f32, y: f32, w: f32, h: f32, c: [u8; 3]) {
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
pub(super) fn advance(scale: u32) -> u32 {
    7 * scale
}

pub(super) fn text_width(s: &str, scale: u32) -> u32 {
    s.chars().count() as u32 * advance(scale)
}

/// Bitmap text (font8x8), top-left at (x, y), each font pixel `scale`×`scale`.
pub(super) fn text(pm: &mut Pixmap, s: &str, x: i32, y: i32, scale: u32, c: [u8; 3]) {
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

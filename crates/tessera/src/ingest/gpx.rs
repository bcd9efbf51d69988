//! GPX 1.0/1.1 tracks: each `<trkpt>` becomes a fix or a rejection naming its line.

use super::nmea::Parsed;
use crate::fix::Fix;
use crate::report::{Reason, Rejection};

/// 1-based line numbers of every `<trkpt` tag, in document order (which is the order the `gpx`
/// crate yields points in).
fn trkpt_lines(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let mut line = 1u32;
    let bytes = text.as_bytes();
    let needle = b"<trkpt";
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            line += 1;
        } else if bytes[i] == b'<' && bytes[i..].starts_with(needle) {
            out.push(line);
        }
        i += 1;
    }
    out
}

/// Parse a GPX document.
///
/// ```
/// let gpx = r#"<?xml version="1.0"?>
/// <gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>
/// <trkpt lat="52.5" lon="13.4"><ele>35</ele><time>2026-11-16T10:15:00Z</time><hdop>0.9</hdop><sat>7</sat></trkpt>
/// <trkpt lat="52.6" lon="13.4"></trkpt>
/// </trkseg></trk></gpx>"#;
/// let p = tessera::ingest::gpx::parse(gpx.as_bytes());
/// assert_eq!(p.fixes.len(), 1);
/// assert_eq!(p.fixes[0].sats, Some(7));
/// assert_eq!(p.rejections[0].reason.as_str(), "no_time");
/// assert_eq!(p.rejections[0].line, 4);
/// ```
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    let text = String::from_utf8_lossy(bytes);
    let lines = trkpt_lines(&text);
    let doc = match gpx::read(bytes) {
        Ok(d) => d,
        Err(e) => {
            // The whole document is unusable: every point in it is accounted for as rejected.
            let n = lines.len().max(1);
            out.lines.total = n as u64;
            out.lines.rejected = n as u64;
            let detail = format!("GPX parse error: {e}");
            if lines.is_empty() {
                out.rejections.push(Rejection::at(0, Reason::BadFile, detail));
            } else {
                for l in lines {
                    out.rejections.push(Rejection::at(l, Reason::BadFile, detail.clone()));
                }
            }
            return out;
        }
    };
    let mut k = 0usize;
    for trk in &doc.tracks {
        for seg in &trk.segments {
            for p in &seg.points {
                let line = lines.get(k).copied().unwrap_or(0);
                k += 1;
                out.lines.total += 1;
                let pt = p.point();
                let (lon, lat) = (pt.x(), pt.y());
                let time_ms = p.time.map(|t| {
                    let odt: time::OffsetDateTime = t.into();
                    (odt.unix_timestamp_nanos() / 1_000_000) as i64
                });
                let reject = |reason, detail: String| Rejection {
                    line,
                    reason,
                    detail,
                    time_ms,
                    lat: Some(lat),
                    lon: Some(lon),
                };
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    out.lines.rejected += 1;
                    out.rejections
                        .push(reject(Reason::BadPosition, format!("lat {lat} lon {lon} out of range")));
                    continue;
                }
                let Some(time_ms) = time_ms else {
                    out.lines.rejected += 1;
                    out.rejections
                        .push(reject(Reason::NoTime, "trkpt without <time>".into()));
                    continue;
                };
                let quality = match p.fix {
                    Some(gpx::Fix::None) => 0,
                    Some(gpx::Fix::DGPS) => 2,
                    Some(gpx::Fix::PPS) => 3,
                    _ => 1,
                };
                if quality == 0 {
                    out.lines.rejected += 1;
                    out.rejections.push(reject(Reason::NoFix, "<fix>none</fix>".into()));
                    continue;
                }
                out.lines.fix += 1;
                out.fixes.push(Fix {
                    time_ms,
                    lat,
                    lon,
                    alt_m: p.elevation.map(|e| e as f32),
                    quality,
                    sats: p.sat.map(|s| s.min(255) as u8),
                    hdop: p.hdop.map(|h| h as f32),
                    speed_mps: p.speed.map(|s| s as f32),
                    course_deg: None,
                    line,
                    talker: *b"GX",
                });
            }
        }
    }
    out
}

//! GPX 1.0/1.1 (<https://www.topografix.com/GPX/1/1/>): each track point (`<trkpt>`) becomes a
//! fix or a rejection naming its line; route points and waypoints are counted as rejections
//! (`not_track_point`: a plan or a marked place, not a recorded position).
//!
//! Read as a stream of XML events (`xml-rs`) rather than through a schema-strict GPX model, so
//! that what other readers (gpxpy, GDAL) accept is accepted here too: unknown elements and
//! `<extensions>` anywhere are skipped, GPX 1.0's `<speed>` (m/s) and `<course>` (degrees) are
//! read. An XML error ends the document: the points before it are kept, and the error is one
//! `bad_file` rejection at its line.

use super::nmea::Parsed;
use super::receipt::Receipt;
use crate::fix::Fix;
use crate::report::{Reason, Rejection};
use xml::common::Position;
use xml::reader::{EventReader, ParserConfig, XmlEvent};

/// The point element being read: its kind, line, attributes and the children that matter.
#[derive(Default)]
struct Point {
    kind: &'static str,
    line: u32,
    lat: Option<String>,
    lon: Option<String>,
    fields: Vec<(String, String)>,
}

impl Point {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }
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
    parse_with(bytes, None)
}

/// [`parse`] with fix times checked against the source's receipt ([`super::receipt::judge`]).
///
/// ```
/// assert!(tessera::ingest::gpx::parse_with(b"<gpx></gpx>", None).fixes.is_empty());
/// ```
pub fn parse_with(bytes: &[u8], receipt: Option<&Receipt>) -> Parsed {
    let mut out = Parsed::default();
    let config = ParserConfig::new()
        .trim_whitespace(true)
        .ignore_comments(true)
        .cdata_to_characters(true);
    let mut reader = EventReader::new_with_config(bytes, config);
    let mut point: Option<Point> = None;
    // Depth below the point element (1 = its direct children) and the child being read.
    let mut depth = 0usize;
    let mut child: Option<String> = None;
    let mut seen_gpx = false;
    loop {
        let event = reader.next();
        let line = u32::try_from(reader.position().row + 1).unwrap_or(u32::MAX);
        match event {
            Ok(XmlEvent::StartElement { name, attributes, .. }) => {
                seen_gpx |= name.local_name == "gpx";
                if let Some(p) = point.as_mut() {
                    depth += 1;
                    child = (depth == 1).then(|| name.local_name.clone());
                    let _ = p;
                } else if let Some(kind) = point_kind(&name.local_name) {
                    let attr = |a: &str| {
                        attributes
                            .iter()
                            .find(|x| x.name.local_name == a)
                            .map(|x| x.value.clone())
                    };
                    point = Some(Point {
                        kind,
                        line,
                        lat: attr("lat"),
                        lon: attr("lon"),
                        fields: Vec::new(),
                    });
                    depth = 0;
                }
            }
            Ok(XmlEvent::Characters(text)) => {
                if let (Some(p), Some(c), 1) = (point.as_mut(), child.as_ref(), depth) {
                    p.fields.push((c.clone(), text));
                }
            }
            Ok(XmlEvent::EndElement { .. }) => {
                if point.is_some() && depth == 0 {
                    finish(&mut out, point.take().expect("checked"), receipt);
                } else if point.is_some() {
                    depth -= 1;
                    child = None;
                }
            }
            Ok(XmlEvent::EndDocument) => break,
            Ok(_) => {}
            Err(e) => {
                let at = u32::try_from(e.position().row + 1).unwrap_or(u32::MAX);
                out.lines.total += 1;
                out.lines.rejected += 1;
                let line = point.as_ref().map_or(at, |p| p.line);
                out.rejections.push(Rejection::at(
                    line,
                    Reason::BadFile,
                    format!("GPX XML error at line {at}: {}", e.msg()),
                ));
                break;
            }
        }
    }
    if !seen_gpx && out.lines.total == 0 {
        out.lines.total = 1;
        out.lines.rejected = 1;
        out.rejections
            .push(Rejection::at(0, Reason::BadFile, "no <gpx> element"));
    }
    out
}

fn point_kind(local: &str) -> Option<&'static str> {
    match local {
        "trkpt" => Some("trkpt"),
        "rtept" => Some("rtept"),
        "wpt" => Some("wpt"),
        _ => None,
    }
}

/// A number in an attribute or element, or why it is not one.
fn number(what: &str, v: Option<&str>) -> Result<Option<f64>, String> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("{what} {s:?} is not a number")),
        },
    }
}

/// RFC 3339 time as GPX writes it (`Z` or an offset; a time without either is UTC, as the GPX
/// schema defines every time to be), to UTC ms. A second of 60 is a leap second only at 23:59:60
/// UTC (a leap second's place); anywhere else (`10:00:60Z`) it is not a time — chrono reads it as
/// the next second's first, which would move the fix by a second.
fn time_ms(s: &str) -> Result<i64, String> {
    use chrono::Timelike;
    let t = match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.naive_utc(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .map_err(|_| format!("<time> {s:?} is not an RFC 3339 time"))?,
    };
    if t.nanosecond() >= 1_000_000_000 && (t.hour(), t.minute()) != (23, 59) {
        return Err(format!(
            "<time> {s:?} is not a time: second 60 is a leap second only at 23:59:60 UTC"
        ));
    }
    Ok(t.and_utc().timestamp_millis())
}

/// Turn one point element into a fix or a rejection.
fn finish(out: &mut Parsed, p: Point, receipt: Option<&Receipt>) {
    out.lines.total += 1;
    let judged = to_fix(&p).and_then(|mut f| {
        match super::receipt::settle(f.time_ms, None, receipt, &mut out.lines) {
            Ok(t) => f.time_ms = t,
            Err((reason, detail)) => return Err((reason, detail, Some(f.time_ms), Some(f.lat), Some(f.lon))),
        }
        Ok(f)
    });
    match judged {
        Ok(fix) => {
            out.lines.fix += 1;
            out.fixes.push(fix);
        }
        Err((reason, detail, time_ms, lat, lon)) => {
            out.lines.rejected += 1;
            out.rejections.push(Rejection {
                line: p.line,
                reason,
                detail,
                time_ms,
                lat,
                lon,
            });
        }
    }
}

type PointRejection = (Reason, String, Option<i64>, Option<f64>, Option<f64>);

fn to_fix(p: &Point) -> Result<Fix, PointRejection> {
    let plain = |reason, detail: String| (reason, detail, None, None, None);
    let lat = number("lat", p.lat.as_deref()).map_err(|e| plain(Reason::BadPosition, e))?;
    let lon = number("lon", p.lon.as_deref()).map_err(|e| plain(Reason::BadPosition, e))?;
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Err(plain(Reason::BadPosition, format!("<{}> without lat and lon", p.kind)));
    };
    let time = p.field("time").map(time_ms).transpose();
    let t = time.as_ref().ok().copied().flatten();
    let reject = |reason, detail: String| (reason, detail, t, Some(lat), Some(lon));
    if p.kind != "trkpt" {
        let what = if p.kind == "wpt" { "a waypoint" } else { "a route point" };
        return Err(reject(
            Reason::NotTrackPoint,
            format!("<{}> is {what}, not a recorded track point", p.kind),
        ));
    }
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(reject(Reason::BadPosition, format!("lat {lat} lon {lon} out of range")));
    }
    let time_ms = match time {
        Err(e) => return Err(reject(Reason::NoTime, e)),
        Ok(None) => return Err(reject(Reason::NoTime, "trkpt without <time>".into())),
        Ok(Some(t)) => t,
    };
    let quality = match p.field("fix") {
        Some("none") => return Err(reject(Reason::NoFix, "<fix>none</fix>".into())),
        Some("dgps") => 2,
        Some("pps") => 3,
        _ => 1,
    };
    let value = |name: &str| number(name, p.field(name)).map_err(|e| reject(Reason::BadValue, e));
    let sats = value("sat")?;
    Ok(Fix {
        time_ms,
        lat,
        lon,
        alt_m: value("ele")?.map(|e| e as f32),
        quality,
        sats: sats.map(|s| s.clamp(0.0, 255.0) as u8),
        hdop: value("hdop")?.map(|h| h as f32),
        speed_mps: value("speed")?.map(|s| s as f32),
        course_deg: value("course")?.map(|c| c as f32),
        line: p.line,
        talker: *b"GX",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: &str, body: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?>\n<gpx version=\"{version}\" creator=\"t\" xmlns=\"http://www.topografix.com/GPX/{}\">\n{body}\n</gpx>\n",
            version.replace('.', "/")
        )
    }

    #[test]
    fn rule_gpx_1_0_speed_and_course_are_read_not_a_reason_to_refuse_the_file() {
        let gpx = doc(
            "1.0",
            "<trk><trkseg>\n<trkpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:00Z</time><course>91.5</course><speed>12.5</speed></trkpt>\n</trkseg></trk>",
        );
        let p = parse(gpx.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        assert_eq!((p.fixes[0].speed_mps, p.fixes[0].course_deg), (Some(12.5), Some(91.5)));
        assert_eq!(p.fixes[0].line, 4);
    }

    #[test]
    fn rule_extensions_and_unknown_elements_anywhere_are_skipped() {
        let gpx = doc(
            "1.1",
            "<metadata><extensions><x:y xmlns:x=\"u\">1</x:y></extensions></metadata><trk><name>a</name><trkseg>\n\
             <extensions><gpxx:TrackExtension xmlns:gpxx=\"g\"><gpxx:DisplayColor>Red</gpxx:DisplayColor></gpxx:TrackExtension></extensions>\n\
             <trkpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:00Z</time><extensions><gpxtpx:TrackPointExtension xmlns:gpxtpx=\"t\"><gpxtpx:speed>9</gpxtpx:speed><gpxtpx:hr>80</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions><unknown>x</unknown></trkpt>\n\
             </trkseg></trk>",
        );
        let p = parse(gpx.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        assert_eq!(p.fixes[0].speed_mps, None);
        assert!(p.lines.balanced());
    }

    #[test]
    fn rule_waypoints_and_route_points_are_counted_as_not_track_points() {
        let gpx = doc(
            "1.1",
            "<wpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:00Z</time></wpt>\n<rte><rtept lat=\"52.6\" lon=\"13.4\"/>\n</rte>",
        );
        let p = parse(gpx.as_bytes());
        assert!(p.fixes.is_empty());
        let r: Vec<(u32, &str)> = p.rejections.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(r, [(3, "not_track_point"), (4, "not_track_point")]);
        assert_eq!(p.lines.total, 2);
        assert!(super::super::not_a_trace(&p).is_none() || p.lines.total > 0);
    }

    #[test]
    fn rule_a_broken_document_keeps_points_before_the_error_and_names_its_line() {
        let gpx = doc(
            "1.1",
            "<trk><trkseg>\n<trkpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:00Z</time></trkpt>\n<trkpt lat=",
        );
        let p = parse(gpx.as_bytes());
        assert_eq!(p.fixes.len(), 1);
        assert_eq!(p.rejections.len(), 1);
        assert_eq!(p.rejections[0].reason, Reason::BadFile);
        assert!(p.rejections[0].detail.contains("line"), "{}", p.rejections[0].detail);
        assert!(p.lines.balanced());
    }

    #[test]
    fn rule_bad_numbers_and_times_are_rejections_naming_the_field() {
        let gpx = doc(
            "1.1",
            "<trk><trkseg>\n<trkpt lat=\"NaN\" lon=\"13.4\"/>\n<trkpt lat=\"52.5\" lon=\"13.4\"><time>yesterday</time></trkpt>\n<trkpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:00Z</time><ele>high</ele></trkpt>\n<trkpt lat=\"52.5\" lon=\"13.4\"><time>2026-11-16T10:15:01</time></trkpt>\n</trkseg></trk>",
        );
        let p = parse(gpx.as_bytes());
        let r: Vec<(u32, &str)> = p.rejections.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(r, [(4, "bad_position"), (5, "no_time"), (6, "bad_value")]);
        assert!(p.rejections[2].detail.contains("ele"));
        assert_eq!(p.fixes.len(), 1);
        assert_eq!(p.fixes[0].time_ms, 1_794_824_101_000);
    }

    #[test]
    fn rule_second_60_is_a_time_only_at_23_59_60_utc() {
        let pt = |t: &str| format!("<trkpt lat=\"52.5\" lon=\"13.4\"><time>{t}</time></trkpt>");
        let times = [
            "2026-11-16T10:00:60Z",
            "2026-11-16T10:00:59Z",
            "2016-12-31T23:59:60Z",
            "2017-01-01T01:59:60+02:00",
            "2026-11-16T12:59:60+02:00",
        ];
        let body: Vec<String> = times.iter().map(|t| pt(t)).collect();
        let gpx = doc("1.1", &format!("<trk><trkseg>\n{}\n</trkseg></trk>", body.join("\n")));
        let p = parse(gpx.as_bytes());
        let r: Vec<(u32, &str)> = p.rejections.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(r, [(4, "no_time"), (8, "no_time")], "{:?}", p.rejections);
        assert!(
            p.rejections[0].detail.contains("<time> \"2026-11-16T10:00:60Z\""),
            "{}",
            p.rejections[0].detail
        );
        let leap = 1_483_228_800_000; // 2017-01-01T00:00:00Z: the leap second's end
        assert_eq!(
            p.fixes.iter().map(|f| f.time_ms).collect::<Vec<_>>(),
            [1_794_823_259_000, leap, leap]
        );
    }
}

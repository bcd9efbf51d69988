//! NMEA 0183 (plain, BlackVue `.gps`, Android GnssLogger): framing, validation and the merge of
//! one receiver cycle's sentences (GGA + RMC + GLL/GNS, with GSA/VTG/ZDA) into one fix.
//!
//! Sentences are decoded by the `nmea` crate after tessera has checked framing and checksum
//! itself (so the rejection says exactly what was wrong). GNS is decoded here because the crate
//! fails on long mode strings. The common forms of GGA, RMC and GSA — nearly every line of a
//! dashcam trace — go through strict decoders first (`fast.rs`, ~2x the crate's speed), which are
//! tested to agree with the crate on every sentence they accept and hand everything else to it.

use super::fast::{self, Gga, Gsa, Rmc};
use super::receipt::{self, Receipt};
use crate::fix::Fix;
use crate::report::{LineCounts, Reason, Rejection};
use chrono::{NaiveDate, NaiveTime, Timelike};
use nmea::ParseResult;

const DAY_MS: i64 = 86_400_000;
const KNOTS_TO_MPS: f32 = 0.514_444;
/// Fixes waiting for a date before they are rejected as `no_date`.
const MAX_PENDING: usize = 1 << 20;

/// Sentence types tessera reads; everything else is counted as ignored.
fn used(kind: &[u8]) -> bool {
    matches!(
        kind,
        b"GGA" | b"RMC" | b"GLL" | b"GNS" | b"GSA" | b"VTG" | b"ZDA" | b"GSV" | b"TXT"
    )
}

/// The result of parsing one source.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Accepted fixes, in source order.
    pub fixes: Vec<Fix>,
    /// Rejected lines, in source order.
    pub rejections: Vec<Rejection>,
    /// Where every line went.
    pub lines: LineCounts,
    /// IMU readings of camera telemetry, in source order (empty for NMEA, GPX and Parquet).
    pub imu: Vec<crate::ingest::telemetry::ImuSample>,
    /// How camera telemetry was read (kind, clock, axes); `None` for NMEA, GPX and Parquet.
    pub telemetry: Option<crate::ingest::telemetry::Telemetry>,
}

/// Position source within a cycle, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PosSrc {
    Gga,
    Gns,
    Pubx,
    Rmc,
    Gll,
}

#[derive(Debug)]
struct Cycle {
    tod_ms: i64,
    lines: Vec<u32>,
    pos: Option<(PosSrc, f64, f64)>,
    /// `Some(false)` once a sentence of the best source says "no fix".
    valid: Option<(PosSrc, bool)>,
    quality: Option<u8>,
    sats: Option<u8>,
    hdop: Option<f32>,
    alt: Option<f32>,
    speed: Option<f32>,
    course: Option<f32>,
    date: Option<NaiveDate>,
    frame_ms: Option<i64>,
    talker: [u8; 2],
}

impl Cycle {
    fn new(tod_ms: i64, talker: [u8; 2], frame_ms: Option<i64>) -> Self {
        Cycle {
            tod_ms,
            lines: Vec::with_capacity(3),
            pos: None,
            valid: None,
            quality: None,
            sats: None,
            hdop: None,
            alt: None,
            speed: None,
            course: None,
            date: None,
            frame_ms,
            talker,
        }
    }

    fn set_pos(&mut self, src: PosSrc, lat: Option<f64>, lon: Option<f64>, valid: bool) {
        if let (Some(lat), Some(lon)) = (lat, lon)
            && self.pos.is_none_or(|(s, _, _)| src < s)
        {
            self.pos = Some((src, lat, lon));
        }
        if self.valid.is_none_or(|(s, _)| src < s) {
            self.valid = Some((src, valid));
        }
    }
}

/// A finished cycle waiting for its date.
struct Pending {
    cycle: Cycle,
}

struct Assembler {
    out: Parsed,
    cur: Option<Cycle>,
    /// Last dated time (UTC ms) to carry into GGA-only stretches.
    carried: Option<i64>,
    pending: Vec<Pending>,
    /// When the source was received, to check fix times against.
    receipt: Option<Receipt>,
}

fn tod_ms(t: &NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1000 + i64::from(t.nanosecond() / 1_000_000).min(999)
}

fn midnight_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis()
}

/// The date nearest to `anchor_ms` at which `tod` falls.
fn date_near(anchor_ms: i64, tod: i64) -> Option<NaiveDate> {
    let base = anchor_ms.div_euclid(DAY_MS) * DAY_MS;
    let best = [base - DAY_MS, base, base + DAY_MS]
        .into_iter()
        .min_by_key(|m| (m + tod - anchor_ms).abs())?;
    chrono::DateTime::from_timestamp_millis(best).map(|d| d.date_naive())
}

impl Assembler {
    fn new() -> Self {
        Assembler {
            out: Parsed::default(),
            cur: None,
            carried: None,
            pending: Vec::new(),
            receipt: None,
        }
    }

    fn reject(&mut self, line: u32, reason: Reason, detail: impl Into<String>) {
        self.out.lines.rejected += 1;
        self.out.rejections.push(Rejection::at(line, reason, detail));
    }

    /// The cycle for a position sentence at `tod`: the open one if the time matches, else a new
    /// one (the open one is finished).
    fn cycle_for(&mut self, tod: i64, talker: [u8; 2], frame_ms: Option<i64>) -> &mut Cycle {
        if self.cur.as_ref().is_some_and(|c| c.tod_ms != tod) {
            self.finish();
        }
        self.cur.get_or_insert_with(|| Cycle::new(tod, talker, frame_ms))
    }

    /// A date for the cycle at `tod` (from RMC or ZDA): it anchors undated cycles before and
    /// after it, each given the date that puts it nearest the anchor (so sentences of one cycle
    /// may come in any order, and a ZDA before its cycle's GGA dates that GGA, not the next day).
    fn learn_date(&mut self, date: NaiveDate, tod: i64) {
        let anchor = midnight_ms(date) + tod;
        self.carried = Some(anchor);
        for p in std::mem::take(&mut self.pending) {
            match date_near(anchor, p.cycle.tod_ms) {
                Some(d) => self.emit(p.cycle, d),
                None => self.reject_cycle(&p.cycle, Reason::NoDate, "date out of range", None),
            }
        }
    }

    fn finish(&mut self) {
        let Some(c) = self.cur.take() else { return };
        let valid = c.valid.is_some_and(|(_, v)| v);
        if !valid || c.pos.is_none() {
            let what = if c.pos.is_none() {
                "no position"
            } else {
                "receiver reports no fix"
            };
            self.reject_cycle(&c, Reason::NoFix, what, None);
            return;
        }
        if let Some(d) = c.date {
            self.learn_date(d, c.tod_ms);
            self.emit(c, d);
        } else if let Some(d) = self.carried.and_then(|anchor| date_near(anchor, c.tod_ms)) {
            // GGA-only stretch: the date nearest the last dated time, rolling over at midnight.
            self.carried = Some(midnight_ms(d) + c.tod_ms);
            self.emit(c, d);
        } else if let Some(d) = c.frame_ms.and_then(|f| date_near(f, c.tod_ms)) {
            self.emit(c, d);
        } else if self.pending.len() < MAX_PENDING {
            self.pending.push(Pending { cycle: c });
        } else {
            self.reject_cycle(&c, Reason::NoDate, "no RMC/ZDA date in reach", None);
        }
    }

    fn reject_cycle(&mut self, c: &Cycle, reason: Reason, detail: &str, time_ms: Option<i64>) {
        for &line in &c.lines {
            self.out.lines.rejected += 1;
            self.out.rejections.push(Rejection {
                line,
                reason,
                detail: detail.to_string(),
                time_ms,
                lat: c.pos.map(|p| p.1),
                lon: c.pos.map(|p| p.2),
            });
        }
    }

    fn emit(&mut self, c: Cycle, date: NaiveDate) {
        let time_ms = midnight_ms(date) + c.tod_ms;
        let (_, lat, lon) = c.pos.expect("checked by caller");
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) || !lat.is_finite() || !lon.is_finite() {
            self.reject_cycle(
                &c,
                Reason::BadPosition,
                &format!("lat {lat} lon {lon} out of range"),
                Some(time_ms),
            );
            return;
        }
        let odd = [
            ("HDOP", c.hdop),
            ("altitude", c.alt),
            ("speed", c.speed),
            ("course", c.course),
        ]
        .into_iter()
        .find(|(_, v)| v.is_some_and(|x| !x.is_finite()));
        if let Some((name, v)) = odd {
            let detail = format!("{name} {} is not a value a receiver reports", v.unwrap_or_default());
            self.reject_cycle(&c, Reason::BadValue, &detail, Some(time_ms));
            return;
        }
        let time_ms = match receipt::settle(time_ms, c.frame_ms, self.receipt.as_ref(), &mut self.out.lines) {
            Ok(t) => t,
            Err((reason, detail)) => {
                self.reject_cycle(&c, reason, &detail, Some(time_ms));
                return;
            }
        };
        self.out.lines.fix += c.lines.len() as u64;
        self.out.fixes.push(Fix {
            time_ms,
            lat,
            lon,
            alt_m: c.alt,
            quality: c.quality.unwrap_or(1),
            sats: c.sats,
            hdop: c.hdop,
            speed_mps: c.speed,
            course_deg: c.course,
            line: c.lines.first().copied().unwrap_or(0),
            talker: c.talker,
        });
    }

    fn end(mut self) -> Parsed {
        self.finish();
        for p in std::mem::take(&mut self.pending) {
            self.reject_cycle(&p.cycle, Reason::NoDate, "no RMC/ZDA date anywhere in the file", None);
        }
        // Pending cycles are rejected after later ones were accepted; keep the report in line order.
        self.out.rejections.sort_by_key(|r| r.line);
        self.out
    }
}

/// Split a line into its framing timestamp (BlackVue `[ms]`, GnssLogger `NMEA,...,ms`) and the
/// sentence text from `$` to the end of the checksum (or of the line when there is none).
fn frame(line: &str) -> (Option<i64>, Option<&str>) {
    let mut rest = line;
    let mut frame_ms = None;
    let mut logger = false;
    if let Some(r) = rest.strip_prefix('[') {
        if let Some((ms, tail)) = r.split_once(']') {
            frame_ms = ms.trim().parse::<i64>().ok();
            rest = tail;
        }
    } else if let Some(r) = rest.strip_prefix("NMEA,") {
        rest = r;
        logger = true;
    }
    let star = memchr::memrchr(b'*', rest.as_bytes());
    let head = match star {
        Some(s) => &rest[..s],
        None => rest,
    };
    // A collision (`$GPGGA,0301$GPGLL,...`) keeps the last sentence start.
    let Some(dollar) = memchr::memrchr(b'$', head.as_bytes()) else {
        return (frame_ms, None);
    };
    let end = match star {
        Some(s) => {
            let hex = rest[s + 1..]
                .bytes()
                .take(2)
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
            s + 1 + hex
        }
        None => rest.len(),
    };
    let sentence = rest[dollar..end].trim_end();
    if logger && let Some(ms) = rest[end..].strip_prefix(',') {
        frame_ms = ms.trim().parse::<i64>().ok();
    }
    (frame_ms, Some(sentence))
}

struct Gns {
    tod: i64,
    lat: Option<f64>,
    lon: Option<f64>,
    valid: bool,
    sats: Option<u8>,
    hdop: Option<f32>,
    alt: Option<f32>,
}

/// GNS decoded by hand (the `nmea` crate rejects mode strings longer than it expects).
fn parse_gns(s: &str, body: &str) -> Result<Gns, Refused> {
    let f: Vec<&str> = body.split(',').collect();
    if f.len() < 10 {
        return Err((
            Reason::Unparseable,
            format!("GNS has {} fields, expected at least 10", f.len()),
        ));
    }
    if f[1].is_empty() {
        return Err((Reason::NoFix, "GNS with empty time: receiver has no fix".into()));
    }
    let t = NaiveTime::parse_from_str(f[1], "%H%M%S%.f")
        .map_err(|_| (Reason::Unparseable, format!("GNS time {:?}", f[1])))?;
    let pos = raw_position("GNS", s)?;
    let mode = f[6];
    let valid = !mode.is_empty() && mode.chars().any(|c| !matches!(c, 'N' | 'n'));
    Ok(Gns {
        tod: tod_ms(&t),
        lat: pos.map(|p| p.0),
        lon: pos.map(|p| p.1),
        valid,
        sats: f[7].parse().ok(),
        hdop: f[8].parse().ok(),
        alt: f[9].parse().ok(),
    })
}

/// u-blox `$PUBX,00` (position, u-blox 8 / M8 receiver description §31.3.1): time, position,
/// altitude, navigation status (`NF` no fix, `DR` dead reckoning, `G2`/`G3` 2D/3D, `D2`/`D3`
/// differential, `RK` combined, `TT` time only), speed (km/h), course, HDOP and satellites used.
struct Pubx {
    tod: i64,
    lat: Option<f64>,
    lon: Option<f64>,
    /// GGA-style quality: 0 no fix (NF, DR, TT), 1 GNSS, 2 differential, 4 RTK.
    quality: u8,
    alt: Option<f32>,
    speed_mps: Option<f32>,
    course: Option<f32>,
    hdop: Option<f32>,
    sats: Option<u8>,
}

fn parse_pubx(s: &str, body: &str) -> Result<Pubx, Refused> {
    let f: Vec<&str> = body.split(',').collect();
    if f.len() < 19 {
        return Err((
            Reason::Unparseable,
            format!("PUBX,00 has {} fields, expected 21", f.len() + 1),
        ));
    }
    if f[2].is_empty() {
        return Err((Reason::NoFix, "PUBX,00 without time: receiver has no fix".into()));
    }
    let t = NaiveTime::parse_from_str(f[2], "%H%M%S%.f")
        .map_err(|_| (Reason::Unparseable, format!("PUBX,00 time {:?}", f[2])))?;
    let pos = raw_position(PUBX_POSITION, s)?;
    let quality = match f[8] {
        "G2" | "G3" => 1,
        "D2" | "D3" => 2,
        "RK" => 4,
        "NF" | "DR" | "TT" | "" => 0,
        other => return Err((Reason::Unparseable, format!("PUBX,00 navigation status {other:?}"))),
    };
    let num = |v: &str| v.parse::<f32>().ok().filter(|x| x.is_finite());
    Ok(Pubx {
        tod: tod_ms(&t),
        lat: pos.map(|p| p.0),
        lon: pos.map(|p| p.1),
        quality,
        alt: num(f[7]),
        speed_mps: num(f[11]).map(|k| k / 3.6),
        course: num(f[12]),
        hdop: num(f[15]),
        sats: f[18].parse().ok(),
    })
}

fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0, |a, b| a ^ b)
}

/// Parse NMEA text (any of the supported framings) into fixes, rejections and line counts.
///
/// ```
/// let log = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n\
///            $GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n\
///            garbage\n";
/// let p = tessera::ingest::nmea::parse(log.as_bytes());
/// assert_eq!(p.fixes.len(), 1);
/// assert_eq!(p.fixes[0].sats, Some(8));
/// assert_eq!(p.rejections[0].reason.as_str(), "not_nmea");
/// assert!(p.lines.balanced());
/// ```
pub fn parse(bytes: &[u8]) -> Parsed {
    parse_with(bytes, None)
}

/// [`parse`] with fix times checked against the source's receipt ([`super::receipt::judge`]).
///
/// ```
/// let p = tessera::ingest::nmea::parse_with(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n", None);
/// assert_eq!(p.fixes.len(), 1);
/// ```
pub fn parse_with(bytes: &[u8], receipt: Option<&Receipt>) -> Parsed {
    let mut a = Assembler::new();
    a.receipt = receipt.copied();
    let mut buf = String::new();
    let mut start = 0;
    let mut newlines = memchr::memchr_iter(b'\n', bytes);
    for i in 0usize.. {
        let (raw, last_unterminated) = match newlines.next() {
            Some(end) => (&bytes[start..end], false),
            None if start < bytes.len() => (&bytes[start..], true),
            None => break,
        };
        start += raw.len() + 1;
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        a.out.lines.total += 1;
        // NUL bytes and other non-text bytes are dropped; a sentence whose bytes they were part
        // of then fails its checksum. The usual line (ASCII, at most a CR at the end) is used
        // in place.
        let body = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = if body.is_ascii() && memchr::memchr2(0, b'\r', body).is_none() {
            std::str::from_utf8(body).expect("ASCII is UTF-8")
        } else {
            buf.clear();
            buf.extend(raw.iter().filter(|b| **b != 0 && **b != b'\r').map(|b| {
                if b.is_ascii() {
                    *b as char
                } else {
                    '\u{FFFD}'
                }
            }));
            buf.as_str()
        };
        let line = line.trim();
        if line.is_empty() {
            a.out.lines.blank += 1;
            continue;
        }
        match unframed(line) {
            "" => {
                a.out.lines.blank += 1;
                continue;
            }
            l if l.starts_with('#') => {
                a.out.lines.comment += 1;
                continue;
            }
            _ => {}
        }
        let (frame_ms, sentence) = frame(line);
        let Some(s) = sentence else {
            // GnssLogger files interleave other record types ("Fix,...", "Raw,...").
            if let Some(word) = record_word(line) {
                a.out.lines.ignored += 1;
                *a.out.lines.ignored_types.entry(format!("record:{word}")).or_default() += 1;
                continue;
            }
            a.reject(
                line_no,
                Reason::NotNmea,
                format!("no '$' sentence start in {:?}", clip(line)),
            );
            continue;
        };
        process_sentence(&mut a, line_no, s, frame_ms, last_unterminated);
    }
    a.end()
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

/// What one line of NMEA text is, checked the way ingest checks it (framing, address, checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineCheck {
    /// Empty (or only NUL/CR bytes).
    Blank,
    /// A `#` comment.
    Comment,
    /// A well-formed sentence of a type tessera uses (`GGA`, `RMC`, ...), with its talker.
    Sentence {
        /// `GP`, `GN`, ...
        talker: String,
        /// `GGA`, `RMC`, ...
        kind: String,
    },
    /// A sentence or record of a type tessera does not use (counted by name).
    Ignored(String),
    /// Rejected, with the reason ingest would give.
    Rejected(Reason, String),
}

/// Check one line (any supported framing) without decoding its fields.
///
/// ```
/// use tessera::ingest::nmea::{check_line, LineCheck};
/// assert!(matches!(check_line("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"), LineCheck::Sentence { .. }));
/// assert!(matches!(check_line("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48"), LineCheck::Rejected(..)));
/// ```
pub fn check_line(line: &str) -> LineCheck {
    let line: String = line.chars().filter(|c| *c != '\0' && *c != '\r').collect();
    let line = line.trim();
    if line.is_empty() {
        return LineCheck::Blank;
    }
    match unframed(line) {
        "" => return LineCheck::Blank,
        l if l.starts_with('#') => return LineCheck::Comment,
        _ => {}
    }
    match frame(line) {
        (_, Some(s)) => match check_sentence(s, false) {
            Ok(c) => LineCheck::Sentence {
                talker: String::from_utf8_lossy(&c.talker).into_owned(),
                kind: c.kind.to_string(),
            },
            Err(Unusable::Ignored(n)) => LineCheck::Ignored(n),
            Err(Unusable::Rejected(r, d)) => LineCheck::Rejected(r, d),
        },
        (_, None) => match record_word(line) {
            Some(w) => LineCheck::Ignored(format!("record:{w}")),
            None => LineCheck::Rejected(Reason::NotNmea, format!("no '$' sentence start in {:?}", clip(line))),
        },
    }
}

/// The line without a BlackVue/capture `[ms]` prefix.
fn unframed(line: &str) -> &str {
    match line.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((ms, rest)) if ms.bytes().all(|b| b.is_ascii_digit()) => rest.trim(),
        _ => line,
    }
}

/// A GnssLogger-style record word (`Fix`, `Raw`, ...) at the start of a non-NMEA line.
fn record_word(line: &str) -> Option<&str> {
    let (word, _) = line.split_once(',')?;
    (!word.is_empty() && word.len() <= 24 && word.bytes().all(|b| b.is_ascii_alphabetic())).then_some(word)
}

struct Checked<'a> {
    talker: [u8; 2],
    kind: &'a str,
    body: &'a str,
}

enum Unusable {
    Ignored(String),
    Rejected(Reason, String),
}

/// The type of a u-blox position sentence, the one proprietary sentence tessera reads.
const PUBX_POSITION: &str = "PUBX,00";

/// For a proprietary sentence (`$P` + maker + type, NMEA 0183 §5.3.3): its type name as counted
/// (`PGRME`, `PUBX,00` — u-blox puts the message id in the first field), or `Err` for an
/// address that is not 2–10 letters and digits. `None` for any other sentence.
fn proprietary(s: &str) -> Option<Result<&str, ()>> {
    let rest = s.strip_prefix("$P")?;
    let addr = rest.split(['*', ',']).next().unwrap_or("");
    if addr.is_empty() || addr.len() > 9 || !addr.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Some(Err(()));
    }
    let name_len = if addr == "UBX" {
        let id = rest[3..]
            .strip_prefix(',')
            .map(|r| r.split([',', '*']).next().unwrap_or(""));
        id.filter(|id| id.is_ascii()).map_or(0, |id| 1 + id.len().min(4))
    } else {
        0
    };
    Some(Ok(&s[1..2 + addr.len() + name_len]))
}

/// Address, type and checksum of one framed sentence.
fn check_sentence(s: &str, last_unterminated: bool) -> Result<Checked<'_>, Unusable> {
    let bytes = s.as_bytes();
    let (talker, kind) = match proprietary(s) {
        Some(Ok(PUBX_POSITION)) => ([b'P', b'U'], PUBX_POSITION),
        Some(Ok(name)) => return Err(Unusable::Ignored(name.to_string())),
        Some(Err(())) => {
            return Err(Unusable::Rejected(
                Reason::Unparseable,
                format!("bad proprietary sentence address in {:?}", clip(s)),
            ))
        }
        None if bytes.len() < 7 || !bytes[1..6].iter().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(Unusable::Rejected(
                Reason::Unparseable,
                format!("bad sentence address in {:?}", clip(s)),
            ));
        }
        None if !used(&bytes[3..6]) => return Err(Unusable::Ignored(s[3..6].to_string())),
        None => ([bytes[1], bytes[2]], &s[3..6]),
    };
    let Some(star) = memchr::memrchr(b'*', s.as_bytes()) else {
        let reason = if last_unterminated {
            Reason::Truncated
        } else {
            Reason::MissingChecksum
        };
        return Err(Unusable::Rejected(reason, format!("{kind} without *hh checksum")));
    };
    let hex = &s[star + 1..];
    if hex.len() < 2 {
        return Err(Unusable::Rejected(
            Reason::Truncated,
            format!("{kind} checksum cut to {hex:?}"),
        ));
    }
    let found = u8::from_str_radix(hex, 16).ok();
    let body = &s[1..star];
    let calc = checksum(body.as_bytes());
    if found != Some(calc) {
        return Err(Unusable::Rejected(
            Reason::BadChecksum,
            format!("{kind} checksum {hex}, computed {calc:02X}"),
        ));
    }
    if !s.is_ascii() {
        return Err(Unusable::Rejected(
            Reason::Unparseable,
            format!("{kind} has non-ASCII bytes"),
        ));
    }
    Ok(Checked { talker, kind, body })
}

fn process_sentence(a: &mut Assembler, line_no: u32, s: &str, frame_ms: Option<i64>, last_unterminated: bool) {
    let Checked { talker, kind, body } = match check_sentence(s, last_unterminated) {
        Ok(c) => c,
        Err(Unusable::Ignored(name)) => {
            a.out.lines.ignored += 1;
            *a.out.lines.ignored_types.entry(name).or_default() += 1;
            return;
        }
        Err(Unusable::Rejected(r, d)) => {
            a.reject(line_no, r, d);
            return;
        }
    };
    if kind == PUBX_POSITION {
        match parse_pubx(s, body) {
            Ok(p) => {
                let c = a.cycle_for(p.tod, talker, frame_ms);
                c.lines.push(line_no);
                c.set_pos(PosSrc::Pubx, p.lat, p.lon, p.quality > 0);
                if c.quality.is_none() {
                    c.quality = Some(p.quality);
                }
                c.sats = c.sats.or(p.sats);
                c.hdop = c.hdop.or(p.hdop);
                c.alt = c.alt.or(p.alt);
                c.speed = c.speed.or(p.speed_mps);
                c.course = c.course.or(p.course);
            }
            Err((reason, e)) => a.reject(line_no, reason, e),
        }
        return;
    }
    if kind.as_bytes() == b"GNS" {
        match parse_gns(s, body) {
            Ok(g) => {
                let c = a.cycle_for(g.tod, talker, frame_ms);
                c.lines.push(line_no);
                c.set_pos(PosSrc::Gns, g.lat, g.lon, g.valid);
                c.sats = c.sats.or(g.sats);
                c.hdop = c.hdop.or(g.hdop);
                c.alt = c.alt.or(g.alt);
            }
            Err((reason, e)) => a.reject(line_no, reason, e),
        }
        return;
    }
    let decoded = match decode(kind, s) {
        Ok(d) => d,
        Err((reason, e)) => {
            a.reject(line_no, reason, e);
            return;
        }
    };
    match decoded {
        Decoded::Gga(g) => {
            let Some(t) = g.time else {
                a.reject(line_no, Reason::NoFix, "GGA with empty time: receiver has no fix");
                return;
            };
            let q = g.quality;
            let c = a.cycle_for(tod_ms(&t), talker, frame_ms);
            c.lines.push(line_no);
            c.set_pos(PosSrc::Gga, g.lat, g.lon, q > 0);
            if c.quality.is_none() || q > 0 {
                c.quality = Some(q);
            }
            c.sats = g.sats.map(|n| n.min(255) as u8).or(c.sats);
            c.hdop = g.hdop.or(c.hdop);
            c.alt = g.alt.or(c.alt);
        }
        Decoded::Rmc(r) => {
            let Some(t) = r.time else {
                // `$GPRMC,,V,...`: a receiver with no time yet; nothing to place.
                a.reject(line_no, Reason::NoFix, "RMC with empty time: receiver has no fix");
                return;
            };
            let c = a.cycle_for(tod_ms(&t), talker, frame_ms);
            c.lines.push(line_no);
            c.set_pos(PosSrc::Rmc, r.lat, r.lon, r.valid);
            c.speed = r.speed_kn.map(|k| k * KNOTS_TO_MPS).or(c.speed);
            c.course = r.course.or(c.course);
            if r.date.is_some() {
                c.date = r.date;
            }
        }
        Decoded::Gsa(g) => {
            a.out.lines.aux += 1;
            if let Some(c) = a.cur.as_mut() {
                c.hdop = c.hdop.or(g.hdop);
                if c.sats.is_none() && g.prns > 0 {
                    c.sats = Some(g.prns.min(255) as u8);
                }
            }
        }
        Decoded::Other(parsed) => apply_other(a, line_no, talker, *parsed, frame_ms),
    }
}

/// GLL, ZDA, VTG and the other sentences the `nmea` crate decodes into the cycle.
fn apply_other(a: &mut Assembler, line_no: u32, talker: [u8; 2], parsed: ParseResult, frame_ms: Option<i64>) {
    match parsed {
        ParseResult::GLL(g) => {
            let Some(t) = g.fix_time else {
                a.reject(line_no, Reason::NoFix, "GLL with empty time: receiver has no fix");
                return;
            };
            let c = a.cycle_for(tod_ms(&t), talker, frame_ms);
            c.lines.push(line_no);
            c.set_pos(PosSrc::Gll, g.latitude, g.longitude, g.valid);
        }
        ParseResult::ZDA(z) => {
            a.out.lines.aux += 1;
            if let (Some(t), Some(d), Some(m), Some(y)) = (z.utc_time, z.day, z.month, z.year)
                && let Some(date) = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d))
            {
                let tod = tod_ms(&t);
                match a.cur.as_mut() {
                    Some(c) if c.tod_ms == tod => c.date = c.date.or(Some(date)),
                    _ => a.learn_date(date, tod),
                }
            }
        }
        ParseResult::VTG(v) => {
            a.out.lines.aux += 1;
            if let Some(c) = a.cur.as_mut() {
                c.speed = c.speed.or(v.speed_over_ground.map(|k| k * KNOTS_TO_MPS));
                c.course = c.course.or(v.true_course);
            }
        }
        _ => a.out.lines.aux += 1,
    }
}

/// A decoded sentence: GGA, RMC and GSA in tessera's own form (from the fast path or the
/// crate), anything else as the crate gives it.
#[derive(Debug)]
enum Decoded {
    Gga(Gga),
    Rmc(Rmc),
    Gsa(Gsa),
    Other(Box<ParseResult>),
}

/// Why a sentence could not be used: the reason and what was wrong.
type Refused = (Reason, String);

/// Decode a checked sentence: the strict fast path for the common GGA/RMC/GSA, else the crate.
fn decode(kind: &str, s: &str) -> Result<Decoded, Refused> {
    match decode_fast(kind, s) {
        Some(d) => Ok(d),
        None => decode_with_crate(kind, s),
    }
}

/// The fast path alone: `None` for any sentence it leaves to the crate.
fn decode_fast(kind: &str, s: &str) -> Option<Decoded> {
    match kind.as_bytes() {
        b"GGA" => fast::gga(s).map(Decoded::Gga),
        b"RMC" => fast::rmc(s).map(Decoded::Rmc),
        b"GSA" => fast::gsa(s).map(Decoded::Gsa),
        _ => None,
    }
}

/// The position of a GGA/RMC/GLL/GNS sentence read from its raw fields by the decimal point
/// ([`fast::position_field`]), whatever the crate made of them; `None` when the sentence has
/// no position fields.
fn raw_position(kind: &str, s: &str) -> Result<Option<(f64, f64)>, Refused> {
    let first = match kind {
        "GGA" | "GNS" => 1,
        "RMC" => 2,
        "GLL" => 0,
        PUBX_POSITION => 2,
        _ => return Ok(None),
    };
    let data = s
        .get(s.find(',').map_or(s.len(), |c| c + 1)..s.rfind('*').unwrap_or(s.len()))
        .unwrap_or("");
    let f: Vec<&str> = data.split(',').skip(first).take(4).collect();
    let [lat, ns, lon, ew] = f[..] else {
        return Ok(None);
    };
    let at = |e: Refused| (e.0, format!("{kind}: {}", e.1));
    let lat = fast::position_field(lat, ns, 90, b'N', b'S').map_err(at)?;
    let lon = fast::position_field(lon, ew, 180, b'E', b'W').map_err(at)?;
    match (lat, lon) {
        (Some(a), Some(o)) => Ok(Some((a, o))),
        (None, None) => Ok(None),
        _ => Err((Reason::Unparseable, format!("{kind}: latitude or longitude missing"))),
    }
}

/// `s` with its coordinate fields written at the full width the `nmea` crate expects (degrees
/// with leading zeros: `159.9300` → `00159.9300`) and a new checksum, or `None` when they
/// already are. The crate then decodes the other fields; positions come from [`raw_position`].
fn padded_coordinates(kind: &str, s: &str) -> Option<String> {
    let (lat_at, lon_at) = match kind {
        "GGA" => (2, 4),
        "RMC" => (3, 5),
        "GLL" => (1, 3),
        _ => return None,
    };
    let star = s.rfind('*')?;
    let mut f: Vec<String> = s[..star].split(',').map(str::to_string).collect();
    let mut changed = false;
    for (at, width) in [(lat_at, 4), (lon_at, 5)] {
        let Some(v) = f.get_mut(at) else { continue };
        let int_len = v.find('.').unwrap_or(v.len());
        if !v.is_empty() && int_len < width && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            *v = format!("{}{v}", "0".repeat(width - int_len));
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    let body = f.join(",");
    Some(format!("{body}*{:02X}", checksum(&body.as_bytes()[1..])))
}

/// The longest sentence the `nmea` crate decodes (NMEA 0183 itself allows 82 characters).
const CRATE_MAX_LEN: usize = 102;

/// Why the crate refused a sentence, said the way a receiver's owner understands it: a
/// sentence too long for the decoder names the limits; a position sentence with an empty time
/// is a receiver without a fix (`no_fix`), not a parser error.
fn crate_error(kind: &str, s: &str, e: &nmea::Error) -> Refused {
    if s.len() > CRATE_MAX_LEN {
        return (
            Reason::Unparseable,
            format!(
                "{kind} sentence is {} characters; tessera decodes up to {CRATE_MAX_LEN} (NMEA 0183 allows 82)",
                s.len()
            ),
        );
    }
    let time_field = match kind {
        "GGA" | "RMC" | "GNS" => s.split(',').nth(1),
        "GLL" => s.split(',').nth(5),
        _ => None,
    };
    if time_field == Some("") {
        return (Reason::NoFix, format!("{kind} with empty time: receiver has no fix"));
    }
    let msg = e.to_string();
    let near = msg
        .split_once("input: \"")
        .map(|(_, rest)| rest.split('"').next().unwrap_or(""));
    match near {
        Some(rest) => (
            Reason::Unparseable,
            format!("{kind}: cannot decode the fields from {:?}", clip(rest)),
        ),
        None => (Reason::Unparseable, format!("{kind}: {}", clip(&msg))),
    }
}

/// Decode with the `nmea` crate (the reference the fast path is tested against), positions
/// read by [`raw_position`].
fn decode_with_crate(kind: &str, s: &str) -> Result<Decoded, Refused> {
    let pos = raw_position(kind, s)?;
    let padded = padded_coordinates(kind, s);
    let parsed = nmea::parse_str(padded.as_deref().unwrap_or(s)).map_err(|e| crate_error(kind, s, &e))?;
    let (lat, lon) = (pos.map(|p| p.0), pos.map(|p| p.1));
    Ok(match parsed {
        ParseResult::GGA(g) => Decoded::Gga(Gga {
            lat,
            lon,
            ..Gga::from(&g)
        }),
        ParseResult::RMC(r) => Decoded::Rmc(Rmc {
            lat,
            lon,
            ..Rmc::from(&r)
        }),
        ParseResult::GSA(g) => Decoded::Gsa(Gsa::from(&g)),
        ParseResult::GLL(mut g) => {
            (g.latitude, g.longitude) = (lat, lon);
            Decoded::Other(Box::new(ParseResult::GLL(g)))
        }
        other => Decoded::Other(Box::new(other)),
    })
}

#[cfg(test)]
#[path = "../../tests/support/corpus.rs"]
mod corpus;

#[cfg(test)]
mod tests {
    use super::*;

    fn nmea(body: &str) -> String {
        format!("${body}*{:02X}", checksum(body.as_bytes()))
    }

    #[test]
    fn gga_and_rmc_of_one_cycle_merge_into_one_fix() {
        let log = format!(
            "{}\n{}\n",
            nmea("GNGGA,101500.00,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GNRMC,101500.00,A,5230.0000,N,01324.0000,E,10.0,90.0,161126,,,A")
        );
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        let f = &p.fixes[0];
        assert_eq!(f.time_ms, 1_794_824_100_000); // 2026-11-16T10:15:00Z
        assert_eq!((f.sats, f.hdop, f.alt_m), (Some(9), Some(0.8), Some(40.0)));
        assert!((f.speed_mps.unwrap() - 5.14444).abs() < 1e-4);
        assert_eq!(p.lines.fix, 2);
    }

    #[test]
    fn date_is_carried_into_gga_only_stretch_and_rolls_at_midnight() {
        let log = [
            nmea("GPRMC,235958,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A"),
            nmea("GPGGA,235959,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GPGGA,000000,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        let t: Vec<i64> = p.fixes.iter().map(|f| f.time_ms).collect();
        assert_eq!(t.len(), 3);
        assert_eq!(t[1] - t[0], 1000);
        assert_eq!(t[2] - t[1], 1000);
    }

    #[test]
    fn gga_before_the_first_dated_rmc_is_backfilled() {
        let log = [
            nmea("GPGGA,120000,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GPRMC,120001,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 2);
        assert_eq!(p.fixes[1].time_ms - p.fixes[0].time_ms, 1000);
    }

    #[test]
    fn gga_without_any_date_is_rejected_no_date() {
        let log = nmea("GPGGA,120000,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,") + "\n";
        let p = parse(log.as_bytes());
        assert!(p.fixes.is_empty());
        assert_eq!(p.rejections[0].reason, Reason::NoDate);
        assert!(p.lines.balanced());
    }

    #[test]
    fn blackvue_frame_time_supplies_the_date() {
        let log = format!(
            "[1794824100000]{}\n",
            nmea("GPGGA,101500,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,")
        );
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 1);
        assert_eq!(p.fixes[0].time_ms, 1_794_824_100_000);
    }

    #[test]
    fn gnsslogger_framing_is_unwrapped() {
        let log = format!(
            "# header\r\nFix,GPS,1,2\r\nNMEA,{},1794824100000\r\n",
            nmea("GPRMC,101500,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A")
        );
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        assert_eq!((p.lines.comment, p.lines.ignored), (1, 1));
    }

    #[test]
    fn every_bad_line_gets_its_own_reason() {
        let good = nmea("GPGGA,101500,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,");
        let log = [
            "junk".to_string(),
            format!(
                "{}*{:02X}",
                &good[..good.len() - 3],
                checksum(&good.as_bytes()[1..good.len() - 3]) ^ 0x55
            ),
            "$GPGGA,101500,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,".to_string(),
            good[..good.len() - 1].to_string(), // `*h`
            nmea("GPGGA,101501,5230.0000,N,01324.0000,E,0,00,,,M,0,M,,"),
            "$GPGGA,1015".to_string(),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        let reasons: Vec<&str> = p.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "not_nmea",
                "bad_checksum",
                "missing_checksum",
                "truncated",
                "no_fix",
                "truncated"
            ]
        );
        let lines: Vec<u32> = p.rejections.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6]);
        assert!(p.lines.balanced());
    }

    #[test]
    fn nul_bytes_and_binary_never_panic() {
        let mut bytes = b"\x00\x00$GPGGA,\xff\xfe\n\xb5b\x01\x07".to_vec();
        bytes.extend_from_slice(nmea("GPRMC,101500,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A").as_bytes());
        let p = parse(&bytes);
        assert_eq!(p.fixes.len(), 1);
        assert!(p.lines.balanced());
    }

    #[test]
    fn long_gns_mode_string_is_decoded() {
        let log = [
            nmea("GNGNS,101500.00,5230.0000,N,01324.0000,E,AAAAAN,12,0.7,40.0,0.0,,,V"),
            nmea("GNRMC,101500.00,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        assert_eq!(p.fixes[0].sats, Some(12));
    }

    #[test]
    fn rule_zda_before_gga_dates_its_own_cycle_across_midnight() {
        let log = [
            nmea("GPZDA,235959.00,17,11,2026,00,00"),
            nmea("GPGGA,235959.00,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GPZDA,000000.00,18,11,2026,00,00"),
            nmea("GPGGA,000000.00,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GPZDA,000001.00,18,11,2026,00,00"),
            nmea("GPGGA,000001.00,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        assert!(p.rejections.is_empty(), "{:?}", p.rejections);
        let t: Vec<i64> = p.fixes.iter().map(|f| f.time_ms).collect();
        // 2026-11-17T23:59:59Z, then one second apart.
        assert_eq!(t, [1_794_959_999_000, 1_794_960_000_000, 1_794_960_001_000]);
    }

    #[test]
    fn rule_a_date_is_carried_to_the_nearest_day_in_either_direction() {
        // The dated RMC comes after midnight, the undated GGA before it belongs to the day before.
        let log = [
            nmea("GPGGA,235959,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
            nmea("GPRMC,000000,A,5230.0000,N,01324.0000,E,0.0,0.0,181126,,,A"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        let t: Vec<i64> = p.fixes.iter().map(|f| f.time_ms).collect();
        assert_eq!(t, [1_794_959_999_000, 1_794_960_000_000]);
    }

    #[test]
    fn rule_degrees_without_leading_zeros_are_read_by_the_decimal_point() {
        // Fast path (common RMC) and the crate fallback (NMEA 4.1 RMC with a nav status) alike.
        for body in [
            "GPRMC,143744,A,4426.2920,N,159.9300,W,0.0,0.0,181126,,,A",
            "GPRMC,143744,A,4426.2920,N,159.9300,W,0.0,0.0,181126,,,A,V",
        ] {
            let p = parse(nmea(body).as_bytes());
            assert_eq!(p.fixes.len(), 1, "{body}: {:?}", p.rejections);
            let f = &p.fixes[0];
            assert!((f.lat - (44.0 + 26.292 / 60.0)).abs() < 1e-12, "{body}: {}", f.lat);
            assert!((f.lon + (1.0 + 59.93 / 60.0)).abs() < 1e-12, "{body}: {}", f.lon);
        }
        let p = parse(nmea("GPGGA,143744,426.2920,N,00000.5000,E,1,09,0.8,40.0,M,0,M,,").as_bytes());
        let p2 = parse(
            format!(
                "{}\n{}",
                nmea("GPRMC,143744,A,426.2920,N,00.5000,E,0.0,0.0,181126,,,A"),
                nmea("GPGGA,143744,426.2920,N,00000.5000,E,1,09,0.8,40.0,M,0,M,,")
            )
            .as_bytes(),
        );
        assert_eq!(p.fixes.len(), 0); // no date, but never placed at 42.1°
        assert_eq!(p2.fixes.len(), 1, "{:?}", p2.rejections);
        assert!((p2.fixes[0].lat - 4.4382).abs() < 1e-4);
        assert!((p2.fixes[0].lon - 0.5 / 60.0).abs() < 1e-12);
        // Ill-formed coordinates are rejected with the field named, never placed elsewhere.
        for (body, reason, needle) in [
            (
                "GPRMC,143744,A,4.5,N,00159.9300,W,0.0,0.0,181126,,,A",
                "unparseable",
                "latitude \"4.5\"",
            ),
            (
                "GPRMC,143744,A,4475.0000,N,00159.9300,W,0.0,0.0,181126,,,A",
                "bad_position",
                "latitude \"4475.0000\" is out of range",
            ),
            (
                "GPRMC,143744,A,9100.0000,N,00159.9300,W,0.0,0.0,181126,,,A",
                "bad_position",
                "at most 90",
            ),
            (
                "GPRMC,143744,A,4426.2920,N,1234159.9300,W,0.0,0.0,181126,,,A",
                "unparseable",
                "longitude",
            ),
            (
                "GPRMC,143744,A,4426.2920,X,00159.9300,W,0.0,0.0,181126,,,A",
                "unparseable",
                "hemisphere \"X\"",
            ),
        ] {
            let p = parse(nmea(body).as_bytes());
            assert!(p.fixes.is_empty(), "{body}");
            assert_eq!(p.rejections[0].reason.as_str(), reason, "{body}: {:?}", p.rejections);
            assert!(
                p.rejections[0].detail.contains(needle),
                "{body}: {}",
                p.rejections[0].detail
            );
        }
    }

    #[test]
    fn rule_pubx_00_is_a_position_and_other_proprietary_sentences_are_counted_by_type() {
        let log = [
            nmea("PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0,0.007,77.52,0.007,,0.92,1.19,0.77,9,0,0"),
            nmea("GPZDA,081350.00,18,11,2026,00,00"),
            nmea("PUBX,03,11,23,-,,,45,010,29,-,,,46,013"),
            nmea("PGRME,15.0,M,45.0,M,25.0,M"),
            nmea("PUBX,00,081351.00,,,,,0.000,NF,511.0,511.0,0.0,0.0,0.0,,99.99,99.99,99.99,0,0,0"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        assert_eq!(p.fixes.len(), 1, "{:?}", p.rejections);
        let f = &p.fixes[0];
        assert!((f.lat - (47.0 + 17.113_21 / 60.0)).abs() < 1e-12);
        assert_eq!(
            (f.sats, f.hdop, f.alt_m, f.quality),
            (Some(9), Some(0.92), Some(546.589), 1)
        );
        assert!((f.speed_mps.unwrap() - 0.007 / 3.6).abs() < 1e-6);
        assert_eq!(p.lines.ignored_types.get("PUBX,03"), Some(&1));
        assert_eq!(p.lines.ignored_types.get("PGRME"), Some(&1));
        assert_eq!(p.rejections.len(), 1);
        assert_eq!(p.rejections[0].reason, Reason::NoFix);
        assert!(p.lines.balanced());
        assert!(matches!(check_line(&nmea("PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0,0.007,77.52,0.007,,0.92,1.19,0.77,9,0,0")), LineCheck::Sentence { .. }));
        assert!(matches!(
            check_line("$P,1,2*00"),
            LineCheck::Rejected(Reason::Unparseable, _)
        ));
    }

    #[test]
    fn rule_empty_field_sentences_of_a_receiver_without_fix_are_no_fix_or_aux() {
        let log = [
            nmea("GPGGA,,,,,,0,00,99.99,,,,,,"),
            nmea("GPRMC,,V,,,,,,,,,,N"),
            nmea("GPGLL,,,,,,V,N"),
            nmea("GPGNS,,,,,,NN,00,99.99,,,,"),
            nmea("GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99"),
            nmea("GPVTG,,,,,,,,,N"),
            nmea("GPZDA,,,,,,"),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        let reasons: Vec<&str> = p.rejections.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons, ["no_fix"; 4], "{:?}", p.rejections);
        assert_eq!(p.lines.aux, 3);
        for r in &p.rejections {
            assert!(r.detail.len() < 60 && !r.detail.contains("Error"), "{}", r.detail);
        }
    }

    #[test]
    fn rule_gps_week_rollover_is_corrected_by_the_blackvue_frame_clock_and_reported() {
        // Frame times say 2026-11-18, RMC dates say 2007-04-04: exactly 1024 weeks earlier.
        let frame = 1_794_996_000_000; // 2026-11-18T10:00:00Z
        let log = [
            format!(
                "[{frame}]{}",
                nmea("GPRMC,100000,A,5230.0000,N,01324.0000,E,0.0,0.0,040407,,,A")
            ),
            format!(
                "[{}]{}",
                frame + 1000,
                nmea("GPRMC,100001,A,5230.0000,N,01324.0000,E,0.0,0.0,040407,,,A")
            ),
        ]
        .join("\n");
        let p = parse(log.as_bytes());
        let t: Vec<i64> = p.fixes.iter().map(|f| f.time_ms).collect();
        assert_eq!(t, [frame, frame + 1000]);
        assert_eq!(p.lines.corrected.get("gps_week_rollover"), Some(&2));
        // The same file received in 2026 without frame times: the receipt confirms it.
        let plain = log
            .lines()
            .map(|l| l.split_once(']').unwrap().1)
            .collect::<Vec<_>>()
            .join("\n");
        let r = Receipt {
            received_at_ms: frame + 86_400_000,
            max_future_ms: 300_000,
            max_age_ms: None,
        };
        let p = parse_with(plain.as_bytes(), Some(&r));
        assert_eq!(
            p.fixes.iter().map(|f| f.time_ms).collect::<Vec<_>>(),
            [frame, frame + 1000]
        );
        // Without any independent clock it is kept as the receiver said (and would be rejected
        // `before_receipt` by a lake, which always knows the receipt).
        assert_eq!(
            parse(plain.as_bytes()).fixes[0].time_ms,
            frame - super::receipt::ROLLOVER_MS
        );
    }

    #[test]
    fn rule_fixes_stamped_after_their_receipt_are_rejected_with_the_cycle_lines() {
        let log = [
            nmea("GPRMC,100000,A,5230.0000,N,01324.0000,E,0.0,0.0,181126,,,A"),
            nmea("GPGGA,100000,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,"),
        ]
        .join("\n");
        let r = Receipt {
            received_at_ms: 1_794_996_000_000 - 3_600_000,
            max_future_ms: 300_000,
            max_age_ms: None,
        };
        let p = parse_with(log.as_bytes(), Some(&r));
        assert!(p.fixes.is_empty());
        let got: Vec<(u32, &str)> = p.rejections.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(got, [(1, "after_receipt"), (2, "after_receipt")]);
        assert!(p.lines.balanced());
    }

    #[test]
    fn rule_a_nan_or_infinite_number_is_a_rejection_naming_the_field() {
        for (field, body) in [
            ("HDOP", "GPGGA,101500,5230.0000,N,01324.0000,E,1,09,NaN,40.0,M,0,M,,"),
            ("altitude", "GPGGA,101500,5230.0000,N,01324.0000,E,1,09,0.8,inf,M,0,M,,"),
        ] {
            let log = format!(
                "{}\n{}",
                nmea(body),
                nmea("GPRMC,101500,A,5230.0000,N,01324.0000,E,0.0,0.0,161126,,,A")
            );
            let p = parse(log.as_bytes());
            assert!(
                p.fixes
                    .iter()
                    .all(|f| f.hdop.is_none_or(f32::is_finite) && f.alt_m.is_none_or(f32::is_finite)),
                "{field}"
            );
            if p.fixes.is_empty() {
                assert!(
                    p.rejections
                        .iter()
                        .any(|r| r.detail.contains(field) || r.reason == Reason::Unparseable),
                    "{:?}",
                    p.rejections
                );
            }
        }
    }

    #[test]
    fn rule_an_over_long_sentence_names_the_limit() {
        let body = format!(
            "GPGGA,101500,5230.0000,N,01324.0000,E,1,09,0.8,40.0,M,0,M,,{}",
            "0".repeat(80)
        );
        let p = parse(nmea(&body).as_bytes());
        assert_eq!(p.rejections[0].reason, Reason::Unparseable);
        let d = &p.rejections[0].detail;
        let n = nmea(&body).len();
        assert!(
            d.contains(&format!("{n} characters")) && d.contains("102") && d.contains("82"),
            "{d}"
        );
    }

    /// Every file below `dir` (recursively).
    fn files_under(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    /// The checked GGA/RMC/GSA sentences of the sample fleet and (when present) the shared corpus.
    fn real_sentences() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        files_under(&root.join("../../data/sample"), &mut files);
        if let Some(dir) = corpus::corpus("nmea") {
            files_under(&dir, &mut files);
        }
        let mut out = Vec::new();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else { continue };
            for line in String::from_utf8_lossy(&bytes).lines() {
                let (_, Some(sentence)) = frame(line.trim()) else {
                    continue;
                };
                if let Ok(c) = check_sentence(sentence, false)
                    && matches!(c.kind, "GGA" | "RMC" | "GSA")
                {
                    out.push(sentence.to_string());
                }
            }
        }
        out
    }

    /// The differential rule of `fast.rs`: a sentence the fast path accepts is one the crate
    /// parses to the same values.
    fn agrees_with_crate(s: &str) -> Option<bool> {
        let kind = &s[3..6];
        let fast = decode_fast(kind, s)?;
        Some(match (fast, decode_with_crate(kind, s)) {
            (Decoded::Gga(x), Ok(Decoded::Gga(y))) => x == y,
            (Decoded::Rmc(x), Ok(Decoded::Rmc(y))) => x == y,
            (Decoded::Gsa(x), Ok(Decoded::Gsa(y))) => x == y,
            _ => false,
        })
    }

    fn with_checksum(body: &str) -> String {
        format!("${body}*{:02X}", checksum(body.as_bytes()))
    }

    #[test]
    fn fast_path_agrees_with_the_nmea_crate_on_every_real_and_mutated_sentence() {
        let real = real_sentences();
        assert!(real.len() > 10_000, "sample fleet alone has more: {}", real.len());
        let mut fast_taken = 0;
        for s in &real {
            match agrees_with_crate(s) {
                Some(true) => fast_taken += 1,
                Some(false) => panic!("fast path disagrees with the nmea crate on {s}"),
                None => {}
            }
        }
        // The fast path must actually carry the common sentences.
        assert!(
            fast_taken * 10 > real.len() * 9,
            "fast path took {fast_taken} of {}",
            real.len()
        );
        // Mutations: every character of a sample of sentences replaced by characters that
        // matter to number and field parsing, each with a valid checksum.
        let subs = [
            "", "0", "9", ".", ",", "-", "+", "e", "E", "N", "S", "W", "A", "V", "M", " ", "*", "00", ",,", "1.", ".5",
        ];
        let (mut tried, mut taken) = (0u64, 0u64);
        for s in real.iter().step_by((real.len() / 400).max(1)) {
            let body = &s[1..s.rfind('*').unwrap()];
            for i in 6..body.len() {
                for sub in subs {
                    let mutated = format!("{}{}{}", &body[..i], sub, &body[i + 1..]);
                    let m = with_checksum(&mutated);
                    tried += 1;
                    match agrees_with_crate(&m) {
                        Some(true) => taken += 1,
                        Some(false) => panic!("fast path disagrees with the nmea crate on {m} (from {s})"),
                        None => {}
                    }
                }
            }
        }
        eprintln!(
            "real {} fast {fast_taken}; mutated tried {tried}, fast path took {taken}",
            real.len()
        );
        assert!(
            tried > 100_000 && taken > 10_000,
            "tried {tried}, fast path took {taken}"
        );
    }

    #[test]
    fn fast_path_leaves_uncommon_forms_to_the_crate() {
        for body in [
            "GPGGA,,,,,,0,00,99.99,,,,,,",                               // no time, no position
            "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9", // geoid without a following comma
            "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,A,V", // NMEA 4.1 nav status
            "GPGSA,A,3,,,,,,,,,,,,,,,",                                  // empty tail
            "GPGSA,A,3,04,05,,09,12,,,24,,,,,2,1.3,2.1",                 // integer PDOP
            "GNGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1,1",             // system id
        ] {
            let s = with_checksum(body);
            assert_eq!(agrees_with_crate(&s), None, "{s}");
        }
        // Accepted forms decode to exactly what the crate gives.
        for body in [
            "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
            "GPGGA,235959.999,0000.0000,S,18000.0000,W,8,12,0.5,-12.25,M,-3.0,M,,",
            "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W",
            "GPRMC,000000.50,V,5231.0000,N,01324.0000,E,,,311299,,,N",
            "GPGSA,A,3,04,05,,09,12,,,24,,,,,2.5,1.3,2.1",
        ] {
            let s = with_checksum(body);
            assert_eq!(agrees_with_crate(&s), Some(true), "{s}");
        }
    }
}

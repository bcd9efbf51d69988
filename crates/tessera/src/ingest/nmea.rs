//! NMEA 0183 (plain, BlackVue `.gps`, Android GnssLogger): framing, validation and the merge of
//! one receiver cycle's sentences (GGA + RMC + GLL/GNS, with GSA/VTG/ZDA) into one fix.
//!
//! Sentences are decoded by the `nmea` crate after tessera has checked framing and checksum
//! itself (so the rejection says exactly what was wrong). GNS is decoded here because the crate
//! fails on long mode strings. The common forms of GGA, RMC and GSA — nearly every line of a
//! dashcam trace — go through strict decoders first (`fast.rs`, ~2x the crate's speed), which are
//! tested to agree with the crate on every sentence they accept and hand everything else to it.

use super::fast::{self, Gga, Gsa, Rmc};
use crate::fix::Fix;
use crate::report::{LineCounts, Reason, Rejection};
use chrono::{Duration, NaiveDate, NaiveTime, Timelike};
use nmea::ParseResult;

const DAY_MS: i64 = 86_400_000;
const HALF_DAY_MS: i64 = DAY_MS / 2;
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
}

/// Position source within a cycle, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PosSrc {
    Gga,
    Gns,
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
        if let (Some(lat), Some(lon)) = (lat, lon) {
            if self.pos.is_none_or(|(s, _, _)| src < s) {
                self.pos = Some((src, lat, lon));
            }
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
    /// Last known (date, time of day) to carry into GGA-only stretches.
    carried: Option<(NaiveDate, i64)>,
    pending: Vec<Pending>,
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

    fn learn_date(&mut self, date: NaiveDate, tod: i64) {
        self.carried = Some((date, tod));
        if !self.pending.is_empty() {
            for p in std::mem::take(&mut self.pending) {
                // Cycles before the first date: same day unless that would put them > 12 h
                // after the dated one (then they were before midnight).
                let d = if p.cycle.tod_ms - tod > HALF_DAY_MS {
                    date - Duration::days(1)
                } else {
                    date
                };
                self.emit(p.cycle, d);
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
        } else if let Some((d, last_tod)) = self.carried {
            // GGA-only stretch: carry the date, rolling over at midnight.
            let d = if c.tod_ms < last_tod - HALF_DAY_MS {
                d + Duration::days(1)
            } else {
                d
            };
            self.carried = Some((d, c.tod_ms));
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
    let star = rest.rfind('*');
    let head = match star {
        Some(s) => &rest[..s],
        None => rest,
    };
    // A collision (`$GPGGA,0301$GPGLL,...`) keeps the last sentence start.
    let Some(dollar) = head.rfind('$') else {
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
    if logger {
        if let Some(ms) = rest[end..].strip_prefix(',') {
            frame_ms = ms.trim().parse::<i64>().ok();
        }
    }
    (frame_ms, Some(sentence))
}

fn parse_latlon(v: &str, hemi: &str, deg_digits: usize) -> Option<f64> {
    if v.len() < deg_digits + 1 {
        return None;
    }
    let deg: f64 = v[..deg_digits].parse().ok()?;
    let min: f64 = v[deg_digits..].parse().ok()?;
    let x = deg + min / 60.0;
    match hemi {
        "N" | "E" => Some(x),
        "S" | "W" => Some(-x),
        _ => None,
    }
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
fn parse_gns(body: &str) -> Result<Gns, String> {
    let f: Vec<&str> = body.split(',').collect();
    if f.len() < 10 {
        return Err(format!("GNS has {} fields, expected at least 10", f.len()));
    }
    let t = NaiveTime::parse_from_str(f[1], "%H%M%S%.f").map_err(|_| format!("GNS time {:?}", f[1]))?;
    let mode = f[6];
    let valid = !mode.is_empty() && mode.chars().any(|c| !matches!(c, 'N' | 'n'));
    Ok(Gns {
        tod: tod_ms(&t),
        lat: parse_latlon(f[2], f[3], 2),
        lon: parse_latlon(f[4], f[5], 3),
        valid,
        sats: f[7].parse().ok(),
        hdop: f[8].parse().ok(),
        alt: f[9].parse().ok(),
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
    let mut a = Assembler::new();
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

/// Address, type and checksum of one framed sentence.
fn check_sentence(s: &str, last_unterminated: bool) -> Result<Checked<'_>, Unusable> {
    let bytes = s.as_bytes();
    if bytes.len() < 7 || !bytes[1..6].iter().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Unusable::Rejected(
            Reason::Unparseable,
            format!("bad sentence address in {:?}", clip(s)),
        ));
    }
    let talker = [bytes[1], bytes[2]];
    let kind = &s[3..6];
    if bytes[1] == b'P' || !used(kind.as_bytes()) {
        let name = if bytes[1] == b'P' {
            s[1..].split(',').next().unwrap_or("P").to_string()
        } else {
            kind.to_string()
        };
        return Err(Unusable::Ignored(name));
    }
    let Some(star) = s.rfind('*') else {
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
    if kind.as_bytes() == b"GNS" {
        match parse_gns(body) {
            Ok(g) => {
                let c = a.cycle_for(g.tod, talker, frame_ms);
                c.lines.push(line_no);
                c.set_pos(PosSrc::Gns, g.lat, g.lon, g.valid);
                c.sats = c.sats.or(g.sats);
                c.hdop = c.hdop.or(g.hdop);
                c.alt = c.alt.or(g.alt);
            }
            Err(e) => a.reject(line_no, Reason::Unparseable, e),
        }
        return;
    }
    let decoded = match decode(kind, s) {
        Ok(d) => d,
        Err(e) => {
            a.reject(line_no, Reason::Unparseable, e);
            return;
        }
    };
    match decoded {
        Decoded::Gga(g) => {
            let Some(t) = g.time else {
                a.reject(line_no, Reason::Unparseable, "GGA without time");
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
                a.reject(line_no, Reason::NoFix, "RMC without time");
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
                a.reject(line_no, Reason::NoFix, "GLL without time");
                return;
            };
            let c = a.cycle_for(tod_ms(&t), talker, frame_ms);
            c.lines.push(line_no);
            c.set_pos(PosSrc::Gll, g.latitude, g.longitude, g.valid);
        }
        ParseResult::ZDA(z) => {
            a.out.lines.aux += 1;
            if let (Some(t), Some(d), Some(m), Some(y)) = (z.utc_time, z.day, z.month, z.year) {
                if let Some(date) = NaiveDate::from_ymd_opt(i32::from(y), u32::from(m), u32::from(d)) {
                    let tod = tod_ms(&t);
                    match a.cur.as_mut() {
                        Some(c) if c.tod_ms == tod => c.date = c.date.or(Some(date)),
                        _ => a.learn_date(date, tod),
                    }
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

/// Decode a checked sentence: the strict fast path for the common GGA/RMC/GSA, else the crate.
fn decode(kind: &str, s: &str) -> Result<Decoded, String> {
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

/// Decode with the `nmea` crate only (the reference the fast path is tested against).
fn decode_with_crate(kind: &str, s: &str) -> Result<Decoded, String> {
    match nmea::parse_str(s) {
        Ok(ParseResult::GGA(g)) => Ok(Decoded::Gga(Gga::from(&g))),
        Ok(ParseResult::RMC(r)) => Ok(Decoded::Rmc(Rmc::from(&r))),
        Ok(ParseResult::GSA(g)) => Ok(Decoded::Gsa(Gsa::from(&g))),
        Ok(other) => Ok(Decoded::Other(Box::new(other))),
        Err(e) => Err(format!("{kind}: {e}")),
    }
}

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
        files_under(&root.join("../../../shared/corpus/nmea"), &mut files);
        let mut out = Vec::new();
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else { continue };
            for line in String::from_utf8_lossy(&bytes).lines() {
                let (_, Some(sentence)) = frame(line.trim()) else {
                    continue;
                };
                if let Ok(c) = check_sentence(sentence, false) {
                    if matches!(c.kind, "GGA" | "RMC" | "GSA") {
                        out.push(sentence.to_string());
                    }
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

//! Strict decoders for the three sentences that make up nearly every line of a dashcam trace
//! (GGA, RMC, GSA), beside the `nmea` crate.
//!
//! Each accepts only the plain, common form of its sentence (every field the usual digits,
//! decimals and letters, no optional NMEA 4.x tails) and returns `None` for anything else, which
//! then goes to the `nmea` crate as before. The contract, checked by a differential test over
//! every line of the gpsd corpus, the sample fleet and hundreds of thousands of mutations of them:
//! **whenever a decoder here returns `Some(x)`, the `nmea` crate parses the same sentence
//! successfully and [`From`] of its result equals `x`** (same floats, bit for bit: the same
//! arithmetic on values parsed by correctly rounded parsers). So the fast path changes speed,
//! never a fix or a rejection.
//!
//! Input: the whole sentence `$TTSSS,...*hh` whose checksum, address and ASCII-ness
//! `check_sentence` has already verified.

use crate::report::Reason;
use chrono::{NaiveDate, NaiveTime};
use nmea::sentences::FixType;

/// The GGA fields tessera uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gga {
    pub time: Option<NaiveTime>,
    pub quality: u8,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub sats: Option<u32>,
    pub hdop: Option<f32>,
    pub alt: Option<f32>,
}

/// The RMC fields tessera uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rmc {
    pub time: Option<NaiveTime>,
    pub valid: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kn: Option<f32>,
    pub course: Option<f32>,
    pub date: Option<NaiveDate>,
}

/// The GSA fields tessera uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Gsa {
    pub hdop: Option<f32>,
    pub prns: usize,
}

/// GGA fix quality digit → tessera's quality code.
pub(crate) fn fix_quality(t: &FixType) -> u8 {
    use FixType::*;
    match t {
        Invalid => 0,
        Gps => 1,
        DGps => 2,
        Pps => 3,
        Rtk => 4,
        FloatRtk => 5,
        Estimated => 6,
        Manual => 7,
        Simulation => 8,
    }
}

impl From<&nmea::sentences::GgaData> for Gga {
    fn from(g: &nmea::sentences::GgaData) -> Gga {
        Gga {
            time: g.fix_time,
            quality: g.fix_type.as_ref().map(fix_quality).unwrap_or(0),
            lat: g.latitude,
            lon: g.longitude,
            sats: g.fix_satellites,
            hdop: g.hdop,
            alt: g.altitude,
        }
    }
}

impl From<&nmea::sentences::RmcData> for Rmc {
    fn from(r: &nmea::sentences::RmcData) -> Rmc {
        use nmea::sentences::rmc::RmcStatusOfFix::*;
        Rmc {
            time: r.fix_time,
            valid: matches!(r.status_of_fix, Autonomous | Differential),
            lat: r.lat,
            lon: r.lon,
            speed_kn: r.speed_over_ground,
            course: r.true_course,
            date: r.fix_date,
        }
    }
}

impl From<&nmea::sentences::GsaData> for Gsa {
    fn from(g: &nmea::sentences::GsaData) -> Gsa {
        Gsa {
            hdop: g.hdop,
            prns: g.fix_sats_prn.len(),
        }
    }
}

/// The crate refuses longer sentences.
const SENTENCE_MAX_LEN: usize = 102;

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `d+` or `d+.d+`.
fn unsigned_dec(s: &str) -> bool {
    match s.split_once('.') {
        None => digits(s),
        Some((a, b)) => digits(a) && digits(b),
    }
}

/// `-?` then [`unsigned_dec`].
fn signed_dec(s: &str) -> bool {
    unsigned_dec(s.strip_prefix('-').unwrap_or(s))
}

/// Empty → `Some(None)`; a number of the form `form` accepts → its value; anything else → `None`.
fn opt_num<T: std::str::FromStr>(s: &str, form: fn(&str) -> bool) -> Option<Option<T>> {
    if s.is_empty() {
        Some(None)
    } else if form(s) {
        s.parse().ok().map(Some)
    } else {
        None
    }
}

/// `hhmmss` or `hhmmss.s+`, as the crate's `parse_hms` computes it.
fn hms(f: &str) -> Option<NaiveTime> {
    let b = f.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || !unsigned_dec(&f[4..]) {
        return None;
    }
    let hour: u32 = f[0..2].parse().ok()?;
    let minutes: u32 = f[2..4].parse().ok()?;
    let sec: f64 = f[4..].parse().ok()?;
    if hour >= 24 || minutes >= 60 || sec >= 60. {
        return None;
    }
    NaiveTime::from_hms_nano_opt(
        hour,
        minutes,
        sec.trunc() as u32,
        (sec.fract() * 1_000_000_000f64).round() as u32,
    )
}

/// An NMEA 0183 coordinate field (`[d]ddmm.mmmm` latitude, `[dd]dddmm.mmmm` longitude) and its
/// hemisphere, read by the decimal point: the minutes are the two digits left of the point and
/// whatever digits precede them are the degrees, so receivers that drop leading zeros
/// (`159.9300,W` = 1°59.93′W, `426.2920,N` = 4°26.292′N) are placed where they are.
///
/// Returns `Ok(None)` for an empty field and hemisphere (no position), `Ok(Some(deg))` (signed
/// decimal degrees) for a well-formed one, and `Err(why)` for anything else: missing or unknown
/// hemisphere, fewer than two minute digits, more degree digits than `max_deg` has, minutes
/// ≥ 60, or a value beyond ±`max_deg`. The arithmetic (`deg + min / 60`, both correctly rounded
/// parses) is the `nmea` crate's, so common fields give the same bits.
pub(crate) fn position_field(
    v: &str,
    hemi: &str,
    max_deg: u16,
    pos: &str,
    neg: &str,
) -> Result<Option<f64>, (Reason, String)> {
    let bad = |why: String| Err((Reason::Unparseable, why));
    let what = if max_deg == 90 { "latitude" } else { "longitude" };
    if v.is_empty() && hemi.is_empty() {
        return Ok(None);
    }
    let sign = match hemi {
        h if h == pos => 1.0,
        h if h == neg => -1.0,
        _ => return bad(format!("{what} {v:?} has hemisphere {hemi:?}, expected {pos} or {neg}")),
    };
    let int_len = v.find('.').unwrap_or(v.len());
    let max_deg_digits = if max_deg == 90 { 2 } else { 3 };
    if !unsigned_dec(v) || int_len < 2 || int_len - 2 > max_deg_digits {
        return bad(format!(
            "{what} {v:?} is not [degrees]mm.mmmm (two minute digits before the point, at most {max_deg_digits} degree digits)"
        ));
    }
    let deg: u16 = if int_len == 2 {
        0
    } else {
        v[..int_len - 2].parse().unwrap_or(u16::MAX)
    };
    let min: f64 = v[int_len - 2..].parse().unwrap_or(f64::INFINITY);
    let x = f64::from(deg) + min / 60.;
    if min >= 60. || x > f64::from(max_deg) {
        return Err((
            Reason::BadPosition,
            format!("{what} {v:?} is out of range (minutes < 60, at most {max_deg}°)"),
        ));
    }
    Ok(Some(sign * x))
}

/// [`position_field`] for the fast path: `None` for anything but a present, well-formed value.
fn coord(v: &str, hemi: &str, max_deg: u16, pos: &str, neg: &str) -> Option<f64> {
    position_field(v, hemi, max_deg, pos, neg).ok().flatten()
}

/// Split the data fields (after `$TTSSS,`, before `*`) into `out`; their count, or `None` when
/// the sentence is too long for the crate, holds a second `*`, or has more fields than `out`.
fn fields<'a>(s: &'a str, out: &mut [&'a str; 20]) -> Option<usize> {
    if s.len() > SENTENCE_MAX_LEN || s.len() < 10 || s.as_bytes()[6] != b',' {
        return None;
    }
    let data = &s.as_bytes()[7..];
    let (mut n, mut from) = (0, 0);
    for (i, &b) in data.iter().enumerate() {
        if b == b',' || b == b'*' {
            *out.get_mut(n)? = &s[7 + from..7 + i];
            n += 1;
            from = i + 1;
            if b == b'*' {
                // The checksum is the last thing: a second `*` is not the common form.
                return (data.len() - from <= 2).then_some(n);
            }
        }
    }
    None
}

/// GGA in its common form, or `None`.
pub(crate) fn gga(s: &str) -> Option<Gga> {
    let mut f = [""; 20];
    let n = fields(s, &mut f)?;
    if n < 12 {
        return None;
    }
    let time = hms(f[0])?;
    let lat = coord(f[1], f[2], 90, "N", "S")?;
    let lon = coord(f[3], f[4], 180, "E", "W")?;
    let q = f[5].as_bytes();
    if q.len() != 1 || !(b'0'..=b'8').contains(&q[0]) {
        return None;
    }
    let sats = match f[6] {
        "" => None,
        x if digits(x) && x.len() <= 9 => Some(x.parse().ok()?),
        _ => return None,
    };
    let hdop = opt_num(f[7], unsigned_dec)?;
    let alt = opt_num(f[8], signed_dec)?;
    if !matches!(f[9], "" | "M") {
        return None;
    }
    let _geoid: Option<f32> = opt_num(f[10], signed_dec)?;
    Some(Gga {
        time: Some(time),
        quality: fix_quality(&FixType::from(q[0] as char)),
        lat: Some(lat),
        lon: Some(lon),
        sats,
        hdop,
        alt,
    })
}

/// RMC in its common form (no NMEA 4.1 navigational status), or `None`.
pub(crate) fn rmc(s: &str) -> Option<Rmc> {
    let mut f = [""; 20];
    let n = fields(s, &mut f)?;
    if !(11..=12).contains(&n) {
        return None;
    }
    let time = hms(f[0])?;
    let valid = match f[1] {
        "A" | "D" => true,
        "V" => false,
        _ => return None,
    };
    let lat = coord(f[2], f[3], 90, "N", "S")?;
    let lon = coord(f[4], f[5], 180, "E", "W")?;
    let speed_kn = opt_num(f[6], unsigned_dec)?;
    let course = opt_num(f[7], unsigned_dec)?;
    let date = match f[8] {
        "" => None,
        d if d.len() == 6 && digits(d) => {
            let day: u32 = d[0..2].parse().ok()?;
            let month: u32 = d[2..4].parse().ok()?;
            let yy: i32 = d[4..6].parse().ok()?;
            let year = if (83..=99).contains(&yy) { yy + 1900 } else { yy + 2000 };
            Some(NaiveDate::from_ymd_opt(year, month, day)?)
        }
        _ => return None,
    };
    let variation_ok = match (f[9], f[10]) {
        ("", "") => true,
        (v, "E" | "W") => unsigned_dec(v),
        _ => false,
    };
    if !variation_ok {
        return None;
    }
    if n == 12 && !matches!(f[11], "A" | "D" | "E" | "N") {
        return None;
    }
    Some(Rmc {
        time: Some(time),
        valid,
        lat: Some(lat),
        lon: Some(lon),
        speed_kn,
        course,
        date,
    })
}

/// GSA with its 12 PRN slots (the first used) and three DOPs with decimals, no system id; or
/// `None`.
pub(crate) fn gsa(s: &str) -> Option<Gsa> {
    let mut f = [""; 20];
    let n = fields(s, &mut f)?;
    if n != 17 || !matches!(f[0], "M" | "A") || !matches!(f[1], "1" | "2" | "3") {
        return None;
    }
    let prn_ok = |p: &str| p.is_empty() || (digits(p) && p.len() <= 9);
    if f[2].is_empty() || !f[2..14].iter().all(|p| prn_ok(p)) {
        return None;
    }
    // Decimals with a point: an integer DOP would be taken for one more PRN by the crate.
    let dop = |d: &str| d.contains('.') && unsigned_dec(d);
    if !dop(f[14]) || !dop(f[15]) || !dop(f[16]) {
        return None;
    }
    Some(Gsa {
        hdop: Some(f[15].parse().ok()?),
        prns: f[2..14].iter().filter(|p| !p.is_empty()).count(),
    })
}

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

/// The digits of `d+` or `d+.d+` in one pass over the bytes: the mantissa (`None` past
/// `u64`) and the number of digits after the point; `None` when `b` is not of that form.
/// (`str::split_once(char)` compared each candidate through `memcmp`: a tenth of the durable
/// ingest's CPU.)
fn scan(b: &[u8]) -> Option<(Option<u64>, usize)> {
    let (mut m, mut dot) = (Some(0u64), None);
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            if dot.is_some() {
                return None;
            }
            dot = Some(i);
        } else if c.is_ascii_digit() {
            m = m.and_then(|m| m.checked_mul(10)?.checked_add(u64::from(c - b'0')));
        } else {
            return None;
        }
    }
    match dot {
        None if !b.is_empty() => Some((m, 0)),
        Some(p) if p > 0 && p + 1 < b.len() => Some((m, b.len() - p - 1)),
        _ => None,
    }
}

/// `d+` or `d+.d+`.
fn unsigned_dec(s: &str) -> bool {
    scan(s.as_bytes()).is_some()
}

/// `-?` then [`unsigned_dec`].
fn signed_dec(s: &str) -> bool {
    unsigned_dec(s.strip_prefix('-').unwrap_or(s))
}

/// A float type with Clinger's fast path (Clinger 1990, "How to read floating point numbers
/// accurately"; core's `dec2flt` takes it too): when the mantissa `m` and `10^k` are both exact
/// in the type, `m / 10^k` is one correctly rounded division, so it is bit for bit the correctly
/// rounded value `str::parse` returns.
trait FastFloat: std::str::FromStr + std::ops::Neg<Output = Self> {
    /// `m / 10^frac` when `m` and `10^frac` are exact in the type, else `None`.
    fn fast(m: u64, frac: usize) -> Option<Self>;
}

impl FastFloat for f64 {
    fn fast(m: u64, frac: usize) -> Option<f64> {
        const P10: [f64; 23] = [
            1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18,
            1e19, 1e20, 1e21, 1e22,
        ];
        #[allow(clippy::cast_precision_loss)] // m ≤ 2^53: exact
        (m <= 1 << 53).then(|| P10.get(frac).map(|p| m as f64 / p))?
    }
}

impl FastFloat for f32 {
    fn fast(m: u64, frac: usize) -> Option<f32> {
        const P10: [f32; 11] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
        #[allow(clippy::cast_precision_loss)] // m ≤ 2^24: exact
        (m <= 1 << 24).then(|| P10.get(frac).map(|p| m as f32 / p))?
    }
}

/// The value of `d+` / `d+.d+` (with a leading `-` when `signed`), as `str::parse` gives it;
/// `None` for anything else.
fn dec<T: FastFloat>(s: &str, signed: bool) -> Option<T> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        _ => (false, s),
    };
    let (m, frac) = scan(body.as_bytes())?;
    let v = match m.and_then(|m| T::fast(m, frac)) {
        Some(v) => v,
        None => body.parse().ok()?,
    };
    Some(if neg { -v } else { v })
}

/// Empty → `Some(None)`; a number of the form `d+` / `d+.d+` (`-?` first when `signed`) → its
/// value; anything else → `None`.
fn opt_num<T: FastFloat>(s: &str, signed: bool) -> Option<Option<T>> {
    if s.is_empty() {
        Some(None)
    } else {
        dec(s, signed).map(Some)
    }
}

/// The value of two ASCII digits.
fn two_digits(b: &[u8]) -> u32 {
    u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0')
}

/// `hhmmss` or `hhmmss.s+`, as the crate's `parse_hms` computes it.
fn hms(f: &str) -> Option<NaiveTime> {
    let b = f.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let (hour, minutes) = (two_digits(&b[0..2]), two_digits(&b[2..4]));
    let (m, frac) = scan(&b[4..])?;
    // Up to nine decimals the seconds and nanoseconds are the digits themselves: the crate's
    // float arithmetic below gives the same integers (its errors are ~1e-5 ns, never a tie).
    let (sec, nanos) = match m.filter(|_| frac <= 9) {
        Some(m) => {
            let p = 10u64.pow(frac as u32);
            (m / p, (m % p) * 10u64.pow(9 - frac as u32))
        }
        None => {
            let sec: f64 = f[4..].parse().ok()?;
            if sec >= 60. {
                return None;
            }
            (sec.trunc() as u64, (sec.fract() * 1_000_000_000f64).round() as u64)
        }
    };
    if hour >= 24 || minutes >= 60 || sec >= 60 {
        return None;
    }
    NaiveTime::from_hms_nano_opt(hour, minutes, sec as u32, u32::try_from(nanos).ok()?)
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
    pos: u8,
    neg: u8,
) -> Result<Option<f64>, (Reason, String)> {
    let bad = |why: String| Err((Reason::Unparseable, why));
    let what = if max_deg == 90 { "latitude" } else { "longitude" };
    if v.is_empty() && hemi.is_empty() {
        return Ok(None);
    }
    let sign = match hemi.as_bytes() {
        [h] if *h == pos => 1.0,
        [h] if *h == neg => -1.0,
        _ => {
            let (pos, neg) = (char::from(pos), char::from(neg));
            return bad(format!("{what} {v:?} has hemisphere {hemi:?}, expected {pos} or {neg}"));
        }
    };
    let digits = scan(v.as_bytes());
    let int_len = match digits {
        Some((_, 0)) => v.len(),
        Some((_, frac)) => v.len() - frac - 1,
        None => 0,
    };
    let max_deg_digits = if max_deg == 90 { 2 } else { 3 };
    let Some((m, frac)) = digits.filter(|_| int_len >= 2 && int_len - 2 <= max_deg_digits) else {
        return bad(format!(
            "{what} {v:?} is not [degrees]mm.mmmm (two minute digits before the point, at most {max_deg_digits} degree digits)"
        ));
    };
    // At most three degree digits, all digits (checked above).
    let deg: u16 = v.as_bytes()[..int_len - 2]
        .iter()
        .fold(0, |d, c| d * 10 + u16::from(c - b'0'));
    // The minutes `mm.mmmm` are the mantissa's last `frac + 2` digits.
    let min_m = m.and_then(|m| Some(m % 10u64.checked_pow(u32::try_from(frac + 2).ok()?)?));
    let min: f64 = match min_m.and_then(|m| f64::fast(m, frac)) {
        Some(min) => min,
        None => dec(&v[int_len - 2..], false).unwrap_or(f64::INFINITY),
    };
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
fn coord(v: &str, hemi: &str, max_deg: u16, pos: u8, neg: u8) -> Option<f64> {
    position_field(v, hemi, max_deg, pos, neg).ok().flatten()
}

/// Split the data fields (after `$TTSSS,`, before `*`) into `out`; their count, or `None` when
/// the sentence is too long for the crate, holds a second `*`, or has more fields than `out`.
/// (A word-at-a-time split of the delimiters was tried and was slower: the sentences are short
/// and each field boundary is a branch either way.)
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
    let lat = coord(f[1], f[2], 90, b'N', b'S')?;
    let lon = coord(f[3], f[4], 180, b'E', b'W')?;
    let q = f[5].as_bytes();
    if q.len() != 1 || !(b'0'..=b'8').contains(&q[0]) {
        return None;
    }
    let sats = match f[6] {
        "" => None,
        x if digits(x) && x.len() <= 9 => Some(x.parse().ok()?),
        _ => return None,
    };
    let hdop = opt_num(f[7], false)?;
    let alt = opt_num(f[8], true)?;
    if !matches!(f[9], "" | "M") {
        return None;
    }
    // The geoid separation is not kept: checked for its form (which always parses) only.
    if !(f[10].is_empty() || signed_dec(f[10])) {
        return None;
    }
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
    let lat = coord(f[2], f[3], 90, b'N', b'S')?;
    let lon = coord(f[4], f[5], 180, b'E', b'W')?;
    let speed_kn = opt_num(f[6], false)?;
    let course = opt_num(f[7], false)?;
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
    let dop = |d: &str| d.as_bytes().contains(&b'.') && unsigned_dec(d);
    if !dop(f[14]) || !dop(f[15]) || !dop(f[16]) {
        return None;
    }
    Some(Gsa {
        hdop: Some(dec(f[15], false)?),
        prns: f[2..14].iter().filter(|p| !p.is_empty()).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same_bits<T: FastFloat + std::fmt::Debug + PartialEq + Copy>(s: &str, bits: fn(T) -> u64) {
        let parsed: T = s.parse().ok().expect("decimal parses");
        let fast: T = dec(s, true).expect("decimal form");
        assert_eq!(bits(fast), bits(parsed), "{s}: {fast:?} vs {parsed:?}");
    }

    #[test]
    fn rule_clinger_fast_path_gives_str_parse_bits_at_its_edges() {
        let f64_bits = |x: f64| x.to_bits();
        let f32_bits = |x: f32| u64::from(x.to_bits());
        for s in [
            "0",
            "0.0",
            "-0.0",
            "00012.50",
            "9007199254740992",
            "9007199254740993",
            "9007199254740992.5",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
            "16777216",
            "16777217",
            "1677721.7",
            "0.0000000001",
            "0.00000000001",
            "99999999999999999999",
            "123456789012345678901234567890.5",
            "4807.038",
            "01131.000",
            "0.9",
            "-12.25",
            "359.99",
            "59.999",
        ] {
            same_bits::<f64>(s, f64_bits);
            same_bits::<f32>(s, f32_bits);
        }
        for bad in ["", ".", "1.", ".5", "1.2.3", "1e5", "+1", "--1", " 1", "1,5"] {
            assert_eq!(dec::<f64>(bad, true), None, "{bad:?}");
        }
        assert_eq!(dec::<f64>("-1", false), None, "a sign only where signed");
    }

    proptest! {
        #[test]
        fn rule_a_time_of_day_is_the_crates_float_arithmetic(hh in 0u32..25, mm in 0u32..61, ss in "[0-9]{1,2}", frac in proptest::option::of("[0-9]{1,12}")) {
            let f = format!("{hh:02}{mm:02}{ss}{}", frac.map(|x| format!(".{x}")).unwrap_or_default());
            // The crate's parse_hms arithmetic.
            let sec: f64 = f[4..].parse().expect("seconds");
            let want = (hh < 24 && mm < 60 && sec < 60.)
                .then(|| NaiveTime::from_hms_nano_opt(hh, mm, sec.trunc() as u32, (sec.fract() * 1_000_000_000f64).round() as u32))
                .flatten();
            prop_assert_eq!(hms(&f), want, "{}", f);
        }

        #[test]
        fn rule_a_coordinate_is_degrees_plus_its_parsed_minutes_over_60(deg in "[0-9]{0,3}", mm in "[0-5][0-9]", frac in proptest::option::of("[0-9]{1,22}"), south: bool) {
            let v = format!("{deg}{mm}{}", frac.map(|f| format!(".{f}")).unwrap_or_default());
            let hemi = if south { "S" } else { "N" };
            let got = position_field(&v, hemi, 180, b'N', b'S');
            // The rule, with str::parse: minutes are the two digits left of the point and after.
            let minutes: f64 = v[deg.len()..].parse().expect("minutes");
            let x = f64::from(deg.parse::<u16>().unwrap_or(0)) + minutes / 60.;
            let want = if minutes >= 60. || x > 180. { None } else { Some(if south { -x } else { x }) };
            prop_assert_eq!(got.ok().flatten().map(f64::to_bits), want.map(f64::to_bits), "{}", v);
        }

        #[test]
        fn rule_a_decimal_reads_to_the_bits_of_str_parse(int in "[0-9]{1,20}", frac in proptest::option::of("[0-9]{1,24}"), neg: bool) {
            let s = format!("{}{int}{}", if neg { "-" } else { "" }, frac.map(|f| format!(".{f}")).unwrap_or_default());
            let (a, b): (f64, f64) = (dec(&s, true).expect("form"), s.parse().expect("parses"));
            prop_assert_eq!(a.to_bits(), b.to_bits(), "{}", s);
            let (a, b): (f32, f32) = (dec(&s, true).expect("form"), s.parse().expect("parses"));
            prop_assert_eq!(a.to_bits(), b.to_bits(), "{}", s);
        }
    }
}

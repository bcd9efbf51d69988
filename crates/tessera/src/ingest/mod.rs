//! Ingest: raw source bytes → normalized fixes plus a rejection report that accounts for every
//! line. Pure functions over bytes; the lake module does the file I/O.

mod fast;
pub mod gpx;
pub mod nmea;
pub mod parquet;
pub mod receipt;
pub mod telemetry;

pub use self::nmea::Parsed;
pub use crate::report::{LineCounts, Reason, Rejection};

/// The source formats tessera reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// NMEA 0183 text, including BlackVue `.gps` and Android GnssLogger framings.
    Nmea,
    /// GPX 1.0 / 1.1.
    Gpx,
    /// A Parquet file in tessera's fixes schema (one row per fix).
    Parquet,
    /// An MP4 (or QuickTime) video with camera telemetry: GoPro GPMF, CAMM or BlackVue.
    Mp4,
    /// A raw GoPro GPMF payload (starts with a `DEVC` item).
    Gpmf,
}

impl Format {
    /// Sniff the format from the first bytes.
    ///
    /// ```
    /// use tessera::ingest::Format;
    /// assert_eq!(Format::detect(b"<?xml version=\"1.0\"?><gpx>"), Format::Gpx);
    /// assert_eq!(Format::detect(b"$GPGGA,..."), Format::Nmea);
    /// assert_eq!(Format::detect(b"PAR1\x15\x04"), Format::Parquet);
    /// assert_eq!(Format::detect(b"\0\0\0\x20ftypisom"), Format::Mp4);
    /// assert_eq!(Format::detect(b"DEVC\0\x01\0\x10"), Format::Gpmf);
    /// ```
    pub fn detect(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PAR1") {
            return Format::Parquet;
        }
        if bytes.starts_with(b"DEVC") {
            return Format::Gpmf;
        }
        if bytes.len() >= 8 && matches!(&bytes[4..8], b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip") {
            return Format::Mp4;
        }
        let head = &bytes[..bytes.len().min(4096)];
        let head = String::from_utf8_lossy(head);
        let t = head.trim_start_matches('\u{feff}').trim_start();
        if t.starts_with("<?xml") || t.starts_with("<gpx") {
            Format::Gpx
        } else {
            Format::Nmea
        }
    }

    /// Stable name.
    ///
    /// ```
    /// assert_eq!(tessera::ingest::Format::Gpx.as_str(), "gpx");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Nmea => "nmea",
            Format::Gpx => "gpx",
            Format::Parquet => "parquet",
            Format::Mp4 => "mp4",
            Format::Gpmf => "gpmf",
        }
    }
}

/// Parse a source of any supported format.
///
/// ```
/// let p = tessera::ingest::parse(b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n");
/// assert_eq!(p.fixes.len(), 1);
/// ```
pub fn parse(bytes: &[u8]) -> Parsed {
    parse_received(bytes, None)
}

/// Parse a source of any supported format received at a known time: fix times are checked
/// against it ([`receipt::judge`]: fixes after the receipt or implausibly before it are
/// rejected, confirmed GPS week rollovers corrected).
///
/// ```
/// use tessera::ingest::{parse_received, receipt::Receipt};
/// let rmc = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\n"; // 1994-03-23
/// let r = Receipt { received_at_ms: 764_000_000_000, max_future_ms: 300_000, max_age_ms: None }; // 1994-03-18
/// let p = parse_received(rmc, Some(&r));
/// assert_eq!(p.rejections[0].reason.as_str(), "after_receipt");
/// ```
pub fn parse_received(bytes: &[u8], receipt: Option<&receipt::Receipt>) -> Parsed {
    match Format::detect(bytes) {
        Format::Nmea => nmea::parse_with(bytes, receipt),
        Format::Gpx => gpx::parse_with(bytes, receipt),
        Format::Parquet => parquet::parse_with(bytes, receipt),
        Format::Mp4 => telemetry::parse_mp4(&mut std::io::Cursor::new(bytes), receipt),
        Format::Gpmf => telemetry::parse_gpmf_payload(bytes, receipt),
    }
}

/// Why parsed bytes are not a trace, or `None` when they are. A trace has at least one fix,
/// receiver sentence (auxiliary or of an ignored type) or rejection of a receiver sentence
/// (bad checksum, no fix, ...); a file whose every line is `not_nmea` (a video, a text note, an
/// empty file) or that failed as a whole (`bad_file`) is not one.
///
/// ```
/// let note = tessera::ingest::parse(b"shopping list\nmilk\n");
/// assert!(tessera::ingest::not_a_trace(&note).unwrap().contains("2 lines"));
/// let no_fix = tessera::ingest::parse(b"$GPGGA,,,,,,0,00,99.99,,,,,,*48\n");
/// assert_eq!(tessera::ingest::not_a_trace(&no_fix), None);
/// ```
pub fn not_a_trace(p: &Parsed) -> Option<String> {
    let framing = |r: &&Rejection| matches!(r.reason, Reason::NotNmea | Reason::BadFile);
    let sentences = p.lines.fix + p.lines.aux + p.lines.imu + p.lines.ignored;
    if !p.fixes.is_empty() || sentences > 0 || p.rejections.iter().any(|r| !framing(&r)) {
        return None;
    }
    if let Some(r) = p.rejections.iter().find(|r| r.reason == Reason::BadFile) {
        return Some(format!("bad_file: {}", r.detail));
    }
    Some(match p.lines.total {
        0 => "no line, point or row in it".to_string(),
        n => format!("{n} lines, none of them a receiver sentence or point"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_a_file_of_receiver_sentences_without_a_fix_is_still_a_trace() {
        let no_fix = b"$GPRMC,,V,,,,,,,,,,N*53\n$GPGSV,1,1,00*79\n";
        assert_eq!(not_a_trace(&parse(no_fix)), None);
        let bad_checksum = b"$GPGGA,120000.00,5230.000,N,01324.000,E,1,08,0.9,35.0,M,0.0,M,,*00\n";
        assert_eq!(not_a_trace(&parse(bad_checksum)), None);
    }

    #[test]
    fn rule_text_binary_empty_and_broken_gpx_are_not_traces() {
        assert!(not_a_trace(&parse(b"")).unwrap().contains("no line"));
        assert!(not_a_trace(&parse(b"\x00\x01\x02\xff\xfe")).is_some());
        assert!(not_a_trace(&parse(b"hello\nworld\n")).unwrap().contains("2 lines"));
        let gpx = b"<?xml version=\"1.0\"?><gpx><trk><trkseg><trkpt lat=";
        assert!(not_a_trace(&parse(gpx)).unwrap().starts_with("bad_file"));
    }
}

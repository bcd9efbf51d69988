//! Ingest: raw source bytes → normalized fixes plus a rejection report that accounts for every
//! line. Pure functions over bytes; the lake module does the file I/O.

mod fast;
pub mod gpx;
pub mod nmea;
pub mod parquet;
mod report;

pub use self::nmea::Parsed;
pub use report::{LineCounts, Reason, Rejection};

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
}

impl Format {
    /// Sniff the format from the first bytes.
    ///
    /// ```
    /// use tessera::ingest::Format;
    /// assert_eq!(Format::detect(b"<?xml version=\"1.0\"?><gpx>"), Format::Gpx);
    /// assert_eq!(Format::detect(b"$GPGGA,..."), Format::Nmea);
    /// assert_eq!(Format::detect(b"PAR1\x15\x04"), Format::Parquet);
    /// ```
    pub fn detect(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PAR1") {
            return Format::Parquet;
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
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Nmea => "nmea",
            Format::Gpx => "gpx",
            Format::Parquet => "parquet",
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
    match Format::detect(bytes) {
        Format::Nmea => nmea::parse(bytes),
        Format::Gpx => gpx::parse(bytes),
        Format::Parquet => parquet::parse(bytes),
    }
}

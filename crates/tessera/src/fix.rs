//! The normalized fix: one position of one device at one instant, whatever format it came from.

/// One normalized GNSS fix.
///
/// Times are UTC milliseconds since the Unix epoch; angles are degrees (WGS-84).
///
/// ```
/// use tessera::fix::Fix;
/// let f = Fix::new(1_700_000_000_000, 52.5, 13.4);
/// assert_eq!(f.quality, 1);
/// assert_eq!(f.hdop_centi(), None);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Fix {
    /// UTC time, ms since 1970-01-01.
    pub time_ms: i64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// Altitude above mean sea level, metres.
    pub alt_m: Option<f32>,
    /// Fix quality as in GGA (0 invalid, 1 GPS, 2 DGPS, 4 RTK, 5 float RTK, 6 estimated...).
    pub quality: u8,
    /// Satellites used in the fix.
    pub sats: Option<u8>,
    /// Horizontal dilution of precision.
    pub hdop: Option<f32>,
    /// Speed over ground, m/s.
    pub speed_mps: Option<f32>,
    /// Course over ground, degrees from true north.
    pub course_deg: Option<f32>,
    /// 1-based line (or GPX point ordinal) in the source the fix came from.
    pub line: u32,
    /// NMEA talker of the position sentence (`GP`, `GN`, ...), `GX` for GPX.
    pub talker: [u8; 2],
}

impl Fix {
    /// A valid fix (quality 1) with only time and position known.
    ///
    /// ```
    /// let f = tessera::fix::Fix::new(0, 1.0, 2.0);
    /// assert_eq!((f.lat, f.lon), (1.0, 2.0));
    /// ```
    pub fn new(time_ms: i64, lat: f64, lon: f64) -> Self {
        Fix {
            time_ms,
            lat,
            lon,
            alt_m: None,
            quality: 1,
            sats: None,
            hdop: None,
            speed_mps: None,
            course_deg: None,
            line: 0,
            talker: *b"GP",
        }
    }

    /// HDOP in integer hundredths (1.25 → 125), the form every kernel uses so that no float
    /// comparison reaches a score.
    ///
    /// ```
    /// let mut f = tessera::fix::Fix::new(0, 0.0, 0.0);
    /// f.hdop = Some(1.25);
    /// assert_eq!(f.hdop_centi(), Some(125));
    /// ```
    pub fn hdop_centi(&self) -> Option<u32> {
        self.hdop
            .filter(|h| h.is_finite() && *h >= 0.0)
            .map(|h| ((h as f64) * 100.0).round().min(u32::MAX as f64) as u32)
    }

    /// The talker as text.
    ///
    /// ```
    /// let mut f = tessera::fix::Fix::new(0, 52.5, 13.4);
    /// f.talker = *b"GN";
    /// assert_eq!(f.talker_str(), "GN");
    /// ```
    pub fn talker_str(&self) -> &str {
        std::str::from_utf8(&self.talker).unwrap_or("??")
    }
}

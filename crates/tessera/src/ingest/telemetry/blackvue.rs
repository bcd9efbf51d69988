//! BlackVue dashcam MP4s: a top-level `free` box holding boxes `gps ` (NMEA 0183 lines framed
//! `[unix_ms]$GPRMC,...`, zero-terminated) and `3gf ` (accelerometer: 10-byte big-endian
//! records `u32` ms since the recording started, `i16` × 3; a record of ten `0xff` ends them).
//! The layout is the one mapillary-tools (`blackvue_parser`) and blackclue read; no vendor
//! document is public.
//!
//! `3gf` units are not documented: tessera reads 128 counts as 1 g (9.80665 m/s²), the scale
//! that blackclue/blackvue-acc derived from a resting sensor, and records the axes as stored
//! (`blackvue-3gf` frame). Pure functions over the box bytes.

/// Standard gravity, m/s².
pub const G: f64 = 9.806_65;
/// `3gf` counts per g (reverse-engineered, see the module docs).
pub const COUNTS_PER_G: f64 = 128.0;

/// The child boxes of a BlackVue `free` box that tessera reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Boxes<'a> {
    /// The `gps ` box's data up to its first zero byte, and its offset in the `free` box data.
    pub gps: Option<(&'a [u8], usize)>,
    /// The `3gf ` box's data and its offset.
    pub accel: Option<(&'a [u8], usize)>,
    /// Other child boxes, by type (`thum`, `sttm`, `cprt`...).
    pub other: Vec<String>,
    /// A framing error and its offset: the children after it cannot be read.
    pub error: Option<(usize, String)>,
}

/// Split a `free` box's data into its children.
///
/// ```
/// use tessera::ingest::telemetry::blackvue::children;
/// let mut free = Vec::new();
/// let gps = b"[1574120714000]$GPRMC,...\n\0";
/// free.extend(((8 + gps.len()) as u32).to_be_bytes());
/// free.extend(b"gps ");
/// free.extend(gps);
/// let b = children(&free);
/// assert_eq!(b.gps.unwrap().0, &gps[..gps.len() - 1]);
/// ```
pub fn children(free: &[u8]) -> Boxes<'_> {
    let mut out = Boxes::default();
    let mut at = 0usize;
    while at + 8 <= free.len() {
        let len = u32::from_be_bytes([free[at], free[at + 1], free[at + 2], free[at + 3]]) as usize;
        if len == 0 {
            break; // the rest is padding
        }
        let kind = &free[at + 4..at + 8];
        if len < 8 || at + len > free.len() {
            out.error = Some((
                at,
                format!(
                    "box {:?} announces {len} bytes, {} left",
                    String::from_utf8_lossy(kind),
                    free.len() - at
                ),
            ));
            return out;
        }
        let data = &free[at + 8..at + len];
        match kind {
            b"gps " => {
                let end = memchr::memchr(0, data).unwrap_or(data.len());
                out.gps = Some((&data[..end], at + 8));
            }
            b"3gf " => out.accel = Some((data, at + 8)),
            k => out.other.push(String::from_utf8_lossy(k).into_owned()),
        }
        at += len;
    }
    out
}

/// One `3gf` record: ms since the recording started, raw counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the recording started.
    pub ms: u32,
    /// Raw counts as stored.
    pub counts: [i16; 3],
}

/// Decode `3gf` records; stops at a record of ten `0xff`. A trailing part of a record is
/// returned as its length (an error the caller reports at its offset).
///
/// ```
/// use tessera::ingest::telemetry::blackvue::records;
/// let b = [0, 0, 0, 100, 0, 128, 0xff, 0x80, 0, 0, 0xff, 0xff];
/// let (r, rest) = records(&b);
/// assert_eq!((r[0].ms, r[0].counts), (100, [128, -128, 0]));
/// assert_eq!(rest, 2);
/// ```
pub fn records(b: &[u8]) -> (Vec<Record>, usize) {
    let mut out = Vec::with_capacity(b.len() / 10);
    let mut chunks = b.chunks_exact(10);
    for c in &mut chunks {
        if c.iter().all(|&x| x == 0xff) {
            return (out, 0);
        }
        let i = |k: usize| i16::from_be_bytes([c[k], c[k + 1]]);
        out.push(Record {
            ms: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            counts: [i(4), i(6), i(8)],
        });
    }
    (out, chunks.remainder().len())
}

/// Encode `3gf` records followed by the end marker (what `tessera simulate --format
/// blackvue-mp4` writes).
///
/// ```
/// use tessera::ingest::telemetry::blackvue::{encode_records, records, Record};
/// let r = vec![Record { ms: 40, counts: [1, -2, 128] }];
/// assert_eq!(records(&encode_records(&r)), (r, 0));
/// ```
pub fn encode_records(r: &[Record]) -> Vec<u8> {
    let mut out = Vec::with_capacity(r.len() * 10 + 10);
    for x in r {
        out.extend(x.ms.to_be_bytes());
        for c in x.counts {
            out.extend(c.to_be_bytes());
        }
    }
    out.extend([0xff; 10]);
    out
}

/// Counts → m/s² (see the module docs for the scale).
///
/// ```
/// assert_eq!(tessera::ingest::telemetry::blackvue::to_mps2(128), 9.80665);
/// ```
pub fn to_mps2(c: i16) -> f64 {
    f64::from(c) / COUNTS_PER_G * G
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_a_box_announcing_more_than_is_there_is_an_error_at_its_offset() {
        let mut free = Vec::new();
        free.extend(20u32.to_be_bytes());
        free.extend(b"thum");
        free.extend([0; 12]);
        free.extend(99u32.to_be_bytes());
        free.extend(b"3gf ");
        free.extend([0; 10]);
        let b = children(&free);
        assert_eq!(b.other, vec!["thum".to_string()]);
        assert_eq!(b.error.as_ref().unwrap().0, 20);
        for cut in 0..free.len() {
            let _ = children(&free[..cut]);
        }
    }

    #[test]
    fn rule_3gf_ends_at_the_all_ff_record_and_counts_a_cut_record() {
        let r = vec![
            Record {
                ms: 0,
                counts: [0, 0, 128],
            },
            Record {
                ms: 100,
                counts: [-1, 2, 3],
            },
        ];
        let mut b = encode_records(&r);
        b.extend([1, 2, 3]); // after the end marker: not read
        assert_eq!(records(&b), (r.clone(), 0));
        assert_eq!(records(&b[..15]), (r[..1].to_vec(), 5));
    }
}

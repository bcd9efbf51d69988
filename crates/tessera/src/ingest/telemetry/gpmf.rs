//! GoPro GPMF payloads (<https://github.com/gopro/gpmf-parser>): one payload → the GPS points
//! and IMU readings of each device (`DEVC`), every other stream counted by FourCC, everything
//! that cannot be read rejected at its byte offset. Pure: timing is applied by the caller from
//! the MP4 sample's time and duration.
//!
//! What is read, as mapillary-tools 0.14.7 (`mapillary_tools.gpmf.gpmf_parser`) reads it, so
//! the two agree point for point:
//! - per device, the first `STRM` holding `GPS9` (TYPE `lllllllSS`: lat, lon, alt, 2D and 3D
//!   speed, days since 2000, seconds since midnight, DOP, fix) or `GPS5` (lat, lon, alt, 2D
//!   and 3D speed, with the stream's `GPSF` fix, `GPSP` precision = DOP × 100 and `GPSU`
//!   UTC time `yymmddhhmmss.sss`); values divided by `SCAL` element by element;
//! - per device, the first `STRM` holding `ACCL` (m/s²), `GYRO` (rad/s), `MAGN` (µT): values
//!   rotated by `MTRX` when it is a calibration (an entry other than 0, ±1), else by the matrix
//!   that `ORIN`/`ORIO` define, then divided by `SCAL` (one value for all axes, 0 read as 1);
//!   the result's elements 0, 1, 2 are the camera's z, x, y ([`super::Telemetry::axes`]).

use super::klv::{self, layout, number, Klv};
use super::Sensor;
use std::collections::BTreeMap;

/// One GPS sample of a `GPS5`/`GPS9` stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsPoint {
    /// Degrees.
    pub lat: f64,
    /// Degrees.
    pub lon: f64,
    /// Metres.
    pub alt: f64,
    /// 2D speed, m/s.
    pub speed_2d: f64,
    /// `GPSF` (GPS5) or the fix element (GPS9): 0 none, 2 2D, 3 3D.
    pub fix: Option<u32>,
    /// DOP × 100 (`GPSP`, or GPS9's DOP × 100).
    pub precision: Option<f64>,
    /// UTC seconds since 1970: GPS9's own time, or the stream's `GPSU` (the same for every point
    /// of a GPS5 payload).
    pub epoch_s: Option<f64>,
}

/// A run of samples of one stream of one device in one payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Run<T> {
    /// `DVID` (2^32 when the device has none, as mapillary-tools groups them).
    pub device: u64,
    /// The samples, in order.
    pub samples: Vec<T>,
    /// Byte offset of the data item in the payload.
    pub offset: usize,
}

/// Samples that could not be read: how many, where, why.
#[derive(Debug, Clone, PartialEq)]
pub struct Bad {
    /// Byte offset of the item in the payload.
    pub offset: usize,
    /// Samples lost (1 for a framing error whose remainder cannot be counted).
    pub samples: u64,
    /// What is wrong.
    pub detail: String,
}

/// What one payload holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// GPS runs, at most one per device.
    pub gps: Vec<Run<GpsPoint>>,
    /// IMU runs, at most one per device and sensor.
    pub imu: Vec<(Sensor, Run<[f64; 3]>)>,
    /// Samples of streams not read, by `gpmf:<FourCC>`.
    pub ignored: BTreeMap<String, u64>,
    /// Samples that could not be read.
    pub bad: Vec<Bad>,
    /// Device names (`DVNM`) by device id.
    pub names: BTreeMap<u64, String>,
}

impl Payload {
    /// Samples in the payload: read, ignored or bad.
    ///
    /// ```
    /// assert_eq!(tessera::ingest::telemetry::gpmf::decode(b"").samples(), 0);
    /// ```
    pub fn samples(&self) -> u64 {
        let gps: usize = self.gps.iter().map(|r| r.samples.len()).sum();
        let imu: usize = self.imu.iter().map(|(_, r)| r.samples.len()).sum();
        gps as u64 + imu as u64 + self.ignored.values().sum::<u64>() + self.bad.iter().map(|b| b.samples).sum::<u64>()
    }
}

/// Decode one GPMF payload.
///
/// Never fails: framing errors and unreadable streams become [`Bad`] entries naming the byte
/// offset; anything else is a GPS run, an IMU run or an ignored count.
///
/// ```
/// // A device whose one stream is 2 samples of a type tessera does not read.
/// let p = tessera::ingest::telemetry::gpmf::decode(b"DEVC\x00\x01\x00\x14STRM\x00\x01\x00\x0cCORIs\x02\x00\x02\x00\x01\x00\x02");
/// assert_eq!(p.ignored["gpmf:CORI"], 2);
/// assert!(p.bad.is_empty() && p.gps.is_empty());
/// ```
pub fn decode(payload: &[u8]) -> Payload {
    let mut out = Payload::default();
    for item in klv::items(payload, 0) {
        match item {
            Err(e) => out.bad.push(malformed(e)),
            Ok(k) if &k.key == b"DEVC" => device(&k, &mut out),
            Ok(k) => *out.ignored.entry(format!("gpmf:{}", k.key_str())).or_default() += u64::from(k.repeat),
        }
    }
    out
}

fn malformed(e: klv::Malformed) -> Bad {
    Bad {
        offset: e.offset,
        samples: 1,
        detail: format!("GPMF framing: {}", e.what),
    }
}

/// One `DEVC`: its id and name, then its streams.
fn device(devc: &Klv<'_>, out: &mut Payload) {
    let mut id = 1u64 << 32;
    let mut streams = Vec::new();
    for item in devc.children() {
        match item {
            Err(e) => out.bad.push(malformed(e)),
            Ok(k) if &k.key == b"DVID" && id == 1 << 32 => {
                id = first_number(&k).map(|v| v as u64).unwrap_or(id);
            }
            Ok(k) if &k.key == b"DVNM" => {
                let name = String::from_utf8_lossy(k.data).trim_end_matches('\0').to_string();
                out.names.insert(id, name);
            }
            Ok(k) if &k.key == b"STRM" => streams.push(k),
            Ok(_) => {}
        }
    }
    let (mut have_gps, mut have) = (false, [false; 3]);
    for s in streams {
        let items: Vec<Klv> = match s.children().collect::<Result<Vec<_>, _>>() {
            Ok(v) => v,
            Err(e) => {
                out.bad.push(malformed(e));
                continue;
            }
        };
        let Some(data) = items.last().copied() else { continue };
        let key = &data.key;
        let sensor = match key {
            b"ACCL" => Some(Sensor::Accel),
            b"GYRO" => Some(Sensor::Gyro),
            b"MAGN" => Some(Sensor::Mag),
            _ => None,
        };
        let n = u64::from(data.repeat);
        let taken = match (key, sensor) {
            (b"GPS5" | b"GPS9", _) if !have_gps => match gps(&items, &data) {
                Ok(points) => {
                    have_gps = !points.is_empty();
                    out.gps.push(Run {
                        device: id,
                        samples: points,
                        offset: data.offset,
                    });
                    true
                }
                Err(detail) => bad(out, &data, n, detail),
            },
            (_, Some(s)) if !have[s as usize] => match imu(&items, &data) {
                Ok(v) => {
                    have[s as usize] = !v.is_empty();
                    out.imu.push((
                        s,
                        Run {
                            device: id,
                            samples: v,
                            offset: data.offset,
                        },
                    ));
                    true
                }
                Err(detail) => bad(out, &data, n, detail),
            },
            _ => false,
        };
        if !taken && n > 0 {
            *out.ignored.entry(format!("gpmf:{}", data.key_str())).or_default() += n;
        }
    }
}

fn bad(out: &mut Payload, data: &Klv<'_>, n: u64, detail: String) -> bool {
    out.bad.push(Bad {
        offset: data.offset,
        samples: n.max(1),
        detail: format!("{}: {detail}", data.key_str()),
    });
    true
}

fn first_number(k: &Klv<'_>) -> Option<f64> {
    number(k.typ, k.data)
}

/// Every element of an item as numbers (all samples, flattened).
fn numbers(k: &Klv<'_>) -> Option<Vec<f64>> {
    let w = klv::width(k.typ)?;
    k.data.chunks_exact(w).map(|c| number(k.typ, c)).collect()
}

/// The samples of a data item as rows of numbers, decoded by its type (or `TYPE`).
fn rows(data: &Klv<'_>, complex: Option<&[u8]>) -> Result<Vec<Vec<f64>>, String> {
    let types = layout(data.typ, data.size, complex).ok_or_else(|| {
        format!(
            "type {:?} does not fill {} bytes per sample{}",
            data.typ as char,
            data.size,
            complex
                .map(|t| format!(" (TYPE {:?})", String::from_utf8_lossy(t)))
                .unwrap_or_default()
        )
    })?;
    let size = usize::from(data.size);
    let mut out = Vec::with_capacity(usize::from(data.repeat));
    for s in data.data.chunks_exact(size.max(1)) {
        let mut row = Vec::with_capacity(types.len());
        let mut at = 0;
        for t in &types {
            let w = klv::width(*t).ok_or("bad type")?;
            row.push(number(*t, &s[at..]).ok_or("bad number")?);
            at += w;
        }
        out.push(row);
    }
    Ok(out)
}

fn find<'a>(items: &'a [Klv<'a>], key: &[u8; 4]) -> Option<&'a Klv<'a>> {
    items.iter().find(|k| &k.key == key)
}

/// `GPSU` `yymmddhhmmss.sss` → UTC seconds since 1970.
fn gpsu(k: &Klv<'_>) -> Option<f64> {
    let s = std::str::from_utf8(k.data.get(..16)?).ok()?;
    let d = chrono::NaiveDateTime::parse_from_str(s, "%y%m%d%H%M%S%.3f").ok()?;
    Some(d.and_utc().timestamp_millis() as f64 / 1000.0)
}

fn gps(items: &[Klv<'_>], data: &Klv<'_>) -> Result<Vec<GpsPoint>, String> {
    let scal = find(items, b"SCAL").and_then(numbers).ok_or("no SCAL")?;
    if scal.contains(&0.0) {
        return Err("a SCAL of 0".into());
    }
    let nine = &data.key == b"GPS9";
    let complex = find(items, b"TYPE").map(|k| k.data);
    let rows = rows(data, if nine { complex } else { None })?;
    let want = if nine { 9 } else { 5 };
    let fix = find(items, b"GPSF").and_then(first_number).map(|v| v as u32);
    let precision = find(items, b"GPSP").and_then(first_number);
    let epoch = find(items, b"GPSU").and_then(gpsu);
    rows.into_iter()
        .map(|r| {
            if r.len() != want {
                return Err(format!("{} elements per sample, {want} expected", r.len()));
            }
            if scal.len() != 1 && scal.len() != r.len() {
                return Err(format!("{} SCAL values for {} elements", scal.len(), r.len()));
            }
            let v: Vec<f64> = r
                .iter()
                .enumerate()
                .map(|(i, v)| v / scal[i.min(scal.len() - 1)])
                .collect();
            Ok(if nine {
                GpsPoint {
                    lat: v[0],
                    lon: v[1],
                    alt: v[2],
                    speed_2d: v[3],
                    fix: Some(v[8] as u32),
                    precision: Some(v[7] * 100.0),
                    epoch_s: Some(946_684_800.0 + v[5] * 86_400.0 + v[6]),
                }
            } else {
                GpsPoint {
                    lat: v[0],
                    lon: v[1],
                    alt: v[2],
                    speed_2d: v[3],
                    fix,
                    precision,
                    epoch_s: epoch,
                }
            })
        })
        .collect()
}

/// The rotation of an IMU stream: `MTRX` if it is a calibration, else `ORIN`/`ORIO`'s.
fn matrix(items: &[Klv<'_>]) -> Option<Vec<f64>> {
    if let Some(m) = find(items, b"MTRX").and_then(numbers)
        && m.iter().any(|v| ![0.0, 1.0, -1.0].contains(v))
    {
        return Some(m);
    }
    let (orin, orio) = (find(items, b"ORIN")?.data, find(items, b"ORIO")?.data);
    let mut m = Vec::with_capacity(orin.len() * orio.len());
    for &o in orin {
        for &i in orio {
            m.push(if i == o {
                1.0
            } else if i.is_ascii_alphabetic() && o.is_ascii_alphabetic() && i.eq_ignore_ascii_case(&o) {
                -1.0
            } else {
                0.0
            });
        }
    }
    Some(m)
}

fn imu(items: &[Klv<'_>], data: &Klv<'_>) -> Result<Vec<[f64; 3]>, String> {
    let mut scal: Vec<f64> = find(items, b"SCAL")
        .and_then(numbers)
        .unwrap_or_default()
        .into_iter()
        .map(|s| if s == 0.0 { 1.0 } else { s })
        .collect();
    if scal.is_empty() {
        scal.push(1.0);
    }
    let m = matrix(items);
    let rows = rows(data, None)?;
    rows.into_iter()
        .map(|r| {
            let v = match &m {
                None => r,
                Some(m) if m.len() == r.len() * r.len() => (0..r.len())
                    .map(|y| (0..r.len()).map(|x| m[y * r.len() + x] * r[x]).sum())
                    .collect(),
                Some(m) => return Err(format!("a {}-entry axis matrix for {} axes", m.len(), r.len())),
            };
            let scaled: Vec<f64> = if scal.len() == 1 {
                v.iter().map(|x| x / scal[0]).collect()
            } else {
                v.iter().zip(&scal).map(|(x, s)| x / s).collect()
            };
            match scaled[..] {
                [z, x, y, ..] => Ok([x, y, z]),
                _ => Err(format!("{} axes per sample after SCAL, 3 expected", scaled.len())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &[u8; 4], typ: u8, size: u8, repeat: u16, data: &[u8]) -> Vec<u8> {
        let mut v = key.to_vec();
        v.extend([typ, size]);
        v.extend(repeat.to_be_bytes());
        v.extend(data);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    fn nest(key: &[u8; 4], parts: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = parts.concat();
        let mut v = key.to_vec();
        v.extend([0, 1]);
        v.extend((body.len() as u16).to_be_bytes());
        v.extend(body);
        v
    }

    fn i32s(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn gps5_stream(fix: u32) -> Vec<u8> {
        nest(
            b"STRM",
            &[
                item(b"GPSF", b'L', 4, 1, &fix.to_be_bytes()),
                item(b"GPSU", b'U', 16, 1, b"191118234514.000"),
                item(b"GPSP", b'S', 2, 1, &154u16.to_be_bytes()),
                item(b"SCAL", b'l', 4, 5, &i32s(&[10_000_000, 10_000_000, 1000, 1000, 100])),
                item(
                    b"GPS5",
                    b'l',
                    20,
                    2,
                    &i32s(&[
                        331_267_700,
                        -1_173_273_436,
                        -22_959,
                        1046,
                        105,
                        331_267_710,
                        -1_173_273_430,
                        -22_950,
                        1000,
                        100,
                    ]),
                ),
            ],
        )
    }

    #[test]
    fn rule_gps5_is_scaled_per_element_and_takes_the_streams_fix_precision_and_gpsu() {
        let p = decode(&nest(
            b"DEVC",
            &[item(b"DVID", b'L', 4, 1, &1u32.to_be_bytes()), gps5_stream(3)],
        ));
        assert_eq!(p.gps.len(), 1);
        let g = &p.gps[0].samples;
        assert_eq!(g.len(), 2);
        assert!((g[0].lat - 33.12677).abs() < 1e-9 && (g[0].lon + 117.3273436).abs() < 1e-9);
        assert_eq!(
            (g[0].alt, g[0].speed_2d, g[0].fix, g[0].precision),
            (-22.959, 1.046, Some(3), Some(154.0))
        );
        assert_eq!(g[1].epoch_s, Some(1_574_120_714.0));
        assert_eq!(p.samples(), 2);
    }

    #[test]
    fn rule_imu_is_rotated_by_orin_orio_then_scaled_and_read_as_z_x_y() {
        // GoPro MAX: ORIN "XzY", ORIO "ZXY", raw [198, -3593, 675] / 417 (mapillary-tools:
        // x = -0.4748, y = 1.6187, z = -8.6163).
        let s = nest(
            b"STRM",
            &[
                item(b"ORIN", b'c', 1, 3, b"XzY"),
                item(b"ORIO", b'c', 1, 3, b"ZXY"),
                item(b"SCAL", b's', 2, 1, &417i16.to_be_bytes()),
                item(
                    b"ACCL",
                    b's',
                    6,
                    1,
                    &[198i16, -3593, 675]
                        .iter()
                        .flat_map(|v| v.to_be_bytes())
                        .collect::<Vec<_>>(),
                ),
            ],
        );
        let p = decode(&nest(b"DEVC", &[s]));
        let v = p.imu[0].1.samples[0];
        assert!((v[0] + 0.4748201438848921).abs() < 1e-12, "{v:?}");
        assert!((v[1] - 1.618705035971223).abs() < 1e-12 && (v[2] + 8.616306954436451).abs() < 1e-12);
    }

    #[test]
    fn rule_unread_streams_are_counted_by_fourcc_and_a_zero_scal_is_a_rejection() {
        let other = nest(
            b"STRM",
            &[
                item(b"SCAL", b's', 2, 1, &1i16.to_be_bytes()),
                item(b"CORI", b's', 8, 3, &[0; 24]),
            ],
        );
        let zero = nest(
            b"STRM",
            &[
                item(b"SCAL", b'l', 4, 1, &0i32.to_be_bytes()),
                item(b"GPS5", b'l', 20, 1, &[0; 20]),
            ],
        );
        let p = decode(&nest(b"DEVC", &[other, zero]));
        assert_eq!(p.ignored.get("gpmf:CORI"), Some(&3));
        assert_eq!(p.bad.len(), 1);
        assert!(p.bad[0].detail.contains("SCAL of 0"));
        assert_eq!(p.samples(), 4);
    }

    #[test]
    fn rule_a_second_gps_stream_of_a_device_is_ignored_not_merged() {
        let p = decode(&nest(b"DEVC", &[gps5_stream(3), gps5_stream(3)]));
        assert_eq!(p.gps.len(), 1);
        assert_eq!(p.ignored.get("gpmf:GPS5"), Some(&2));
    }

    #[test]
    fn rule_any_cut_of_a_payload_is_accounted_never_a_panic() {
        let full = nest(b"DEVC", &[gps5_stream(3)]);
        for cut in 0..full.len() {
            let p = decode(&full[..cut]);
            assert!(p.gps.iter().all(|r| r.samples.len() <= 2));
        }
    }
}
